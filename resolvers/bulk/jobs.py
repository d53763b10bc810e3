"""Import jobs in the database: any process can report any job's progress."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ImportJob


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
        .where(ImportJob.id == job_id)
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
