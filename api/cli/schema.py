"""`dossier schema`: print the GraphQL schema as SDL, or write it to a file."""

from __future__ import annotations

from pathlib import Path

import click

from api.schema_file import current_sdl, write_sdl


@click.command("schema")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the SDL to this file (e.g. schema.graphql) instead of printing it.",
)
def schema(output: Path | None) -> None:
    """Print the GraphQL schema (SDL); `--output schema.graphql` refreshes the committed file."""
    if output is None:
        click.echo(current_sdl(), nl=False)
        return
    changed = write_sdl(output)
    click.echo(f"{output}: {'updated' if changed else 'unchanged'}", err=True)
