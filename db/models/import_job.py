from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base

IMPORT_STATUSES = ("RUNNING", "DONE", "FAILED")


class ImportJob(Base):
    """One bulk import, its progress and its outcome, readable by any server process.

    Progress lives in the database rather than in the process running the job, so a client may
    ask any process behind the load balancer how far its import is. `issues` keeps the first
    rejections for the API; the full report is the CSV file at `report_path`.
    """

    __tablename__ = "import_jobs"
    __table_args__ = (CheckConstraint("status in ('RUNNING','DONE','FAILED')", name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    principal: Mapped[str] = mapped_column(String(300), index=True)
    resource: Mapped[str] = mapped_column(String(40))
    file_name: Mapped[str] = mapped_column(String(300))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(10), server_default="RUNNING")
    total_rows: Mapped[int | None] = mapped_column(BigInteger)
    processed_rows: Mapped[int] = mapped_column(BigInteger, server_default="0")
    accepted_rows: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rejected_rows: Mapped[int] = mapped_column(BigInteger, server_default="0")
    duplicate_rows: Mapped[int] = mapped_column(BigInteger, server_default="0")
    written_rows: Mapped[int] = mapped_column(BigInteger, server_default="0")
    issues: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    ignored_columns: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    error: Mapped[str | None] = mapped_column(Text)
    report_path: Mapped[str | None] = mapped_column(String(1000))  # a key in the file store
    upload_key: Mapped[str | None] = mapped_column(String(200))  # the uploaded file, stored
    # what a worker needs to run it as the requester (see `jobs.requests`)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImportJobIssue(Base):
    """A rejected or duplicate row of an import, written with the batch that found it."""

    __tablename__ = "import_job_issues"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("import_jobs.id", ondelete="CASCADE")
    )
    row: Mapped[int] = mapped_column(BigInteger)
    issue: Mapped[dict[str, Any]] = mapped_column(JSONB)
