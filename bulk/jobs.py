"""Import jobs in the database: any process can report any job's progress, any worker run it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bulk.store import store_file
from db.job_queue import defer_job
from db.models import ImportJob, ImportJobIssue


class JobStatus:
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Progress:
    """Counters after some batches; written with the batch that produced them."""

    processed: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    written: int = 0

    def values(self) -> dict[str, Any]:
        return {
            "processed_rows": self.processed,
            "accepted_rows": self.accepted,
            "rejected_rows": self.rejected,
            "duplicate_rows": self.duplicates,
            "written_rows": self.written,
            "updated_at": func.now(),
        }


async def create_job(
    session: AsyncSession,
    *,
    principal: str,
    resource: str,
    file_name: str,
    dry_run: bool,
    total_rows: int,
    ignored_columns: Sequence[str],
) -> uuid.UUID:
    job = ImportJob(
        id=uuid.uuid4(),
        principal=principal,
        resource=resource,
        file_name=file_name[:300],
        dry_run=dry_run,
        status=JobStatus.RUNNING,
        total_rows=total_rows,
        ignored_columns=list(ignored_columns),
        issues=[],
    )
    session.add(job)
    await session.flush()
    return job.id


async def record_progress(session: AsyncSession, job_id: uuid.UUID, progress: Progress) -> None:
    await session.execute(
        update(ImportJob).where(ImportJob.id == job_id).values(**progress.values())
    )


IMPORT_TASK = "dossier.import"


def import_lock(job_id: uuid.UUID) -> str:
    """procrastinate's lock: one run of an import at a time, even after a retry."""
    return f"import:{job_id}"


def upload_key(job_id: uuid.UUID, suffix: str) -> str:
    return f"import-{job_id.hex}-upload{suffix}"


async def queue_import(
    session: AsyncSession, job_id: uuid.UUID, upload: Path, request: dict[str, Any]
) -> None:
    """Store the upload and queue the import's job, in the job row's transaction."""
    key = upload_key(job_id, upload.suffix)
    await store_file(session, key, upload)
    await session.execute(
        update(ImportJob).where(ImportJob.id == job_id).values(upload_key=key, request=request)
    )
    await defer_job(session, IMPORT_TASK, {"job_id": str(job_id)}, lock=import_lock(job_id))


async def job_progress(session: AsyncSession, job_id: uuid.UUID) -> Progress:
    """The counters as the last committed batch left them (zero for a new job)."""
    job = (await session.execute(select(ImportJob).where(ImportJob.id == job_id))).scalar_one()
    return Progress(
        processed=job.processed_rows,
        accepted=job.accepted_rows,
        rejected=job.rejected_rows,
        duplicates=job.duplicate_rows,
        written=job.written_rows,
    )


async def record_issues(
    session: AsyncSession, job_id: uuid.UUID, issues: Sequence[dict[str, Any]]
) -> None:
    if issues:
        await session.execute(
            insert(ImportJobIssue),
            [{"job_id": job_id, "row": issue["row"], "issue": issue} for issue in issues],
        )


async def job_issues(session: AsyncSession, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every issue of the job, in row order (within a row, as found)."""
    found = await session.execute(
        select(ImportJobIssue.issue)
        .where(ImportJobIssue.job_id == job_id)
        .order_by(ImportJobIssue.row, ImportJobIssue.id)
    )
    return list(found.scalars())


async def finish_job(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    progress: Progress,
    issues: list[dict[str, Any]],
    report_path: str | None,
    error: str | None = None,
) -> None:
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == JobStatus.RUNNING)
        .values(
            **progress.values(),
            status=JobStatus.FAILED if error else JobStatus.DONE,
            issues=issues,
            report_path=report_path,
            error=error,
            finished_at=func.now(),
        )
    )


async def find_job(session: AsyncSession, job_id: uuid.UUID, principal: str) -> ImportJob | None:
    """The job, if it belongs to `principal`: someone else's import does not exist for them."""
    return (
        await session.execute(
            select(ImportJob).where(ImportJob.id == job_id, ImportJob.principal == principal)
        )
    ).scalar_one_or_none()


def rate_and_eta(job: ImportJob, now: dt.datetime) -> tuple[float | None, float | None]:
    """Rows per second so far and seconds to go, from the job's own timestamps."""
    end = job.finished_at or now
    elapsed = (end - job.created_at).total_seconds()
    if elapsed <= 0 or not job.processed_rows:
        return None, None
    rate = job.processed_rows / elapsed
    if job.finished_at is not None:
        return rate, 0.0
    remaining = max((job.total_rows or 0) - job.processed_rows, 0)
    return rate, remaining / rate


async def fail_job(session: AsyncSession, job_id: uuid.UUID, error: str) -> None:
    """A job that could not run at all (its upload gone, unreadable): FAILED, not RUNNING."""
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == JobStatus.RUNNING)
        .values(status=JobStatus.FAILED, error=error[:2000], finished_at=func.now())
    )
