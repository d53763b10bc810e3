"""`dossier` as a user types it: help, migrate, seed, and the server's database preparation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import click
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from api.cli import COMMANDS, LazyGroup, main
from api.cli.serve import prepare_database
from api.settings import Settings
from db.migrate import alembic_config
from tests.conftest import settings_for

ALL_COMMANDS = (
    "serve", "seed", "migrate", "user", "token", "audit", "policy", "import", "deliver",
    "remind", "worker", "schema", "keys",
)  # fmt: skip


def _fetchval(url: str, sql: str) -> object:
    async def query() -> object:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetchval(sql)
        finally:
            await connection.close()

    return asyncio.run(query())


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:", 1)[1]
    for name in ALL_COMMANDS:
        assert f"\n  {name} " in listed, name
    assert set(COMMANDS) == set(ALL_COMMANDS)


def test_a_broken_command_module_leaves_the_others_working(runner: CliRunner) -> None:
    @click.group(
        cls=LazyGroup,
        lazy_commands={"migrate": COMMANDS["migrate"], "ghost": "api.cli.no_such_module:ghost"},
    )
    def group() -> None:
        pass

    assert runner.invoke(group, ["--help"]).exit_code == 0
    assert runner.invoke(group, ["migrate", "--help"]).exit_code == 0
    broken = runner.invoke(group, ["ghost"])
    assert broken.exit_code == 1
    assert "`dossier ghost` is not available" in broken.output
    assert "no_such_module" in broken.output


def test_migrate_twice_is_fine(runner: CliRunner, cli_env: dict[str, str]) -> None:
    for _ in range(2):
        result = runner.invoke(main, ["migrate"], env=cli_env)
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output
    expected = ScriptDirectory.from_config(
        alembic_config(cli_env["DATABASE_URL"])
    ).get_current_head()
    found = _fetchval(cli_env["DATABASE_URL"], "SELECT version_num FROM alembic_version")
    assert found == expected


def test_migrate_refuses_a_database_ahead_of_the_code(
    runner: CliRunner, cli_env: dict[str, str]
) -> None:
    assert runner.invoke(main, ["migrate"], env=cli_env).exit_code == 0
    _fetchval(cli_env["DATABASE_URL"], "UPDATE alembic_version SET version_num = 'f00dfeed'")
    result = runner.invoke(main, ["migrate"], env=cli_env)
    assert result.exit_code == 1
    assert "f00dfeed" in result.output


def test_seed_loads_once_and_then_refuses(runner: CliRunner, cli_env: dict[str, str]) -> None:
    result = runner.invoke(main, ["seed", "--demo", "--customers", "40"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "customers 40" in result.output
    assert "dossier-demo" in result.output
    assert _fetchval(cli_env["DATABASE_URL"], "SELECT count(*) FROM contacts") == 200

    again = runner.invoke(main, ["seed", "--demo"], env=cli_env)
    assert again.exit_code == 1
    assert "only loaded into an empty database" in again.output
    assert _fetchval(cli_env["DATABASE_URL"], "SELECT count(*) FROM customers") == 40


def test_seed_in_production_warns_loudly_and_keeps_the_password_quiet(
    runner: CliRunner, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "DOSSIER_ENV": "prod"}
    result = runner.invoke(main, ["seed", "--demo", "--customers", "5"], env=env)
    assert result.exit_code == 0, result.output
    assert "WARNING: seeding the DEMO data set with DOSSIER_ENV=prod" in result.output
    assert "dossier-demo" not in result.output
    assert "deactivate them or set new passwords" in result.output


def test_seed_without_a_choice_is_a_usage_error(runner: CliRunner, cli_env: dict[str, str]) -> None:
    result = runner.invoke(main, ["seed"], env=cli_env)
    assert result.exit_code == 2
    assert "--demo" in result.output


async def test_server_start_seeds_an_empty_database_only_the_first_time(
    empty_database_url: str, data_dir: Path
) -> None:
    settings: Settings = settings_for(empty_database_url, data_dir / "serve")
    first = await prepare_database(empty_database_url, settings, migrate=True, seed_if_empty=True)
    assert first.seeded is not None
    assert first.seeded.counts["customers"] == 300
    assert first.has_demo_users

    second = await prepare_database(empty_database_url, settings, migrate=True, seed_if_empty=True)
    assert second.seeded is None
    assert second.has_demo_users
