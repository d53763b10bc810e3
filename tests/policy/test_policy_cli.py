"""`dossier policy export|import` round-trips the rule set and refuses bad files whole."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from api.cli.policy import policy
from api.seed.demo import seed_demo
from db.engine import create_engine
from db.migrate import upgrade_to_head
from tests.conftest import fresh_database, settings_for


@pytest.fixture(scope="module")
def seeded_url(data_dir: Path) -> Iterator[str]:
    """A small demo database; the CLI runs its own event loop, so these tests are sync."""
    with fresh_database("dossier_policy") as url:
        settings = settings_for(url, data_dir / "policy-cli")

        async def prepare() -> None:
            engine = create_engine(url)
            await upgrade_to_head(engine)
            await seed_demo(engine, settings.field_cipher, customers=5)
            await engine.dispose()

        asyncio.run(prepare())
        yield url


def invoke(args: list[str], url: str) -> object:
    runner = CliRunner()
    env = {"DATABASE_URL": url, "DOSSIER_ENV": "test", "DOSSIER_JWT_SECRET": "x" * 40,
           "DOSSIER_FIELD_KEYS": "k1:" + "A" * 43, "DOSSIER_BLIND_INDEX_KEY": "b" * 40}  # fmt: skip
    return runner.invoke(policy, args, env=env, catch_exceptions=False)


def rule_count(url: str) -> int:
    async def count() -> int:
        engine = create_engine(url)
        async with engine.connect() as connection:
            found = (await connection.execute(text("SELECT count(*) FROM policy_rules"))).scalar()
        await engine.dispose()
        return int(found or 0)

    return asyncio.run(count())


def test_export_then_import_is_a_no_op_and_keeps_brace_patterns_whole(
    seeded_url: str, tmp_path: Path
) -> None:
    exported = tmp_path / "rules.csv"
    result = invoke(["export", str(exported)], seeded_url)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    content = exported.read_text(encoding="utf-8")
    assert '"customer.{phone,email}"' in content
    assert "g,bob,sales_manager,销售部" in content
    before = rule_count(seeded_url)
    result = invoke(["import", str(exported)], seeded_url)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "0 added, 0 removed" in result.output  # type: ignore[attr-defined]
    assert rule_count(seeded_url) == before


def test_dry_run_shows_the_change_and_writes_nothing(seeded_url: str, tmp_path: Path) -> None:
    exported = tmp_path / "rules.csv"
    invoke(["export", str(exported)], seeded_url)
    exported.write_text(
        exported.read_text(encoding="utf-8") + "p,finance,*,customer.email,READ,ALL,allow\n",
        encoding="utf-8",
    )
    before = rule_count(seeded_url)
    result = invoke(["import", "--dry-run", str(exported)], seeded_url)
    assert "+ p,finance,*,customer.email,READ,ALL,allow" in result.output  # type: ignore[attr-defined]
    assert rule_count(seeded_url) == before


@pytest.mark.parametrize(
    "bad_line",
    [
        "p,finance,*,customer.nosuchfield,READ,ALL,allow",
        "p,finance,火星部,customer,READ,ALL,allow",
        "x,whatever",
        "p,finance,*,customer,READ,EVERYWHERE,allow",
    ],
)
def test_a_bad_line_refuses_the_whole_file(seeded_url: str, tmp_path: Path, bad_line: str) -> None:
    exported = tmp_path / "rules.csv"
    invoke(["export", str(exported)], seeded_url)
    exported.write_text(exported.read_text(encoding="utf-8") + bad_line + "\n", encoding="utf-8")
    before = rule_count(seeded_url)
    runner = CliRunner()
    result = runner.invoke(policy, ["import", str(exported)], env={
        "DATABASE_URL": seeded_url, "DOSSIER_ENV": "test", "DOSSIER_JWT_SECRET": "x" * 40,
        "DOSSIER_FIELD_KEYS": "k1:" + "A" * 43, "DOSSIER_BLIND_INDEX_KEY": "b" * 40})  # fmt: skip
    assert result.exit_code != 0
    assert "refused" in result.output or "Error" in result.output
    assert rule_count(seeded_url) == before


def test_an_import_that_locks_out_every_admin_is_refused(seeded_url: str, tmp_path: Path) -> None:
    exported = tmp_path / "rules.csv"
    invoke(["export", str(exported)], seeded_url)
    kept = [line for line in exported.read_text(encoding="utf-8").splitlines()
            if not line.startswith("p,admin,*,policy")]  # fmt: skip
    exported.write_text("\n".join(kept) + "\n", encoding="utf-8")
    before = rule_count(seeded_url)
    result = invoke(["import", str(exported)], seeded_url)
    assert result.exit_code != 0  # type: ignore[attr-defined]
    assert "nobody able to edit policies" in result.output  # type: ignore[attr-defined]
    assert rule_count(seeded_url) == before
