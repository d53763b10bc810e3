"""Exports: the rows and fields a caller may both read and export, streamed into a file.

An export is a read that leaves the building, so it needs both permissions at every level: a
row is exported where the READ and the EXPORT rules both reach it, a field where both allow it
on that row. The field plan is `resolvers.masking.plan_columns` fed with those intersections,
so masking happens in SQL exactly as for a GraphQL read (row-dependent fields come back as
`CASE WHEN`), and a field the caller may export nowhere is left out of the file and named in
the answer.

Rows come from a server-side cursor in chunks; decrypting and writing a chunk runs in a worker
thread, so a 100 000-row export neither holds the rows in memory nor stalls the event loop.
Rows go straight from the statement into cells (`bulk.rows.RowReader`), with no
schema object in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import FromClause, Select, and_, func, select, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction, AuditRecord
from bulk.cells import as_text
from bulk.downloads import Download, register_download, sweep_expired
from bulk.export_jobs import queue_export
from bulk.files import ExportFormat, TableWriter, file_sha256, open_writer
from bulk.objects import ObjectStore
from bulk.requests import Requester, filter_json
from bulk.rows import RowReader
from bulk.runtime import BulkRuntime
from db.crypto import FieldCipher
from policy.custom_fields import FieldCatalog, custom_key
from policy.decisions import AccessDecisions
from policy.predicates import ALWAYS, Predicate, all_of, implies
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, ForbiddenError
from resolvers.filters import CUSTOMER_FILTERS, FilterRule, compile_filter
from resolvers.masking import ColumnPlan, plan_columns
from resolvers.records import (
    CONTACT,
    CUSTOM_FIELDS,
    CUSTOMER,
    OPPORTUNITY,
    TICKET,
    FieldSpec,
    RecordSpec,
)
from resolvers.records_query import CONTACT_FILTERS, OPPORTUNITY_FILTERS, TICKET_FILTERS
from resolvers.writes import record, write

ID_COLUMN = "id"
_NO_JIT = text("SET LOCAL jit = off")


@dataclass(frozen=True)
class ExportTarget:
    """One exportable type: its record spec, the filters its root list accepts, its operation."""

    spec: RecordSpec
    filters: tuple[FilterRule, ...]
    operation: str

    @property
    def exportable(self) -> tuple[str, ...]:
        """Columns and to-one references (as global ids); connections are not exportable.
        Custom fields are columns of their own, `cf.<key>` (`exportable_with`)."""
        names = [
            name
            for name, field in self.spec.fields.items()
            if (field.column is not None or field.foreign_key is not None) and not field.is_custom
        ]
        return (ID_COLUMN, *names)

    def exportable_with(self, catalog: FieldCatalog) -> tuple[str, ...]:
        return (*self.exportable, *(d.field for d in catalog.active(self.spec.resource)))


CUSTOMER_EXPORT = ExportTarget(CUSTOMER, CUSTOMER_FILTERS, "exportCustomers")
CONTACT_EXPORT = ExportTarget(CONTACT, CONTACT_FILTERS, "exportContacts")
OPPORTUNITY_EXPORT = ExportTarget(OPPORTUNITY, OPPORTUNITY_FILTERS, "exportOpportunities")
TICKET_EXPORT = ExportTarget(TICKET, TICKET_FILTERS, "exportTickets")


class ExportDecisions:
    """READ ∧ EXPORT, answering `plan_columns`'s one question the way `AccessDecisions` does."""

    def __init__(self, decisions: AccessDecisions) -> None:
        self._decisions = decisions
        self.snapshot = decisions.snapshot  # custom field definitions, for `plan_columns`

    def rows(self, resource: Resource) -> Predicate:
        return all_of(
            [
                self._decisions.rows(resource, Action.READ),
                self._decisions.rows(resource, Action.EXPORT),
            ]
        )

    def field(self, resource: Resource, name: str, action: Action = Action.EXPORT) -> Predicate:
        both = all_of(
            [
                self._decisions.field(resource, name, Action.READ),
                self._decisions.field(resource, name, Action.EXPORT),
            ]
        )
        # reaching every exported row is no mask at all: select the column as is
        return ALWAYS if implies(self.rows(resource), both) else both


class ExportStatus(StrEnum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ExportResult:
    """A finished export (`download` set) or one handed to a worker (`status` RUNNING)."""

    id: uuid.UUID
    download: Download | None
    row_count: int | None
    fields: tuple[str, ...]
    omitted_fields: tuple[str, ...]
    sha256: str | None
    format: ExportFormat
    status: ExportStatus = ExportStatus.DONE


@dataclass(frozen=True)
class _Column:
    name: str
    field: FieldSpec | None  # None for the global id
    custom_key: str | None = None  # a custom field's key: its value is in `customFields`


@dataclass(frozen=True)
class PreparedExport:
    """An export checked and planned for one requester: what to select and how to write it."""

    target: ExportTarget
    requester: Requester
    filter: object | None
    format: ExportFormat
    plan: ColumnPlan
    columns: tuple[_Column, ...]
    omitted: tuple[str, ...]
    statement: Select[Any]
    count_statement: Select[Any]
    purpose: str | None = None  # only customers with an active consent for it (issue 23)

    @property
    def header(self) -> list[str]:
        return [column.name for column in self.columns]


def _chosen_fields(
    target: ExportTarget, fields: Sequence[str] | None, catalog: FieldCatalog
) -> list[str]:
    exportable = target.exportable_with(catalog)
    if fields is None:
        return list(exportable)
    unknown = [name for name in fields if name not in exportable]
    if unknown:
        raise BadUserInputError(
            f"cannot export {', '.join(unknown)}; exportable: {', '.join(exportable)}",
            argument="fields",
        )
    if not fields:
        raise BadUserInputError("name at least one field to export", argument="fields")
    return list(dict.fromkeys(fields))


def _filter_summary(values: object | None) -> dict[str, Any]:
    if values is None:
        return {}
    return {
        name: as_text(value) for name, value in sorted(vars(values).items()) if value is not None
    }


SEGMENT = "segment"


def _set_based(
    spec: RecordSpec, fields: Sequence[str] | None
) -> tuple[RecordSpec, FromClause | None]:
    """The customer spec with `segment` read from the won deals grouped once and joined
    (`customer_segment_joined`), when the export may include it: the value is the same, the
    correlated form costs a subquery per customer. Other specs as they are."""
    field = spec.fields.get(SEGMENT)
    if spec.resource is not Resource.CUSTOMER or field is None or field.expression is None:
        return spec, None
    if fields is not None and SEGMENT not in fields:
        return spec, None
    from insights.segments import customer_segment_joined

    joined, expression = customer_segment_joined()
    segment = dataclasses.replace(field, expression=lambda: expression)
    return dataclasses.replace(spec, fields={**spec.fields, SEGMENT: segment}), joined


def prepare_export(
    requester: Requester,
    target: ExportTarget,
    *,
    filter: object | None,
    fields: Sequence[str] | None,
    format: ExportFormat,
    chunk_rows: int,
    purpose: str | None = None,
    cipher: FieldCipher | None = None,
) -> PreparedExport:
    """Check and plan an export; raises FORBIDDEN without the EXPORT action on the resource,
    BAD_USER_INPUT for unknown fields or filters on fields the caller may not read everywhere.
    Pure: a worker calls it again with the request's decisions and gets the same plan."""
    spec, joined = _set_based(target.spec, fields)
    if not requester.decisions.can(spec.resource, Action.EXPORT):
        raise ForbiddenError(f"Mutation.{target.operation}", f"Not allowed to {target.operation}")
    chosen = _chosen_fields(target, fields, requester.decisions.snapshot.catalog)
    where = compile_filter(spec, requester.decisions, target.filters, filter, cipher)
    if purpose is not None:
        from resolvers.consents import checked_purpose, has_active_consent

        if spec.resource is not Resource.CUSTOMER:
            raise BadUserInputError("only customers carry consents", argument="purpose")
        purpose = checked_purpose(purpose)
        where = [*where, has_active_consent(purpose)]
    decisions = ExportDecisions(requester.decisions)
    custom = [name for name in chosen if custom_key(name) is not None]
    plan = plan_columns(
        spec,
        [name for name in chosen if name != ID_COLUMN and name not in custom]
        + ([CUSTOM_FIELDS] if custom else []),
        decisions,  # type: ignore[arg-type]  # duck-typed: .field() and .snapshot
        Action.EXPORT,
    )
    omitted = tuple(name for name in chosen if name in {f.name for f in plan.hidden})
    pseudo = {f.name: f for f in (*plan.visible, *plan.row_dependent)}
    columns = tuple(
        _Column(name, pseudo[name], custom_key(name))
        if name in custom
        else _Column(name, None if name == ID_COLUMN else spec.fields[name])
        for name in chosen
        if name not in omitted
    )
    rows_allowed = decisions.rows(spec.resource)
    condition = and_(rows_allowed.sql(spec.scope_columns()), *spec.live(), *where)
    source = spec.from_clause()
    if joined is not None and any(c.field is spec.fields[SEGMENT] for c in columns):
        source = source.outerjoin(joined, joined.c.customer_id == spec.table.c.id)
    statement = (
        select(*plan.columns)
        .select_from(source)
        .where(condition)
        .order_by(spec.table.c.id)
        .execution_options(yield_per=chunk_rows)
    )
    counted = select(func.count()).select_from(spec.from_clause()).where(condition)
    return PreparedExport(
        target, requester, filter, format, plan, columns, omitted, statement, counted, purpose
    )


def export_changes(
    prepared: PreparedExport, export_id: uuid.UUID, row_count: int, sha256: str
) -> dict[str, Any]:
    """What the EXPORT audit event says of an export, inline or run by a worker alike."""
    return {
        "exportId": str(export_id),
        "filter": _filter_summary(prepared.filter),
        "format": prepared.format.value,
        "rowCount": row_count,
        "sha256": sha256,
        "omittedFields": list(prepared.omitted),
        **({"purpose": prepared.purpose} if prepared.purpose is not None else {}),
    }


def export_event(
    prepared: PreparedExport, export_id: uuid.UUID, row_count: int, sha256: str
) -> AuditRecord:
    """The EXPORT event as `resolvers.writes.record` writes it for the requester."""
    principal, meta = prepared.requester.principal, prepared.requester.meta
    return AuditRecord(
        actor=principal.name,
        actor_kind=principal.kind.value,
        action=AuditAction.EXPORT,
        resource_type=prepared.target.spec.resource.value,
        resource_ids=[],
        fields=sorted(prepared.header),
        changes=export_changes(prepared, export_id, row_count, sha256),
        operation=meta.operation,
        query_hash=meta.query_hash,
        ip=meta.ip,
        user_agent=meta.user_agent,
        request_id=meta.request_id,
        token_id=principal.token_id,
    )


async def write_export(
    session: AsyncSession,
    prepared: PreparedExport,
    *,
    cipher: FieldCipher,
    directory: Path,
    ttl_seconds: int,
    file_id: uuid.UUID | None = None,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
    objects: ObjectStore | None = None,
) -> tuple[Download, int, str]:
    """Stream the rows into a file and register its download in the caller's transaction;
    (download, rows, SHA-256). The caller writes the audit event in the same transaction."""
    path = directory / f"export-{uuid.uuid4().hex}{prepared.format.suffix}"
    try:
        writer: TableWriter = await asyncio.to_thread(
            open_writer, prepared.format, path, prepared.header
        )
        row_count = 0
        reader = RowReader(
            prepared.plan, cipher, [(c.field, c.custom_key) for c in prepared.columns]
        )
        try:
            # a plan JIT-compiled for a cursor costs more than it saves here (the segment's
            # correlated subquery: 7.4 s with JIT, 4.3 s without, for 100 000 customers)
            await session.execute(_NO_JIT)
            result = await session.stream(prepared.statement)
            async with contextlib.aclosing(_prefetched(result.partitions())) as chunks:
                async for chunk in chunks:
                    row_count += await asyncio.to_thread(_write_chunk, writer, reader, chunk)
                    if on_progress is not None:
                        await on_progress(row_count)
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
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return download, row_count, sha256


async def export_records(
    context: RequestContext,
    runtime: BulkRuntime,
    target: ExportTarget,
    *,
    filter: object | None,
    fields: Sequence[str] | None,
    format: ExportFormat = ExportFormat.CSV,
    purpose: str | None = None,
) -> ExportResult:
    """Write the caller's exportable rows and fields to a file and register its download.

    Raises as `prepare_export`. Up to `inline_rows` rows, the file is written in the request
    and one audit event records the filter, the fields, the row count and the file's SHA-256,
    in the same transaction as the download's registration: no download without its event.
    More rows are handed to a worker (`jobs.exports`), queued in the request's transaction,
    which writes the same file and the same event under the same decisions; the answer is
    then RUNNING, with the id `export(id)` reports progress for.
    """
    requester = Requester(context.principal, context.decisions, context.meta)
    prepared = prepare_export(
        requester,
        target,
        filter=filter,
        fields=fields,
        format=format,
        chunk_rows=runtime.settings.chunk_rows,
        purpose=purpose,
        cipher=context.cipher,
    )
    async with write(context) as session:
        await sweep_expired(session, runtime.objects, context.extras["savepoint_events"])
        total = int(await session.scalar(prepared.count_statement) or 0)
        if total > runtime.settings.inline_rows:
            job_id = await queue_export(
                session, prepared, total, fields=fields, filter_json=filter_json(filter)
            )
            return ExportResult(
                job_id,
                None,
                total,
                tuple(prepared.header),
                prepared.omitted,
                None,
                format,
                ExportStatus.RUNNING,
            )
        download, row_count, sha256 = await write_export(
            session,
            prepared,
            cipher=context.cipher,
            directory=runtime.directory,
            ttl_seconds=runtime.settings.download_ttl_seconds,
            objects=runtime.objects,
        )
        await record(
            context,
            session,
            AuditAction.EXPORT,
            target.spec.resource.value,
            fields=prepared.header,
            changes=export_changes(prepared, download.id, row_count, sha256),
        )
    return ExportResult(
        download.id,
        download,
        row_count,
        tuple(prepared.header),
        prepared.omitted,
        sha256,
        format,
    )


Chunk = Sequence[Row[Any]]


async def _prefetched(chunks: AsyncIterator[Chunk]) -> AsyncGenerator[Chunk, None]:
    """The chunks, the next one fetched while the caller writes this one: the database
    computes rows on one core while this process formats them on the other."""
    pending: asyncio.Future[Chunk | None] = asyncio.ensure_future(anext(chunks, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(anext(chunks, None))
            yield chunk
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending


def _write_chunk(writer: TableWriter, reader: RowReader, rows: Sequence[Row[Any]]) -> int:
    """Decrypt, convert and write one chunk of rows (worker thread)."""
    writer.write_rows(reader.lines(rows))
    return len(rows)
