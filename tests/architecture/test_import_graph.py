"""The import graph keeps its rooms: no circle, nothing reaching up (issue 24).

The contracts are `[tool.importlinter]` in pyproject.toml, checked by import-linter (grimp's
graph, imports inside functions included); docs/architecture.md draws the layers. A failure
prints import-linter's report: the chain of imports that breaks a contract.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"


@pytest.fixture(autouse=True)
def _loggers_left_as_found() -> Iterator[None]:
    """`lint_imports` configures logging with `dictConfig`, which disables every logger that
    exists already: a later test that expects a warning (audit partitions) would see none."""
    loggers = [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    disabled = {logger: logger.disabled for logger in loggers}
    yield
    for logger, was_disabled in disabled.items():
        logger.disabled = was_disabled


def _config() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def test_contracts_hold(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    exit_code = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert exit_code == 0, report


def test_not_even_annotations_reach_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layers hold with `if TYPE_CHECKING:` imports counted as well: a lower room names
    a protocol of its own (e.g. `jobs.settings.JobSettings`), never a type from above."""
    text = PYPROJECT.read_text(encoding="utf-8")
    strict = text.replace(
        "exclude_type_checking_imports = true", "exclude_type_checking_imports = false"
    )
    assert strict != text
    config = tmp_path / "pyproject.toml"
    config.write_text(strict, encoding="utf-8")
    monkeypatch.chdir(ROOT)
    exit_code = lint_imports(
        config_filename=str(config), limit_to_contracts=("layers",), no_cache=True, no_logo=True
    )
    report = capsys.readouterr().out
    assert exit_code == 0, report


def test_every_package_is_checked() -> None:
    """A new top-level package outside the contracts would escape the check unseen."""
    config = _config()
    shipped = {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]}
    linter = config["tool"]["importlinter"]
    assert set(linter["root_packages"]) == shipped
    layered = set()
    for contract in linter["contracts"]:
        if contract["type"] == "layers":
            for layer in contract["layers"]:
                layered |= {name.strip() for name in layer.replace("|", ":").split(":")}
        if contract["type"] == "acyclic_siblings":
            assert set(contract["ancestors"]) == shipped
    assert layered == shipped


def test_no_escape_hatches() -> None:
    """An ignored import is a circle kept; each would need its reason here."""
    for contract in _config()["tool"]["importlinter"]["contracts"]:
        assert not contract.get("ignore_imports"), contract["name"]
