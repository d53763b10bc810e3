"""Export bench: 100 000 customers as CSV and XLSX, the export path of today against the one
before it (openpyxl, one schema object per row, fetch then write, JIT on, the segment as a
correlated subquery per customer), in the same run.

    python -m bench.export_bench [--customers 100000] [--rounds 1] [--profile] [--keep]

The database is seeded in a child process (`dossier seed`'s code, timed); each export is the
`exportCustomers` mutation as bob (every field, his masks: phone and email row-dependent,
totalSpend, creditCode and idNumber omitted), written inline in this process through the app
(the inline limit is raised above N), so the figures are the file's writing, its storage in
PostgreSQL and its audit event, not a worker's start-up. Printed per export: wall seconds,
this process's CPU seconds (less noisy than wall time on a shared machine), and the peak RSS
growth over the RSS just before it (sampled every 20 ms). `--profile` prints a pyinstrument
profile of each export (slower; chunks are then written on the event loop's thread).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

import bulk.exports as exports
from api.app import create_app
from bench.bulk_bench import ADMIN_URL, _seed_elsewhere, _settings
from bulk.cells import csv_cell, xlsx_cell
from bulk.downloads import Download, register_download
from bulk.files import ExportFormat, TableWriter, file_sha256, open_writer
from bulk.objects import ObjectStore
from db.crypto import FieldCipher
from resolvers.masking import Materialiser
from schema.node import to_global_id

NAME = "dossier_bulk_bench"  # bench.bulk_bench's database, seeded by its code
EXPORT = """mutation($format: ExportFormat!) { exportCustomers(format: $format)
  { id rowCount url omittedFields } }"""


# -- the path before this bench (kept here only, to measure against) --------------------------


class _OpenpyxlWriter:
    """The former XLSX writer: openpyxl's write-only workbook."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        from openpyxl import Workbook  # type: ignore[import-untyped]

        self._path = path
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("export")
        self._sheet.append([xlsx_cell(name) for name in header])

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self._sheet.append([xlsx_cell(value) for value in row])

    def close(self) -> None:
        self._book.save(self._path)


class _CsvWriter:
    def __init__(self, path: Path, header: Sequence[str]) -> None:
        import csv

        self._file = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow([csv_cell(name) for name in header])

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        self._writer.writerows([csv_cell(value) for value in row] for row in rows)

    def close(self) -> None:
        self._file.close()


def _old_table_rows(
    prepared: exports.PreparedExport, cipher: FieldCipher, rows: Sequence[Row[Any]]
) -> list[list[Any]]:
    objects, _ = Materialiser(prepared.plan, cipher).build(rows)
    table: list[list[Any]] = []
    for obj in objects:
        line: list[Any] = []
        for column in prepared.columns:
            field = column.field
            if field is None:
                line.append(obj.id)
            elif field.name in obj.withheld:
                line.append(None)
            elif column.custom_key is not None:
                line.append((obj.custom_fields or {}).get(column.custom_key))
            elif field.column is not None:
                line.append(getattr(obj, field.attr))
            else:
                assert field.foreign_key is not None and field.target is not None
                key = getattr(obj, field.foreign_key)
                line.append(None if key is None else to_global_id(field.target, key))
        table.append(line)
    return table


async def _old_write_export(
    session: AsyncSession,
    prepared: exports.PreparedExport,
    *,
    cipher: FieldCipher,
    directory: Path,
    ttl_seconds: int,
    file_id: uuid.UUID | None = None,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
    objects: ObjectStore | None = None,
) -> tuple[Download, int, str]:
    path = directory / f"export-{uuid.uuid4().hex}{prepared.format.suffix}"
    writer: TableWriter = (
        _CsvWriter(path, prepared.header)
        if prepared.format is ExportFormat.CSV
        else _OpenpyxlWriter(path, prepared.header)
    )
    row_count = 0
    try:
        result = await session.stream(prepared.statement)
        async for chunk in result.partitions():

            def write(rows: Sequence[Row[Any]] = chunk) -> int:
                table = _old_table_rows(prepared, cipher, rows)
                writer.write_rows(table)
                return len(table)

            row_count += await exports.asyncio.to_thread(write)
    finally:
        await asyncio.to_thread(writer.close)
    sha256 = await asyncio.to_thread(file_sha256, path)
    download = await register_download(
        session,
        principal=prepared.requester.principal.subject,
        path=path,
        content_type=prepared.format.content_type,
        row_count=row_count,
        sha256=sha256,
        ttl_seconds=ttl_seconds,
        file_id=file_id,
        objects=objects,
    )
    path.unlink(missing_ok=True)
    return download, row_count, sha256


def _old_set_based(spec: Any, fields: Any) -> tuple[Any, None]:
    return spec, None  # segment as the correlated subquery of a read


_NEW_WRITE_EXPORT = exports.write_export
_NEW_SET_BASED = exports._set_based
_ = open_writer  # the new path's writer, named for the reader of this file


@contextlib.contextmanager
def _path(variant: str) -> Iterator[None]:
    baseline = variant == "baseline"
    exports.write_export = _old_write_export if baseline else _NEW_WRITE_EXPORT  # type: ignore[assignment]
    exports._set_based = _old_set_based if baseline else _NEW_SET_BASED  # type: ignore[assignment]
    try:
        yield
    finally:
        exports.write_export = _NEW_WRITE_EXPORT  # type: ignore[assignment]
        exports._set_based = _NEW_SET_BASED  # type: ignore[assignment]


# -- measuring -------------------------------------------------------------------------------


async def _rss_peak(stop: asyncio.Event) -> int:
    process, peak = psutil.Process(), 0
    while not stop.is_set():
        peak = max(peak, process.memory_info().rss)
        await asyncio.sleep(0.02)
    return peak


@contextlib.asynccontextmanager
async def _profiled(enabled: bool) -> AsyncIterator[None]:
    if not enabled:
        yield
        return
    import pyinstrument

    original = exports.asyncio.to_thread

    async def inline(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    exports.asyncio.to_thread = inline  # type: ignore[assignment]  # one thread, one profile
    profiler = pyinstrument.Profiler(async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        exports.asyncio.to_thread = original  # type: ignore[assignment]
        print(profiler.output_text(color=False, show_all=False))


async def _export(
    http: httpx.AsyncClient, token: str, variant: str, fmt: str, profile: bool
) -> dict[str, Any]:
    process = psutil.Process()
    before = process.memory_info().rss
    stop = asyncio.Event()
    peak_task = asyncio.create_task(_rss_peak(stop))
    cpu, started = time.process_time(), time.perf_counter()
    with _path(variant):
        async with _profiled(profile):
            response = await http.post(
                "/graphql",
                json={"query": EXPORT, "variables": {"format": fmt}},
                headers={"Authorization": f"Bearer {token}"},
                timeout=900,
            )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stop.set()
    peak = await peak_task
    body = response.json()
    assert "errors" not in body, body
    answer = body["data"]["exportCustomers"]
    download = await http.get(answer["url"], headers={"Authorization": f"Bearer {token}"})
    assert download.status_code == 200
    figures = {
        "path": variant,
        "format": fmt,
        "rows": answer["rowCount"],
        "seconds": round(elapsed, 1),
        "cpu_seconds": round(cpu, 1),
        "rss_growth_mb": round((peak - before) / 1e6, 1),
        "file_mb": round(len(download.content) / 1e6, 1),
        "omitted": answer["omittedFields"],
    }
    print(json.dumps(figures, ensure_ascii=False), flush=True)
    return figures


async def main(customers: int, rounds: int, profile: bool, keep: bool) -> None:
    started = time.perf_counter()
    url, keys = await asyncio.to_thread(_seed_elsewhere, customers)
    print(json.dumps({"seeded": customers, "seconds": round(time.perf_counter() - started, 1)}))
    work_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="dossier-export-bench-"))
    settings = _settings(url, work_dir, keys)
    settings = dataclasses.replace(
        settings,
        bulk=dataclasses.replace(settings.bulk, inline_rows=customers + 1),
        worker=dataclasses.replace(settings.worker, inprocess=False),
    )
    results: list[dict[str, Any]] = []
    try:
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 40001))
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                response = await http.post(
                    "/auth/token", data={"username": "bob", "password": "dossier-demo"}
                )
                token = str(response.json()["access_token"])
                for _ in range(rounds):
                    for fmt in ("CSV", "XLSX"):
                        for variant in ("baseline", "new"):
                            results.append(await _export(http, token, variant, fmt, profile))
    finally:
        if not keep:
            import asyncpg

            admin = await asyncpg.connect(ADMIN_URL)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
            finally:
                await admin.close()
    for fmt in ("CSV", "XLSX"):
        old = [r for r in results if r["format"] == fmt and r["path"] == "baseline"]
        new = [r for r in results if r["format"] == fmt and r["path"] == "new"]
        best_old = min(r["seconds"] for r in old)
        best_new = min(r["seconds"] for r in new)
        print(
            f"{fmt}: {customers:,} customers, baseline {best_old} s "
            f"(cpu {min(r['cpu_seconds'] for r in old)} s), new {best_new} s "
            f"(cpu {min(r['cpu_seconds'] for r in new)} s), "
            f"peak RSS growth new {max(r['rss_growth_mb'] for r in new)} MB"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.customers, arguments.rounds, arguments.profile, arguments.keep))
