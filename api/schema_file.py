"""The schema as SDL: what `dossier schema` prints and `schema.graphql` at the repository root
holds, and how a new SDL compares with the last release's (graphql-core's breaking-change
finder).

Introspection is off in production, so the committed SDL file is how a client team gets the
schema. Regenerate it after changing a type with `dossier schema --output schema.graphql`.
"""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema as parse_sdl
from graphql import find_breaking_changes

REGENERATE = "dossier schema --output schema.graphql"


def current_sdl() -> str:
    """The SDL of the schema the server runs (no limits or caches: they change no type)."""
    from api.root_schema import build_schema  # the whole resolver tree: import on use

    return build_schema().as_str().rstrip("\n") + "\n"


def breaking_changes(old_sdl: str, new_sdl: str) -> list[str]:
    """Each change from `old_sdl` to `new_sdl` that can break an existing client, as text."""
    changes = find_breaking_changes(parse_sdl(old_sdl), parse_sdl(new_sdl))
    return [f"{change.type.name}: {change.description}" for change in changes]


def write_sdl(path: Path) -> bool:
    """Write the current SDL to `path`; whether the file changed."""
    sdl = current_sdl()
    if path.exists() and path.read_text(encoding="utf-8") == sdl:
        return False
    path.write_text(sdl, encoding="utf-8")
    return True
