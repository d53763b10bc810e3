"""Export jobs in the database: queued with the request, run by a worker, asked from any host.

`queue_export` writes the job row and queues the worker's job in the request's transaction.
The worker (`jobs.exports`) moves `written_rows` on as it goes and, in the transaction that
registers the download and writes the EXPORT event, marks the row DONE with the download's
one-time token encrypted under the field cipher; `export(id)` decrypts it for the requester
until the file is downloaded or expires.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bulk.downloads import DOWNLOAD_PATH
from bulk.requests import requester_json
from db.crypto import FieldCipher
from db.job_queue import defer_job
from db.models import ExportFile, ExportJob

if TYPE_CHECKING:
    from bulk.exports import PreparedExport

EXPORT_TASK = "dossier.export"
TOKEN_PURPOSE = "export_job.token"  # noqa: S105  # the cipher's column label, not a secret


def export_lock(export_id: uuid.UUID) -> str:
    """procrastinate's lock: one run of an export at a time, even after a retry."""
    return f"export:{export_id}"


async def queue_export(
    session: AsyncSession,
    prepared: PreparedExport,
    total_rows: int,
    *,
    fields: Sequence[str] | None,
    filter_json: dict[str, Any] | None,
) -> uuid.UUID:
    export_id = uuid.uuid4()
    session.add(
        ExportJob(
            id=export_id,
            principal=prepared.requester.principal.subject,
            resource=prepared.target.spec.resource.value,
            format=prepared.format.value,
            status="RUNNING",
            total_rows=total_rows,
            request={
                "requester": requester_json(prepared.requester),
                "operation": prepared.target.operation,
                "filter": filter_json,
                "fields": None if fields is None else list(fields),
                "purpose": prepared.purpose,
                "format": prepared.format.value,
            },
        )
    )
    await session.flush()
    await defer_job(
        session, EXPORT_TASK, {"export_id": str(export_id)}, lock=export_lock(export_id)
    )
    return export_id


async def record_export_progress(session: AsyncSession, export_id: uuid.UUID, rows: int) -> None:
    await session.execute(
        update(ExportJob)
        .where(ExportJob.id == export_id, ExportJob.status == "RUNNING")
        .values(written_rows=rows, updated_at=func.now())
    )


async def finish_export(
    session: AsyncSession,
    export_id: uuid.UUID,
    *,
    rows: int,
    file_id: uuid.UUID,
    token: str,
    cipher: FieldCipher,
) -> bool:
    """Mark the export DONE in the caller's transaction; False when it no longer runs."""
    done = await session.execute(
        update(ExportJob)
        .where(ExportJob.id == export_id, ExportJob.status == "RUNNING")
        .values(
            status="DONE",
            written_rows=rows,
            total_rows=rows,
            file_id=file_id,
            token_enc=cipher.encrypt(TOKEN_PURPOSE, token),
            # the end of the export, not the start of its transaction
            finished_at=func.clock_timestamp(),
            updated_at=func.clock_timestamp(),
        )
        .returning(ExportJob.id)
    )
    return done.first() is not None


async def fail_export(session: AsyncSession, export_id: uuid.UUID, error: str) -> None:
    await session.execute(
        update(ExportJob)
        .where(ExportJob.id == export_id, ExportJob.status == "RUNNING")
        .values(status="FAILED", error=error[:2000], finished_at=func.now(), updated_at=func.now())
    )


@dataclass(frozen=True)
class ExportState:
    """What `export(id)` answers: the job's progress, or a finished inline export."""

    id: uuid.UUID
    status: str
    total_rows: int | None
    written_rows: int
    format: str
    url: str | None
    sha256: str | None
    expires_at: Any
    error: str | None

    @property
    def progress(self) -> float:
        if self.status == "DONE":
            return 1.0
        if not self.total_rows:
            return 0.0
        return min(self.written_rows / self.total_rows, 1.0)


async def find_export(
    session: AsyncSession, export_id: uuid.UUID, principal: str, cipher: FieldCipher
) -> ExportState | None:
    """The export, if `principal` made it: someone else's does not exist for them."""
    job = (
        await session.execute(
            select(ExportJob).where(ExportJob.id == export_id, ExportJob.principal == principal)
        )
    ).scalar_one_or_none()
    file_id = export_id if job is None else job.file_id
    file = None
    if file_id is not None:
        file = (
            await session.execute(
                select(ExportFile).where(
                    ExportFile.id == file_id, ExportFile.principal == principal
                )
            )
        ).scalar_one_or_none()
    if job is None:
        if file is None:
            return None
        # an inline export: its one-time URL was in the mutation's answer, and only there
        format = "XLSX" if "spreadsheet" in file.content_type else "CSV"
        return ExportState(
            file.id, "DONE", file.row_count, file.row_count, format, None, file.sha256,
            file.expires_at, None,
        )  # fmt: skip
    url = None
    usable = (
        file is not None
        and file.downloaded_at is None
        and file.expires_at > (await session.scalar(select(func.now())) or file.expires_at)
    )
    if job.status == "DONE" and job.token_enc is not None and usable:
        url = f"{DOWNLOAD_PATH}{cipher.decrypt(TOKEN_PURPOSE, job.token_enc)}"
    return ExportState(
        job.id,
        job.status,
        job.total_rows,
        job.written_rows,
        job.format,
        url,
        None if file is None else file.sha256,
        None if file is None else file.expires_at,
        job.error,
    )
