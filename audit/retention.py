"""Retention of audit archive files: delete those past their keeping period, and say so.

An archive file (`audit.archive`) holds months already dropped from the database; its anchor row
(last seq, final hash, the file's SHA-256) stays forever, so `verify_chain` still proves that
what remains continues the archived chain. Once an archive is older than the retention period —
its cut (`before`) more than `retention_days` ago — `expire_archives` deletes the file and
appends one event per file (action DELETE, resource type `audit_archive`) naming the file, its
SHA-256 and its last seq: the expiry is itself in the trail. Files already gone count as
expired without a second event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from db.models.audit import AuditAnchor

RETENTION_SETTING = "DOSSIER_AUDIT_ARCHIVE_RETENTION_DAYS"


@dataclass(frozen=True)
class ExpiredArchive:
    path: Path
    last_seq: int
    sha256: str


async def expire_archives(
    session: AsyncSession,
    retention_days: int,
    *,
    now: dt.datetime | None = None,
    actor: str = "dossier-cli",
) -> list[ExpiredArchive]:
    """Delete archive files whose cut is older than `retention_days`, one audit event each."""
    if retention_days < 1:
        raise ValueError("retention is at least one day")
    limit = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=retention_days)
    anchors = (
        await session.execute(
            select(AuditAnchor).where(AuditAnchor.before < limit).order_by(AuditAnchor.seq)
        )
    ).scalars()
    expired: list[ExpiredArchive] = []
    for anchor in anchors:
        path = Path(anchor.archive_file)
        if await asyncio.to_thread(_delete, path):
            expired.append(ExpiredArchive(path, anchor.seq, anchor.archive_sha256))
    if expired:
        await append_events(
            session,
            [
                AuditRecord(
                    actor=actor,
                    actor_kind=ActorKind.SYSTEM,
                    action=AuditAction.DELETE,
                    resource_type="audit_archive",
                    changes={
                        "archiveFile": str(item.path),
                        "archiveSha256": item.sha256,
                        "lastSeq": item.last_seq,
                        "retentionDays": retention_days,
                    },
                )
                for item in expired
            ],
        )
    return expired


def _delete(path: Path) -> bool:
    """Delete `path`; False when it was gone already (expired before, or moved by hand)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
