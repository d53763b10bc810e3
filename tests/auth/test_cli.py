"""`dossier user …` and `dossier token …` against the test database, through click."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
from click import Group
from click.testing import CliRunner, Result
from sqlalchemy import select

from api.cli.tokens import token
from api.cli.users import user
from api.settings import Settings
from api.state import AppState
from db.models import AuditEvent, Department, User
from tests.auth.conftest import login


@pytest.fixture
def env(settings: Settings, data_dir: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url or "",
        "DOSSIER_ENV": "test",
        "DOSSIER_DATA_DIR": str(data_dir / "cli"),
    }


async def invoke(group: Group, args: list[str], env: dict[str, str]) -> Result:
    # a thread of its own: the command runs its own event loop with asyncio.run
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, group, args, env=env, catch_exceptions=False)


async def test_operator_creates_deactivates_and_resets_a_user(
    env: dict[str, str], state: AppState, department: Department, client: httpx.AsyncClient
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = await invoke(
        user,
        ["create", name, "--department", department.name, "--password", "operator chosen pw"],
        env,
    )
    assert created.exit_code == 0, created.output
    assert (await login(client, name, "operator chosen pw")).status_code == 200

    changed = await invoke(user, ["set-password", name, "--password", "second chosen pw"], env)
    assert changed.exit_code == 0, changed.output
    assert (await login(client, name, "operator chosen pw")).status_code == 401
    assert (await login(client, name, "second chosen pw")).status_code == 200

    deactivated = await invoke(user, ["deactivate", name], env)
    assert deactivated.exit_code == 0, deactivated.output
    async with state.sessions() as session:
        row = await session.scalar(select(User).where(User.username == name))
        assert row is not None and not row.is_active
        events = await session.scalars(
            select(AuditEvent).where(AuditEvent.resource_ids == [str(row.id)])
        )
        assert [event.action for event in events if event.resource_type == "user"].count(
            "USER_CHANGE"
        ) == 3


async def test_weak_password_and_duplicate_user_are_clean_cli_errors(
    env: dict[str, str], department: Department
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    weak = await invoke(
        user, ["create", name, "--department", str(department.id), "--password", "short"], env
    )
    assert weak.exit_code == 2
    assert "at least 12 characters" in weak.output
    ok = ["create", name, "--department", str(department.id), "--password", "long enough pw!"]
    assert (await invoke(user, ok, env)).exit_code == 0
    again = await invoke(user, ok, env)
    assert again.exit_code == 2
    assert "already exists" in again.output


async def test_operator_issues_lists_and_revokes_a_partner_token(env: dict[str, str]) -> None:
    partner = f"cli-partner-{uuid.uuid4().hex[:6]}"
    issued = await invoke(
        token,
        ["issue", "--partner", partner, "--scope", "customers:read", "--expires-in-days", "7"],
        env,
    )
    assert issued.exit_code == 0, issued.output
    lines = dict(line.split(":", 1) for line in issued.stdout.splitlines())
    token_id, secret = lines["id"].strip(), lines["token"].strip()
    assert secret.startswith("dpt_")

    listed = await invoke(token, ["list", "--json"], env)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    mine = [row for row in rows if row["id"] == token_id]
    assert mine and mine[0]["partner"] == partner and mine[0]["revoked_at"] is None
    assert secret not in listed.stdout

    assert (await invoke(token, ["revoke", token_id], env)).exit_code == 0
    again = await invoke(token, ["revoke", token_id], env)
    assert again.exit_code == 1


async def test_unknown_scope_is_refused_by_the_cli(env: dict[str, str]) -> None:
    result = await invoke(token, ["issue", "--partner", "x", "--scope", "customers:write"], env)
    assert result.exit_code == 2
    assert "customers:write" in result.output
