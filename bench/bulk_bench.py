"""Bulk bench: a 100 000-customer export (memory growth, latency of other requests meanwhile)
and a 100 000-row import, in one process, on a database of its own.

    python -m bench.bulk_bench [--customers 100000] [--rows 100000] [--keep]

Memory is the process's RSS sampled every 20 ms during the export, against the RSS just before
it (the seed runs in a child process, so its garbage cannot hide the export's growth). Latency
is a small GraphQL read (`customers(first: 10)` as alice) sent back to back on the same event
loop while the export runs, against the same read with nothing else running.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import csv
import dataclasses
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import psutil

from api.app import create_app
from api.seed.demo import seed_demo
from api.settings import Settings
from bulk.columns import map_columns
from bulk.sources import read_table
from db.crypto import new_key
from db.engine import create_engine
from db.migrate import upgrade_to_head

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NAME = "dossier_bulk_bench"
SMALL_READ = "{ customers(first: 10) { nodes { id name phone } } }"
EXPORT = """mutation($format: ExportFormat!) { exportCustomers(format: $format)
  { id rowCount url omittedFields } }"""


def _settings(url: str, data_dir: Path, keys: dict[str, str]) -> Settings:
    return Settings.from_env(
        {
            "DOSSIER_ENV": "test",
            "DATABASE_URL": url,
            "DOSSIER_DATA_DIR": str(data_dir),
            "DOSSIER_FIELD_KEYS": keys["field"],
            "DOSSIER_BLIND_INDEX_KEY": keys["blind"],
            "DOSSIER_JWT_SECRET": keys["jwt"],
            "DOSSIER_EXECUTION_TIMEOUT_SECONDS": "600",
            "DOSSIER_RATE_USER_BURST": "1000000",
            "DOSSIER_RATE_USER_PER_SECOND": "1000000",
        }
    )


async def _database(customers: int) -> tuple[str, dict[str, str]]:
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + NAME
    keys = {"field": f"k1:{new_key()}", "blind": new_key(), "jwt": new_key()}
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await admin.close()
    settings = _settings(url, Path(tempfile.gettempdir()), keys)
    engine = create_engine(url)
    started = time.perf_counter()
    try:
        await upgrade_to_head(engine)
        await seed_demo(engine, settings.field_cipher, customers=customers)
    finally:
        await engine.dispose()
    print(f"seeded {customers:,} customers in {time.perf_counter() - started:.0f} s")
    return url, keys


async def _token(http: httpx.AsyncClient, username: str) -> str:
    response = await http.post(
        "/auth/token", data={"username": username, "password": "dossier-demo"}
    )
    return str(response.json()["access_token"])


async def _latencies(http: httpx.AsyncClient, token: str, stop: asyncio.Event) -> list[float]:
    found = []
    while not stop.is_set():
        started = time.perf_counter()
        response = await http.post(
            "/graphql", json={"query": SMALL_READ}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        found.append((time.perf_counter() - started) * 1000)
    return found


async def _rss_peak(stop: asyncio.Event) -> int:
    process, peak = psutil.Process(), 0
    while not stop.is_set():
        peak = max(peak, process.memory_info().rss)
        await asyncio.sleep(0.02)
    return peak


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"n={len(values)} p50={statistics.median(values):.1f} ms p99={p99:.1f} ms "
        f"max={ordered[-1]:.1f} ms"
    )


async def _export_run(http: httpx.AsyncClient, fmt: str) -> dict[str, object]:
    bob, alice = await _token(http, "bob"), await _token(http, "alice")
    stop = asyncio.Event()
    baseline_stop = asyncio.Event()
    baseline_task = asyncio.create_task(_latencies(http, alice, baseline_stop))
    await asyncio.sleep(3)
    baseline_stop.set()
    baseline = await baseline_task

    before = psutil.Process().memory_info().rss
    peak_task = asyncio.create_task(_rss_peak(stop))
    latency_task = asyncio.create_task(_latencies(http, alice, stop))
    started = time.perf_counter()
    response = await http.post(
        "/graphql",
        json={"query": EXPORT, "variables": {"format": fmt}},
        headers={"Authorization": f"Bearer {bob}"},
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    stop.set()
    peak, during = await peak_task, await latency_task
    result = response.json()
    assert "errors" not in result, result
    export = result["data"]["exportCustomers"]
    download = await http.get(export["url"], headers={"Authorization": f"Bearer {bob}"})
    figures = {
        "format": fmt,
        "rows": export["rowCount"],
        "seconds": round(elapsed, 1),
        "rows_per_second": round(export["rowCount"] / elapsed),
        "file_mb": round(len(download.content) / 1e6, 1),
        "rss_growth_mb": round((peak - before) / 1e6, 1),
        "baseline_read": _summary(baseline),
        "read_during_export": _summary(during),
    }
    print(json.dumps(figures, ensure_ascii=False))
    return figures


def _import_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["客户名称", "类型", "行业", "地区", "手机", "邮箱", "标签", "地址"])
        for i in range(rows):
            writer.writerow([
                f"导入基准{i:06d}号网络科技有限公司", "公司", "互联网", "上海",
                f"+86 199{i:08d}", f"bench{i}@import-bench.cn", "新客户",
                f"上海市浦东新区测试路{i % 2000}号",
            ])  # fmt: skip


async def _import_run(settings: Settings, url: str, rows: int, work_dir: Path) -> None:
    from api.cli.importer import import_customers

    path = work_dir / "bench-import.csv"
    _import_file(path, rows)
    table = read_table(path, path.name)
    map_columns(table.header)
    for dry_run in (True, False):
        started = time.perf_counter()
        outcome = await import_customers(
            settings, url, path=path, table=table, mapping={}, username="alice", dry_run=dry_run
        )
        elapsed = time.perf_counter() - started
        p = outcome.progress
        print(json.dumps({
            "import": "dry run" if dry_run else "real", "rows": p.processed,
            "accepted": p.accepted, "rejected": p.rejected, "duplicates": p.duplicates,
            "written": p.written, "seconds": round(elapsed, 1),
            "rows_per_second": round(p.processed / elapsed),
        }))  # fmt: skip


def _seed_elsewhere(customers: int) -> tuple[str, dict[str, str]]:
    """Seed in a child process: memory the seed allocates would hide the export's growth."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_seed, customers).result()


def _seed(customers: int) -> tuple[str, dict[str, str]]:
    return asyncio.run(_database(customers))


async def main(customers: int, rows: int, keep: bool) -> None:
    url, keys = await asyncio.to_thread(_seed_elsewhere, customers)
    work_dir = Path(tempfile.mkdtemp(prefix="dossier-bulk-bench-"))
    settings = _settings(url, work_dir, keys)
    try:
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as http:
                await _export_run(http, "CSV")
                await _export_run(http, "XLSX")
        await _import_run(dataclasses.replace(settings), url, rows, work_dir)
    finally:
        if not keep:
            admin = await asyncpg.connect(ADMIN_URL)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
            finally:
                await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.customers, arguments.rows, arguments.keep))
