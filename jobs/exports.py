"""A large export, written by a worker under the decisions the request was answered with.

The request (`bulk.exports.export_records`) checked the export and queued this job
with the requester, their policy snapshot and the filter (`bulk.requests`). The job
plans the same export from them, streams the rows, and in one transaction stores the file,
registers its download, marks the job DONE and appends the EXPORT event: the event the
request would have written inline. A retry after a worker died starts the file again; the
DONE update only applies to a RUNNING job, so a second run cannot register a second file.
"""

from __future__ import annotations

import logging
import time
import uuid

from procrastinate import App, JobContext, RetryStrategy
from sqlalchemy import text

from audit.chain import append_events
from bulk.downloads import DOWNLOAD_PATH
from bulk.export_jobs import (
    EXPORT_TASK,
    fail_export,
    finish_export,
    record_export_progress,
)
from bulk.exports import (
    CONTACT_EXPORT,
    CUSTOMER_EXPORT,
    OPPORTUNITY_EXPORT,
    TICKET_EXPORT,
    ExportTarget,
    export_event,
    prepare_export,
    write_export,
)
from bulk.files import ExportFormat
from bulk.requests import filter_from, requester_from
from db.models import ExportJob
from jobs.runtime import JobRuntime, runtime_of
from policy.custom_fields import read_catalog
from schema.filters import ContactFilter, CustomerFilter, OpportunityFilter, TicketFilter

log = logging.getLogger("dossier.jobs.exports")

MAX_ATTEMPTS = 3
PROGRESS_EVERY_SECONDS = 0.5
TARGETS: dict[str, tuple[ExportTarget, type]] = {
    CUSTOMER_EXPORT.operation: (CUSTOMER_EXPORT, CustomerFilter),
    CONTACT_EXPORT.operation: (CONTACT_EXPORT, ContactFilter),
    OPPORTUNITY_EXPORT.operation: (OPPORTUNITY_EXPORT, OpportunityFilter),
    TICKET_EXPORT.operation: (TICKET_EXPORT, TicketFilter),
}
# a long export is one transaction: the pool's 15 s statement bound is for requests
_NO_STATEMENT_TIMEOUT = text("SET LOCAL statement_timeout = 0")


async def run_export(runtime: JobRuntime, export_id: uuid.UUID) -> bool:
    """Write the export; False when there was nothing (left) to do."""
    async with runtime.sessions() as session:
        job = await session.get(ExportJob, export_id)
        catalog = await read_catalog(session)
    if job is None or job.status != "RUNNING":
        return False
    request = job.request
    target, filter_type = TARGETS[request["operation"]]
    requester = await requester_from(request["requester"], catalog)
    prepared = prepare_export(
        requester,
        target,
        filter=filter_from(filter_type, request["filter"]),
        fields=request["fields"],
        format=ExportFormat(request["format"]),
        purpose=request.get("purpose"),
        cipher=runtime.cipher,
        chunk_rows=runtime.bulk.settings.chunk_rows,
    )
    reported: float | None = None

    async def progress(rows: int) -> None:
        nonlocal reported
        # the first chunk at once (a client sees it move), then at most twice a second
        if reported is not None and time.monotonic() - reported < PROGRESS_EVERY_SECONDS:
            return
        reported = time.monotonic()
        async with runtime.sessions() as other, other.begin():
            await record_export_progress(other, export_id, rows)

    async with runtime.sessions() as session, session.begin():
        await session.execute(_NO_STATEMENT_TIMEOUT)
        download, rows, sha256 = await write_export(
            session,
            prepared,
            cipher=runtime.cipher,
            directory=runtime.bulk.directory,
            ttl_seconds=runtime.bulk.settings.download_ttl_seconds,
            file_id=export_id,  # the id the requester holds, as an inline export's
            on_progress=progress,
            objects=runtime.bulk.objects,
        )
        token = download.url.removeprefix(DOWNLOAD_PATH)
        finished = await finish_export(
            session, export_id, rows=rows, file_id=download.id, token=token, cipher=runtime.cipher
        )
        if not finished:  # another run finished it meanwhile: keep nothing of this one
            await session.rollback()
            return False
        # last before the commit: the audit chain's lock is held from here to COMMIT
        await append_events(session, [export_event(prepared, download.id, rows, sha256)])
    return True


def register(app: App, settings: object) -> None:
    @app.task(
        name=EXPORT_TASK,
        pass_context=True,
        retry=RetryStrategy(max_attempts=MAX_ATTEMPTS, wait=2),
    )
    async def export(context: JobContext, export_id: str) -> None:
        runtime = runtime_of(context)
        key = uuid.UUID(export_id)
        try:
            await run_export(runtime, key)
        except Exception as error:
            attempts = (context.job.attempts if context.job else 0) + 1
            log.exception("export %s failed (attempt %d)", export_id, attempts)
            if attempts >= MAX_ATTEMPTS:
                async with runtime.sessions() as session, session.begin():
                    await fail_export(session, key, f"{type(error).__name__}: {error}")
            raise
