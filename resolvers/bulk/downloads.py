"""One-time downloads: a file, the principal it belongs to, a token digest and an expiry.

A download is claimed with one conditional UPDATE (same principal, not yet downloaded, not
expired), so two simultaneous requests with the same token cannot both win, and an expired,
used, foreign or unknown token all get the same answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import ActorKind, AuditAction, AuditRecord
from db.models import ExportFile
from resolvers.bulk.files import new_download_token, token_digest

DOWNLOAD_PATH = "/exports/"
CLAIMED_GRACE = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Download:
    """A registered file: its id, the one-time URL and when that stops working."""

    id: uuid.UUID
    url: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class ClaimedFile:
    path: Path
    content_type: str
    sha256: str
    file_name: str


async def register_download(
    session: AsyncSession,
    *,
    principal: str,
    path: Path,
    content_type: str,
    row_count: int,
    sha256: str,
    ttl_seconds: int,
) -> Download:
    """Store the file's record in the caller's transaction; the token is returned only here."""
    token, digest = new_download_token()
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl_seconds)
    row = ExportFile(
        id=uuid.uuid4(),
        principal=principal,
        token_hash=digest,
        path=str(path),
        content_type=content_type,
        row_count=row_count,
        sha256=sha256,
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return Download(row.id, f"{DOWNLOAD_PATH}{token}", expires_at)


async def claim_download(session: AsyncSession, token: str, principal: str) -> ClaimedFile | None:
    """Mark the file downloaded and return it, or None when the token does not open it now."""
    statement = (
        update(ExportFile)
        .where(
            ExportFile.token_hash == token_digest(token),
            ExportFile.principal == principal,
            ExportFile.downloaded_at.is_(None),
            ExportFile.expires_at > func.now(),
        )
        .values(downloaded_at=func.now())
        .returning(ExportFile.path, ExportFile.content_type, ExportFile.sha256, ExportFile.id)
    )
    row = (await session.execute(statement)).first()
    if row is None:
        return None
    path = Path(row.path)
    return ClaimedFile(path, row.content_type, row.sha256, f"{row.id}{path.suffix}")


async def sweep_expired(session: AsyncSession, audit: list[AuditRecord] | None = None) -> int:
    """Forget downloads that were used or expired, and delete their files; returns how many.

    With `audit` (a savepoint's event list), the expiry is recorded there: one SYSTEM event
    (DELETE on `export`) naming every file forgotten, its owner, SHA-256 and whether it had been
    downloaded — retention is itself in the trail."""
    statement = (
        delete(ExportFile)
        .where(
            or_(
                # a claimed file may still be streaming from another process: leave it a while
                ExportFile.downloaded_at < func.now() - CLAIMED_GRACE,
                ExportFile.expires_at <= func.now() - CLAIMED_GRACE,
            )
        )
        .returning(
            ExportFile.path, ExportFile.id, ExportFile.principal, ExportFile.sha256,
            ExportFile.downloaded_at,
        )
    )  # fmt: skip
    rows = (await session.execute(statement)).all()
    await asyncio.to_thread(_unlink_all, [row.path for row in rows])
    if rows and audit is not None:
        audit.append(
            AuditRecord(
                actor="dossier",
                actor_kind=ActorKind.SYSTEM,
                action=AuditAction.DELETE,
                resource_type="export",
                resource_ids=[str(row.id) for row in rows],
                changes={
                    "expired": [
                        {
                            "principal": row.principal,
                            "sha256": row.sha256,
                            "downloaded": row.downloaded_at is not None,
                        }
                        for row in rows
                    ]
                },
            )  # fmt: skip
        )
    return len(rows)


def _unlink_all(paths: Sequence[str]) -> None:
    for stored in paths:
        Path(stored).unlink(missing_ok=True)
