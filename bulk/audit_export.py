"""`exportAuditEvents`: a filtered excerpt of the trail as a one-time download, itself audited.

The file is an excerpt of the chain, oldest first, each event with its `hash` and `prevHash`,
so whoever receives it can recompute every event's hash from its content (`audit.canonical`)
and, wherever sequence numbers follow each other, check that `prevHash` is the previous hash.
It goes through the bulk export machinery (file under the bulk directory, `register_download`,
`GET /exports/{token}` once, for the same principal), and the AUDIT_EXPORT event — filter,
format, row count, the file's SHA-256 — is queued in the same savepoint as the download's
registration: no download without its event.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

import strawberry

from audit.events import AuditAction
from audit.queries import EXPORT_COLUMNS, AuditFilter, stream_events
from audit.queries import ExportFormat as StreamFormat
from bulk.downloads import register_download, sweep_expired
from bulk.operations import runtime_of
from policy.vocabulary import Action, Resource
from resolvers.audit import resource_filter
from resolvers.context import RequestContext
from resolvers.writes import record, require, write
from schema import bulk as types
from schema.audit import AuditEventFilter

OPERATION = "exportAuditEvents"


@strawberry.enum(name="AuditExportFormat", description="File format of an audit export.")
class AuditExportFormat(Enum):
    CSV = "CSV"  # one row per event, JSON columns (changes, ids) as compact JSON text
    JSONL = "JSONL"  # one JSON object per line: what a recipient re-verifies the chain with

    @property
    def stream_format(self) -> StreamFormat:
        return StreamFormat.CSV if self is AuditExportFormat.CSV else StreamFormat.JSONL

    @property
    def content_type(self) -> str:
        if self is AuditExportFormat.CSV:
            return "text/csv; charset=utf-8"
        return "application/x-ndjson; charset=utf-8"

    @property
    def suffix(self) -> str:
        return ".csv" if self is AuditExportFormat.CSV else ".jsonl"


@dataclass(frozen=True)
class _Written:
    row_count: int
    sha256: str


def audit_filter_of(filter: AuditEventFilter) -> AuditFilter:
    """The GraphQL filter as `audit.queries` takes it; global ids narrow as in `auditEvents`."""
    resource_type, resource_id = resource_filter(filter)
    return AuditFilter(
        actor=filter.actor,
        action=filter.action,
        resource_type=resource_type,
        resource_id=resource_id,
        from_=filter.from_,
        to=filter.to,
    )


def filter_summary(filter: AuditEventFilter) -> dict[str, Any]:
    """The filter as asked, GraphQL names, for the AUDIT_EXPORT event."""
    asked = {
        "actor": filter.actor,
        "action": filter.action,
        "resourceType": filter.resource_type,
        "resourceId": filter.resource_id,
        "from": filter.from_,
        "to": filter.to,
    }
    return {name: value for name, value in asked.items() if value is not None}


def _write_chunk(file: BinaryIO, digest: Any, chunk: bytes) -> None:
    digest.update(chunk)
    file.write(chunk)


def _csv_rows(path: Path) -> int:
    """Events in a CSV export: records after the header (quoted values may hold newlines)."""
    with path.open(newline="", encoding="utf-8") as file:
        return max(sum(1 for _ in csv.reader(file)) - 1, 0)


async def _write_file(
    context: RequestContext, criteria: AuditFilter, format: AuditExportFormat, path: Path
) -> _Written:
    """Stream the events into `path` chunk by chunk; hash while writing (worker threads)."""
    digest = hashlib.sha256()
    lines = 0
    file: BinaryIO = await asyncio.to_thread(path.open, "wb")
    try:
        chunks = stream_events(context.db.session, criteria, format.stream_format)
        try:
            async for chunk in chunks:
                lines += chunk.count(b"\n")
                await asyncio.to_thread(_write_chunk, file, digest, chunk)
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]  # an async generator
    finally:
        await asyncio.to_thread(file.close)
    if format is AuditExportFormat.CSV:
        rows = await asyncio.to_thread(_csv_rows, path)
    else:
        rows = lines  # json.dumps escapes newlines: one line is one event
    return _Written(rows, digest.hexdigest())


async def export_audit_events(
    context: RequestContext, filter: AuditEventFilter, format: AuditExportFormat
) -> types.Export:
    """Write the filtered excerpt, register its one-time download and queue its audit event."""
    require(context, Resource.AUDIT, Action.EXPORT, OPERATION)
    runtime = runtime_of(context)
    criteria = audit_filter_of(filter)
    path = runtime.new_path(f"audit-export-{uuid.uuid4().hex}{format.suffix}")
    try:
        async with write(context) as session:
            await sweep_expired(session, runtime.objects, context.extras["savepoint_events"])
            written = await _write_file(context, criteria, format, path)
            download = await register_download(
                session,
                principal=context.principal.subject,
                path=path,
                content_type=format.content_type,
                row_count=written.row_count,
                sha256=written.sha256,
                ttl_seconds=runtime.settings.download_ttl_seconds,
                objects=runtime.objects,
            )
            await record(
                context,
                session,
                AuditAction.AUDIT_EXPORT,
                Resource.AUDIT.value,
                fields=EXPORT_COLUMNS,
                changes={
                    "exportId": str(download.id),
                    "filter": filter_summary(filter),
                    "format": format.value,
                    "rowCount": written.row_count,
                    "sha256": written.sha256,
                },
            )
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return types.Export(
        id=strawberry.ID(str(download.id)),
        row_count=written.row_count,
        url=download.url,
        fields=list(EXPORT_COLUMNS),
        sha256=written.sha256,
        expires_at=download.expires_at,
        format=format.name,
    )


@strawberry.type
class AuditExportMutation:
    @strawberry.mutation(
        description="The audit events matching `filter`, oldest first with `hash` and "
        "`prevHash`, as a one-time download. Needs EXPORT on `audit`; the export is audited. "
        "The file is CSV or "
        "JSON Lines as asked."
    )
    async def export_audit_events(
        self,
        info: strawberry.Info,
        filter: AuditEventFilter | None = None,
        format: AuditExportFormat = AuditExportFormat.JSONL,
    ) -> types.Export | None:
        context: RequestContext = info.context
        return await export_audit_events(context, filter or AuditEventFilter(), format)


__all__ = ["AuditExportFormat", "AuditExportMutation", "export_audit_events"]
