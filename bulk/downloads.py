"""One-time downloads: a file, the principal it belongs to, a token digest and an expiry.

The file itself goes into the shared store (`bulk.store`) with its registration, so
the download works from whichever server process the client reaches.

A download is claimed with one conditional UPDATE (same principal, not yet downloaded, not
expired), so two simultaneous requests with the same token cannot both win, and an expired,
used, foreign or unknown token all get the same answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import ActorKind, AuditAction, AuditRecord
from bulk.files import new_download_token, token_digest
from bulk.objects import ObjectStore
from bulk.store import Storage, delete_files, store_file
from db.models import ExportFile

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
    storage: Storage
    key: str
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
    file_id: uuid.UUID | None = None,
    objects: ObjectStore | None = None,
) -> Download:
    """Store the file and its record in the caller's transaction; the local copy is removed
    once stored. The token is returned only here."""
    token, digest = new_download_token()
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl_seconds)
    file_id = file_id or uuid.uuid4()
    key = f"download-{file_id.hex}{path.suffix}"
    if objects is not None:
        await objects.put(key, path)
    else:
        await store_file(session, key, path)
    await asyncio.to_thread(path.unlink, missing_ok=True)
    row = ExportFile(
        id=file_id,
        principal=principal,
        token_hash=digest,
        path=key,
        storage=(Storage.DATABASE if objects is None else Storage.OBJECTS).value,
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
        .returning(
            ExportFile.path,
            ExportFile.storage,
            ExportFile.content_type,
            ExportFile.sha256,
            ExportFile.id,
        )
    )
    row = (await session.execute(statement)).first()
    if row is None:
        return None
    suffix = Path(row.path).suffix
    return ClaimedFile(
        Storage(row.storage), row.path, row.content_type, row.sha256, f"{row.id}{suffix}"
    )


async def sweep_expired(
    session: AsyncSession,
    objects: ObjectStore | None = None,
    audit: list[AuditRecord] | None = None,
) -> int:
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
            ExportFile.storage, ExportFile.path, ExportFile.id, ExportFile.principal,
            ExportFile.sha256, ExportFile.downloaded_at,
        )
    )  # fmt: skip
    rows = (await session.execute(statement)).all()
    await delete_files(session, [(Storage(row.storage), row.path) for row in rows], objects)
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
