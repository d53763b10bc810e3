"""Exports: the rows and fields a caller may both read and export, streamed into a file.

An export is a read that leaves the building, so it needs both permissions at every level: a
row is exported where the READ and the EXPORT rules both reach it, a field where both allow it
on that row. The field plan is `resolvers.masking.plan_columns` fed with those intersections,
so masking happens in SQL exactly as for a GraphQL read (row-dependent fields come back as
`CASE WHEN`), and a field the caller may export nowhere is left out of the file and named in
the answer.

Rows come from a server-side cursor in chunks; decrypting and writing a chunk runs in a worker
thread, so a 100 000-row export neither holds the rows in memory nor stalls the event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Row

from audit.events import AuditAction
from db.crypto import FieldCipher
from policy.custom_fields import FieldCatalog, custom_key
from policy.decisions import AccessDecisions
from policy.predicates import ALWAYS, Predicate, all_of, implies
from policy.vocabulary import Action, Resource
from resolvers.bulk.cells import as_text
from resolvers.bulk.downloads import Download, register_download, sweep_expired
from resolvers.bulk.files import ExportFormat, TableWriter, file_sha256, open_writer
from resolvers.bulk.runtime import BulkRuntime
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError
from resolvers.filters import CUSTOMER_FILTERS, FilterRule, compile_filter
from resolvers.masking import ColumnPlan, Materialiser, plan_columns
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
from resolvers.writes import record, require, write
from schema.node import to_global_id

ID_COLUMN = "id"


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


@dataclass(frozen=True)
class ExportResult:
    download: Download
    row_count: int
    fields: tuple[str, ...]
    omitted_fields: tuple[str, ...]
    sha256: str
    format: ExportFormat


@dataclass(frozen=True)
class _Column:
    name: str
    field: FieldSpec | None  # None for the global id
    custom_key: str | None = None  # a custom field's key: its value is in `customFields`


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


def _table_rows(
    plan: ColumnPlan, cipher: FieldCipher, columns: Sequence[_Column], rows: Sequence[Row[Any]]
) -> list[list[Any]]:
    """Rows of the file: values decrypted and converted, withheld ones empty (worker thread)."""
    objects, _ = Materialiser(plan, cipher).build(rows)
    table: list[list[Any]] = []
    for obj in objects:
        line: list[Any] = []
        for column in columns:
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

    Raises FORBIDDEN without the EXPORT action on the resource, BAD_USER_INPUT for unknown
    fields or filters on fields the caller may not read everywhere. One audit event records
    the filter, the fields, the row count and the file's SHA-256, in the same transaction as
    the download's registration: no download without its event.
    """
    spec = target.spec
    require(context, spec.resource, Action.EXPORT, target.operation)
    catalog = context.decisions.snapshot.catalog
    chosen = _chosen_fields(target, fields, catalog)
    where = compile_filter(spec, context.decisions, target.filters, filter)
    if purpose is not None:
        from resolvers.privacy.consents import checked_purpose, has_active_consent

        if spec.resource is not Resource.CUSTOMER:
            raise BadUserInputError("only customers carry consents", argument="purpose")
        purpose = checked_purpose(purpose)
        where = [*where, has_active_consent(purpose)]
    decisions = ExportDecisions(context.decisions)
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
    columns = [
        _Column(name, pseudo[name], custom_key(name))
        if name in custom
        else _Column(name, None if name == ID_COLUMN else spec.fields[name])
        for name in chosen
        if name not in omitted
    ]
    rows_allowed = decisions.rows(spec.resource)
    statement = (
        select(*plan.columns)
        .select_from(spec.from_clause())
        .where(and_(rows_allowed.sql(spec.scope_columns()), *spec.live(), *where))
        .order_by(spec.table.c.id)
        .execution_options(yield_per=runtime.settings.chunk_rows)
    )
    path = runtime.new_path(f"export-{uuid.uuid4().hex}{format.suffix}")
    header = [column.name for column in columns]
    try:
        async with write(context) as session:
            await sweep_expired(session, context.extras["savepoint_events"])
            writer: TableWriter = await asyncio.to_thread(open_writer, format, path, header)
            row_count = 0
            try:
                result = await session.stream(statement)
                async for chunk in result.partitions():
                    table = await asyncio.to_thread(
                        _write_chunk, writer, plan, context.cipher, columns, chunk
                    )
                    row_count += table
            finally:
                await asyncio.to_thread(writer.close)
            sha256 = await asyncio.to_thread(file_sha256, path)
            download = await register_download(
                session,
                principal=context.principal.subject,
                path=path,
                content_type=format.content_type,
                row_count=row_count,
                sha256=sha256,
                ttl_seconds=runtime.settings.download_ttl_seconds,
            )
            await record(
                context,
                session,
                AuditAction.EXPORT,
                spec.resource.value,
                fields=header,
                changes={
                    "exportId": str(download.id),
                    "filter": _filter_summary(filter),
                    **({"purpose": purpose} if purpose is not None else {}),
                    "format": format.value,
                    "rowCount": row_count,
                    "sha256": sha256,
                    "omittedFields": list(omitted),
                },
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ExportResult(download, row_count, tuple(header), omitted, sha256, format)


def _write_chunk(
    writer: TableWriter,
    plan: ColumnPlan,
    cipher: FieldCipher,
    columns: Sequence[_Column],
    rows: Sequence[Row[Any]],
) -> int:
    table = _table_rows(plan, cipher, columns, rows)
    writer.write_rows(table)
    return len(table)
