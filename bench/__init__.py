"""Speed figures for Dossier: `python -m bench.run` (see bench/README.md). Never run by CI."""
