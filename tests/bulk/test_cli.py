"""`dossier import customers` against the demo database, as a demo user."""

from __future__ import annotations

import asyncio
import base64
import csv
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from api.cli import main
from api.settings import Settings
from db.crypto import new_key
from tests.bulk.conftest import count_customers, csv_bytes


def _environment(settings: Settings, data_dir: Path) -> dict[str, str]:
    cipher = settings.field_cipher
    keys = ",".join(
        f"{key_id}:{base64.urlsafe_b64encode(key).decode().rstrip('=')}"
        for key_id, key in cipher.keys.items()
    )
    return {
        "DOSSIER_ENV": "test",
        "DATABASE_URL": settings.database_url or "",
        "DOSSIER_DATA_DIR": str(data_dir),
        "DOSSIER_FIELD_KEYS": keys,
        "DOSSIER_FIELD_KEY_ACTIVE": cipher.active_key_id,
        "DOSSIER_BLIND_INDEX_KEY": cipher.blind_index_key.decode(),
        "DOSSIER_JWT_SECRET": new_key(),
    }


def _file(tmp_path: Path, prefix: str) -> Path:
    rows = [["name", "industry", "region", "phone", "email"]]
    rows += [[f"{prefix}{i:03d}号科技有限公司", "互联网", "广东", "", f"cli{i}@{prefix}.example.cn"]
             for i in range(30)]  # fmt: skip
    rows.append([f"{prefix}坏行", "互联网", "火星", "", ""])
    path = tmp_path / "customers.csv"
    path.write_bytes(csv_bytes(rows, "gbk"))
    return path


async def test_cli_dry_run_then_import_with_report(
    demo_settings: Settings, demo, demo_engine: AsyncEngine, tmp_path: Path
):
    env = _environment(demo_settings, tmp_path / "data")
    source = _file(tmp_path, "命令行")
    runner = CliRunner()

    def invoke(*args: str) -> str:
        result = runner.invoke(main, ["import", "customers", str(source), *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    dry = await asyncio.to_thread(invoke, "--as", "alice", "--dry-run")
    assert "30 accepted, 1 rejected" in dry and "would write 30" in dry
    assert await count_customers(demo_engine, "命令行") == 0

    report = tmp_path / "report.csv"
    real = await asyncio.to_thread(invoke, "--as", "alice", "--report", str(report))
    assert "(30 written)" in real
    assert await count_customers(demo_engine, "命令行") == 30
    with report.open(encoding="utf-8-sig") as file:
        lines = list(csv.DictReader(file))
    assert [(line["row"], line["field"], line["rule"]) for line in lines] == [
        ("32", "region", "vocabulary")
    ]


async def test_cli_refuses_bad_files_and_users_without_create(
    demo_settings: Settings, demo, tmp_path: Path
):
    env = _environment(demo_settings, tmp_path / "data")
    runner = CliRunner()
    binary = tmp_path / "data.csv"
    binary.write_bytes(bytes(range(256)) * 10)
    result = await asyncio.to_thread(
        runner.invoke, main, ["import", "customers", str(binary), "--as", "alice"], env=env
    )
    assert result.exit_code == 1 and "binary data" in result.output

    source = _file(tmp_path, "无权")
    result = await asyncio.to_thread(
        runner.invoke, main, ["import", "customers", str(source), "--as", "bob"], env=env
    )
    assert result.exit_code == 1 and "Not allowed to create customers" in result.output
