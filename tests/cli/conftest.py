"""An empty database and a clean environment for driving the `dossier` command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from db.crypto import new_key
from tests.conftest import fresh_database


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    with fresh_database("dossier_cli") as url:
        yield url


@pytest.fixture
def cli_env(empty_database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DOSSIER_ENV": "test",
        "DATABASE_URL": empty_database_url,
        "DOSSIER_DATA_DIR": str(tmp_path / "data"),
        "DOSSIER_FIELD_KEYS": f"k1:{new_key()}",
        "DOSSIER_BLIND_INDEX_KEY": new_key(),
        "DOSSIER_JWT_SECRET": new_key(),
    }


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
