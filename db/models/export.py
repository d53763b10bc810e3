from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class ExportFile(Base):
    """A finished export waiting for its one download by the principal who made it."""

    __tablename__ = "export_files"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    principal: Mapped[str] = mapped_column(String(300))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    path: Mapped[str] = mapped_column(String(1000))  # a key in the file store (`storage`)
    storage: Mapped[str] = mapped_column(String(10), server_default="file")
    content_type: Mapped[str] = mapped_column(String(100))
    row_count: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    downloaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ExportJob(Base):
    """An export too large for its request, run by a worker under the requester's policy.

    `request` holds what the worker needs to decide exactly as the request would have: the
    principal, the policy rules and department tree of that moment, the filter, the fields and
    the request's audit metadata. Once DONE, `file_id` names the download and `token_enc` holds
    its one-time token, encrypted with the field cipher, for `export(id)` to hand out.
    """

    __tablename__ = "export_jobs"
    __table_args__ = (CheckConstraint("status in ('RUNNING','DONE','FAILED')", name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    principal: Mapped[str] = mapped_column(String(300), index=True)
    resource: Mapped[str] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), server_default="RUNNING")
    total_rows: Mapped[int | None] = mapped_column(BigInteger)
    written_rows: Mapped[int] = mapped_column(BigInteger, server_default="0")
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    file_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    token_enc: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StoredFileChunk(Base):
    """One 1 MiB piece of a file kept in PostgreSQL, so every host can serve it."""

    __tablename__ = "stored_file_chunks"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
