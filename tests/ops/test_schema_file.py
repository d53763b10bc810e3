"""The committed `schema.graphql` is the schema the server runs, and the schema breaks no
client of the last release (`docs/schema-release-1.graphql`)."""

from __future__ import annotations

import subprocess
import sys

from api.schema_file import REGENERATE, breaking_changes, current_sdl
from tests.ops.conftest import REPO

SCHEMA_FILE = REPO / "schema.graphql"
RELEASE_FILE = REPO / "docs" / "schema-release-1.graphql"


def test_committed_schema_file_is_current() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    sdl = current_sdl()
    if committed != sdl:
        broken = breaking_changes(RELEASE_FILE.read_text(encoding="utf-8"), sdl)
        report = "".join(f"\n  - {line}" for line in broken) or " none"
        raise AssertionError(
            f"schema.graphql is stale: run `{REGENERATE}` and commit it."
            f"\nBreaking changes against the last release ({RELEASE_FILE.name}):{report}"
        )


def test_schema_has_no_breaking_change_against_the_last_release() -> None:
    broken = breaking_changes(RELEASE_FILE.read_text(encoding="utf-8"), current_sdl())
    assert not broken, "breaking changes against the last release:\n" + "\n".join(broken)


def test_breaking_changes_are_found() -> None:
    old = "type Query { a: Int, b(first: Int): String }"
    new = "type Query { b(first: Int!): String }"
    found = breaking_changes(old, new)
    assert any("Query.a was removed" in line for line in found), found
    assert any("FIELD_REMOVED" in line for line in found), found
    assert len(found) == 2, found


def test_dossier_schema_prints_the_sdl() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "schema"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert done.stdout == current_sdl()
