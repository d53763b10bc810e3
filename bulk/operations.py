"""GraphQL root fields of bulk work: four exports, the customer import and its job."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON

from bulk.columns import map_columns
from bulk.downloads import register_download
from bulk.export_jobs import ExportState, find_export
from bulk.exports import (
    CONTACT_EXPORT,
    CUSTOMER_EXPORT,
    OPPORTUNITY_EXPORT,
    TICKET_EXPORT,
    ExportResult,
    ExportTarget,
    export_records,
)
from bulk.files import ExportFormat, file_sha256
from bulk.imports import CustomerImport, Importer, ImportForbiddenError
from bulk.jobs import find_job, queue_import, rate_and_eta
from bulk.requests import Requester, requester_json
from bulk.runtime import BulkRuntime
from bulk.sources import FileRejectedError, read_table
from bulk.store import fetch_file
from db.models import ImportJob as ImportJobRow
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, DossierError, ForbiddenError, NotFoundError
from schema import bulk as types
from schema.filters import ContactFilter, CustomerFilter, OpportunityFilter, TicketFilter

log = logging.getLogger("dossier.bulk")

COPY_CHUNK = 1024 * 1024
JOB_POLL_SECONDS = 0.05


class PayloadTooLargeError(DossierError):
    code = "PAYLOAD_TOO_LARGE"


def runtime_of(context: RequestContext) -> BulkRuntime:
    runtime = context.extras.get("bulk")
    if not isinstance(runtime, BulkRuntime):
        raise RuntimeError("the GraphQL endpoint did not provide the bulk runtime")
    return runtime


def _export_type(result: ExportResult) -> types.Export:
    download = result.download
    return types.Export(
        id=strawberry.ID(str(result.id)),
        row_count=result.row_count,
        url=None if download is None else download.url,
        status=types.ExportStatus(result.status.value),
        progress=1.0 if download is not None else 0.0,
        omitted_fields=list(result.omitted_fields),
        fields=list(result.fields),
        format=result.format.value,
        sha256=result.sha256,
        expires_at=None if download is None else download.expires_at,
    )


def _export_state_type(state: ExportState) -> types.Export:
    return types.Export(
        id=strawberry.ID(str(state.id)),
        row_count=state.written_rows if state.status == "DONE" else state.total_rows,
        url=state.url,
        status=types.ExportStatus(state.status),
        progress=state.progress,
        error=state.error,
        format=state.format or "CSV",
        sha256=state.sha256,
        expires_at=state.expires_at,
    )


async def _export(
    info: strawberry.Info,
    target: ExportTarget,
    filter: object | None,
    fields: list[str] | None,
    format: types.ExportFormat,
    purpose: str | None = None,
) -> types.Export:
    context: RequestContext = info.context
    result = await export_records(
        context,
        runtime_of(context),
        target,
        filter=filter,
        fields=fields,
        format=ExportFormat(format.value),
        purpose=purpose,
    )
    return _export_type(result)


def job_type(row: ImportJobRow, now: dt.datetime | None = None) -> types.ImportJob:
    rate, eta = rate_and_eta(row, now or dt.datetime.now(dt.UTC))
    return types.ImportJob(
        id=strawberry.ID(str(row.id)),
        status=types.ImportJobStatus(row.status),
        dry_run=row.dry_run,
        file_name=row.file_name,
        total_rows=row.total_rows,
        processed_rows=row.processed_rows,
        accepted_rows=row.accepted_rows,
        rejected_rows=row.rejected_rows,
        duplicate_rows=row.duplicate_rows,
        written_rows=row.written_rows,
        rows_per_second=rate,
        eta_seconds=eta,
        ignored_columns=list(row.ignored_columns),
        issues=[
            types.ImportIssue(
                row=item["row"],
                status=item["status"],
                message=item["message"],
                field=item.get("field"),
                rule=item.get("rule"),
                duplicate_of=item.get("duplicateOf"),
            )
            for item in row.issues
        ],
        error=row.error,
        progress=_share(row),
    )


def _share(row: ImportJobRow) -> float:
    if row.finished_at is not None:
        return 1.0
    if not row.total_rows:
        return 0.0
    return min(row.processed_rows / row.total_rows, 1.0)


def _job_id(raw: str, what: str = "an import job") -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise BadUserInputError(f"not {what} id", argument="id") from None


async def _load_job(context: RequestContext, job_id: uuid.UUID) -> ImportJobRow | None:
    async with context.db.lock:
        row = await find_job(context.db.session, job_id, context.principal.subject)
        if row is not None:
            await context.db.session.refresh(row)  # another process may have moved it on
        return row


def _save_upload(upload: Any, path: Path, limit: int) -> int:
    """Copy the upload to `path`, refusing past `limit` bytes (worker thread)."""
    source = getattr(upload, "file", upload)
    copied = 0
    with path.open("wb") as target:
        while chunk := source.read(COPY_CHUNK):
            copied += len(chunk)
            if copied > limit:
                raise PayloadTooLargeError(
                    f"the upload is larger than the limit of {limit // (1024 * 1024)} MB",
                    maximum=limit,
                )
            target.write(chunk)
    return copied


def _checked_mapping(mapping: Any) -> Mapping[str, str | None] | None:
    if mapping is None:
        return None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in mapping.items()
    ):
        raise BadUserInputError(
            "mapping is an object from column header to field name (or null to skip)",
            argument="mapping",
        )
    return mapping


def file_rejected(error: FileRejectedError) -> BadUserInputError:
    rejected = BadUserInputError(error.message, argument="upload")
    rejected.extensions["problem"] = error.problem.value
    return rejected


async def _wait_for_job(
    runtime: BulkRuntime, job_id: uuid.UUID, principal: str, seconds: float
) -> ImportJobRow:
    """The job once a worker finished it, or as it stands after `seconds`; each look is a
    session of its own, so it sees what the worker committed (the request's own transaction
    is left alone: an earlier mutation of the same request commits with it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        async with runtime.sessions() as session:
            row = await find_job(session, job_id, principal)
        assert row is not None
        if row.finished_at is not None or loop.time() >= deadline:
            return row
        await asyncio.sleep(JOB_POLL_SECONDS)


@strawberry.type
class BulkQuery:
    @strawberry.field(
        description="An export started by the caller: its status, progress and, once DONE "
        "and until downloaded, its one-time url. Ask any server."
    )
    async def export(self, info: strawberry.Info, id: strawberry.ID) -> types.Export | None:
        context: RequestContext = info.context
        export_id = _job_id(id, "an export")
        async with context.db.lock:
            state = await find_export(
                context.db.session, export_id, context.principal.subject, context.cipher
            )
        return None if state is None else _export_state_type(state)

    @strawberry.field(description="An import started by the caller, with its progress.")
    async def import_job(self, info: strawberry.Info, id: strawberry.ID) -> types.ImportJob | None:
        row = await _load_job(info.context, _job_id(id))
        return None if row is None else job_type(row)


@strawberry.type
class BulkMutation:
    @strawberry.mutation(
        description="Customers the caller may read and export, as a file. With `purpose` "
        "(e.g. `marketing`), only customers holding an active consent for it."
    )
    async def export_customers(
        self,
        info: strawberry.Info,
        filter: CustomerFilter | None = None,
        fields: list[str] | None = None,
        format: types.ExportFormat = types.ExportFormat.CSV,
        purpose: str | None = None,
    ) -> types.Export | None:
        return await _export(info, CUSTOMER_EXPORT, filter, fields, format, purpose)

    @strawberry.mutation
    async def export_contacts(
        self,
        info: strawberry.Info,
        filter: ContactFilter | None = None,
        fields: list[str] | None = None,
        format: types.ExportFormat = types.ExportFormat.CSV,
    ) -> types.Export | None:
        return await _export(info, CONTACT_EXPORT, filter, fields, format)

    @strawberry.mutation
    async def export_opportunities(
        self,
        info: strawberry.Info,
        filter: OpportunityFilter | None = None,
        fields: list[str] | None = None,
        format: types.ExportFormat = types.ExportFormat.CSV,
    ) -> types.Export | None:
        return await _export(info, OPPORTUNITY_EXPORT, filter, fields, format)

    @strawberry.mutation
    async def export_tickets(
        self,
        info: strawberry.Info,
        filter: TicketFilter | None = None,
        fields: list[str] | None = None,
        format: types.ExportFormat = types.ExportFormat.CSV,
    ) -> types.Export | None:
        return await _export(info, TICKET_EXPORT, filter, fields, format)

    @strawberry.mutation(
        description="Import customers from a CSV or XLSX upload (GraphQL multipart request). "
        "A dry run writes nothing and reports what a real run would do. Small files answer "
        "with the finished job; larger ones with a running job to poll through `importJob`."
    )
    async def import_customers(
        self,
        info: strawberry.Info,
        upload: Upload,
        dry_run: bool = True,
        mapping: JSON | None = None,
    ) -> types.ImportJob | None:
        context: RequestContext = info.context
        runtime = runtime_of(context)
        columns_mapping = _checked_mapping(mapping)
        file_name = Path(str(getattr(upload, "filename", None) or "upload.csv")).name
        suffix = Path(file_name).suffix.lower()
        upload_path = runtime.new_path(f"upload-{uuid.uuid4().hex}{suffix}")
        try:
            await asyncio.to_thread(
                _save_upload, upload, upload_path, runtime.settings.max_upload_bytes
            )
            table = await asyncio.to_thread(read_table, upload_path, file_name)
            columns = map_columns(table.header, columns_mapping)
            importer = Importer(context.principal, context.decisions, context.meta)
            work = CustomerImport(
                sessions=runtime.sessions,
                cipher=runtime.cipher,
                settings=runtime.settings,
                directory=runtime.directory,
                importer=importer,
                table=table,
                columns=columns,
                file_name=file_name,
                dry_run=dry_run,
            )
            request = {
                "requester": requester_json(
                    Requester(context.principal, context.decisions, context.meta)
                ),
                "mapping": None if columns_mapping is None else dict(columns_mapping),
            }

            async def queue(session: AsyncSession, job_id: uuid.UUID) -> None:
                # the upload and the job commit with the job row: a worker on any host runs it
                await queue_import(session, job_id, upload_path, request)

            job_id = await work.start(queue)
        except FileRejectedError as error:
            raise file_rejected(error) from None
        except ImportForbiddenError as error:
            raise ForbiddenError(error.field, str(error)) from None
        finally:
            await asyncio.to_thread(upload_path.unlink, missing_ok=True)
        row = await _wait_for_job(
            runtime, job_id, context.principal.subject, runtime.settings.inline_wait_seconds
        )
        return job_type(row)

    @strawberry.mutation(description="A one-time download of an import's full CSV report.")
    async def import_report(self, info: strawberry.Info, id: strawberry.ID) -> types.Export:
        context: RequestContext = info.context
        runtime = runtime_of(context)
        row = await _load_job(context, _job_id(id))
        if row is None or row.report_path is None or row.finished_at is None:
            raise NotFoundError("finished import job")
        copy = runtime.new_path(f"report-{uuid.uuid4().hex}.csv")
        async with runtime.sessions() as session:
            stored = await fetch_file(session, row.report_path, copy)
        if not stored:  # a report of before the shared store: on this host's disk
            await asyncio.to_thread(shutil.copyfile, row.report_path, copy)
        sha256 = await asyncio.to_thread(file_sha256, copy)
        lines = row.rejected_rows + row.duplicate_rows
        async with context.db.lock:
            download = await register_download(
                context.db.session,
                principal=context.principal.subject,
                path=copy,
                content_type=ExportFormat.CSV.content_type,
                row_count=lines,
                sha256=sha256,
                ttl_seconds=runtime.settings.download_ttl_seconds,
                objects=runtime.objects,
            )
        return types.Export(
            id=strawberry.ID(str(download.id)),
            row_count=lines,
            url=download.url,
            fields=["row", "status", "field", "rule", "message", "duplicateOf"],
            sha256=sha256,
            expires_at=download.expires_at,
        )


__all__ = ["BulkMutation", "BulkQuery"]
