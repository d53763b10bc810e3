"""The `dossier` command line: one click group whose subcommands are imported on first use.

Subcommands are registered by import path and loaded lazily (click's documented LazyGroup
pattern), so `dossier --help` stays fast and a command whose module is broken or missing is
listed as unavailable instead of taking every other command down with it.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name → "module:attribute"; the owning module defines the click command
COMMANDS: dict[str, str] = {
    "serve": "api.cli.serve:serve",
    "seed": "api.cli.seed:seed",
    "migrate": "api.cli.migrate:migrate",
    "user": "api.cli.users:user",
    "token": "api.cli.tokens:token",
    "audit": "api.cli.audit:audit",
    "policy": "api.cli.policy:policy",
    "import": "api.cli.importer:import_",
    "deliver": "api.cli.deliver:deliver",
    "remind": "api.cli.remind:remind",
    "worker": "api.cli.worker:worker",
    "schema": "api.cli.schema:schema",
    "keys": "api.cli.keys:keys",
}

SHORT_HELP: dict[str, str] = {
    "serve": "Run the HTTP server (embedded PostgreSQL when DATABASE_URL is unset).",
    "seed": "Load the demo organisation and generated customers.",
    "migrate": "Upgrade the database schema to the newest revision.",
    "user": "Manage users.",
    "token": "Issue and revoke partner tokens.",
    "audit": "Inspect and verify the audit trail.",
    "policy": "Inspect and change access policies.",
    "import": "Import customers from CSV or Excel files.",
    "deliver": "Run a webhook delivery worker (any number may run at once).",
    "remind": "Create due reminder tasks once (follow-ups, renewals, overdue payments).",
    "worker": "Run background jobs: exports, imports, digests, insight refreshes.",
    "schema": "Print the GraphQL schema as SDL (or write schema.graphql).",
    "keys": "Secrets: generate fresh ones, make a field key, rotate stored values to it.",
}


class CommandUnavailableError(click.ClickException):
    """A registered subcommand could not be imported; the message says which and why."""


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # help text comes from SHORT_HELP, so listing commands imports none of them
        rows = [
            (name, SHORT_HELP.get(name, ""))
            for name in self.list_commands(ctx)
            if name in self.lazy_commands or self.commands.get(name) is not None
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
        try:
            command = getattr(importlib.import_module(module_name), attribute)
        except Exception as exc:  # a broken module (even a SyntaxError) must not hide the rest
            return _unavailable(cmd_name, f"{type(exc).__name__}: {exc}")
        if not isinstance(command, click.Command):
            return _unavailable(cmd_name, f"{self.lazy_commands[cmd_name]} is not a click command")
        return command


def _unavailable(name: str, reason: str) -> click.Command:
    def fail() -> None:
        raise CommandUnavailableError(f"`dossier {name}` is not available: {reason}")

    return click.Command(name, callback=fail, help=f"(unavailable: {reason})")


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="dossier")
def main() -> None:
    """Dossier: permissioned customer data behind one GraphQL API."""
