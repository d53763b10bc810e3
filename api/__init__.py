"""The HTTP edge: Starlette app, authentication routes, settings and the `dossier` CLI."""
