"""An import, run by a worker as its requester, committed in batches and resumable.

The request stored the upload (`bulk.store`), created the job row and queued this
job in one transaction. The job reads the upload back, maps its columns as the request did,
and runs `CustomerImport` under the requester's decisions; each batch commits with its
progress, so a run on a worker that died is resumed by the next (`jobs.stalled` queues it
again) after the last committed batch, with no row written twice and none lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path

from procrastinate import App, JobContext

from bulk.columns import map_columns
from bulk.imports import CustomerImport, Importer, ImportOvertakenError
from bulk.jobs import IMPORT_TASK, JobStatus, fail_job
from bulk.requests import requester_from
from bulk.sources import FileRejectedError, read_table
from bulk.store import fetch_file
from db.models import ImportJob
from jobs.runtime import JobRuntime, runtime_of
from policy.custom_fields import read_catalog

log = logging.getLogger("dossier.jobs.imports")


async def run_import(runtime: JobRuntime, job_id: uuid.UUID) -> bool:
    """Run (or resume) the import; False when there was nothing (left) to do."""
    async with runtime.sessions() as session:
        job = await session.get(ImportJob, job_id)
        catalog = await read_catalog(session)
    if job is None or job.status != JobStatus.RUNNING or job.upload_key is None:
        return False
    assert job.request is not None
    requester = await requester_from(job.request["requester"], catalog)
    bulk = runtime.bulk
    path = bulk.new_path(f"job-{uuid.uuid4().hex}{Path(job.upload_key).suffix}")
    try:
        async with runtime.sessions() as session:
            found = await fetch_file(session, job.upload_key, path)
        try:
            if not found:
                raise FileNotFoundError(f"the upload of import {job_id} is gone")
            table = await asyncio.to_thread(read_table, path, job.file_name)
        except (OSError, FileRejectedError) as error:
            # nothing to resume from: say so on the job instead of leaving it RUNNING
            async with runtime.sessions() as session, session.begin():
                await fail_job(session, job_id, f"{type(error).__name__}: {error}")
            return False
        work = CustomerImport(
            sessions=runtime.sessions,
            cipher=runtime.cipher,
            settings=bulk.settings,
            directory=bulk.directory,
            importer=Importer(requester.principal, requester.decisions, requester.meta),
            table=table,
            columns=map_columns(table.header, job.request.get("mapping")),
            file_name=job.file_name,
            dry_run=job.dry_run,
            store_report=True,
            upload_key=job.upload_key,
        )
        work.job_id = job_id
        try:
            await work.run()
        except ImportOvertakenError:
            log.warning("import %s was moved on by another run; this one stops", job_id)
            return False
        except Exception:  # recorded on the job row by run()
            log.warning("import %s ended with an error", job_id)
    finally:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(path.unlink, missing_ok=True)
    return True


def register(app: App, settings: object) -> None:
    @app.task(name=IMPORT_TASK, pass_context=True)
    async def import_customers(context: JobContext, job_id: str) -> None:
        await run_import(runtime_of(context), uuid.UUID(job_id))
