"""Retention: move whole past months out of the database into a verified archive file.

`archive_before(session, before=2025-01-01, directory)`:
1. streams every event older than `before` in chain order into `audit-<first>-<last>.jsonl`,
   recomputing the chain from the previous anchor while writing (a broken chain is refused,
   never archived as if it were sound); the last line is a trailer holding the final hash;
2. re-reads the file and verifies it again (`verify_archive_file`), and checks that the first
   event kept in the database links to the archive's final hash;
3. records an anchor (last archived seq and hash, the file's SHA-256) so that `verify_chain`
   starts from it, appends an AUDIT_ARCHIVE event, then DETACHes and DROPs the monthly
   partitions — DDL, the one documented way past the append-only trigger — and the same
   months of the resource index (`audit_resource_index`), so no index row outlives its event.
All database steps run in the caller's transaction: a failure leaves every row in place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from audit.canonical import GENESIS_HASH, event_hash
from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.partitions import (
    MonthPartition,
    index_partition_name,
    list_partitions,
    month_start,
)
from audit.queries import event_document
from db.models.audit import AuditAnchor, AuditEvent

ARCHIVE_BATCH = 5_000
TRAILER_KEY = "archive"


class ArchiveError(RuntimeError):
    """Archiving was refused; nothing was detached. The message says why."""


@dataclass(frozen=True, kw_only=True)
class ArchiveResult:
    before: dt.date
    path: Path | None  # None when there was nothing to archive
    event_count: int
    first_seq: int | None
    last_seq: int | None
    final_hash: str | None
    sha256: str | None
    dropped_partitions: tuple[str, ...]


def parse_month(value: str) -> dt.date:
    """`YYYY-MM` → the first day of that month (UTC)."""
    try:
        return dt.datetime.strptime(value, "%Y-%m").date()
    except ValueError as error:
        raise ArchiveError(f"expected a month as YYYY-MM, got {value!r}") from error


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _event_fields(document: dict[str, Any]) -> dict[str, Any]:
    fields = dict(document)
    fields["at"] = dt.datetime.strptime(document["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=dt.UTC
    )
    return fields


def verify_archive_file(path: Path, *, start_seq: int, start_hash: str) -> tuple[int, str, int]:
    """Recompute the chain stored in an archive file; return (count, final hash, last seq).

    Raises ArchiveError naming the first bad line. `start_seq`/`start_hash` are where the
    archived stretch begins (0 and the genesis hash for the first archive).
    """
    expected_seq, expected_prev, count, trailer = start_seq + 1, start_hash, 0, None
    with path.open("r", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            document = json.loads(line)
            if TRAILER_KEY in document:
                trailer = document[TRAILER_KEY]
                continue
            if trailer is not None:
                raise ArchiveError(f"{path}:{number}: events after the trailer")
            if document["seq"] != expected_seq:
                raise ArchiveError(f"{path}:{number}: expected seq {expected_seq}")
            if document["prev_hash"] != expected_prev:
                raise ArchiveError(f"{path}:{number}: seq {expected_seq} breaks the chain")
            if event_hash(_event_fields(document)) != document["hash"]:
                raise ArchiveError(f"{path}:{number}: seq {expected_seq} was altered")
            expected_prev, expected_seq, count = document["hash"], expected_seq + 1, count + 1
    if trailer is None:
        raise ArchiveError(f"{path}: no trailer line: the file is truncated")
    if trailer["final_hash"] != expected_prev or trailer["event_count"] != count:
        raise ArchiveError(f"{path}: trailer does not match the events")
    return count, expected_prev, expected_seq - 1


async def drop_index_months(
    session: AsyncSession, partitions: list[MonthPartition], cut: dt.datetime
) -> None:
    """Drop the resource index's partitions of the archived months, and any stray rows.

    An index row holds the seqs of one batch's events in one month (the indexer splits a batch
    at month boundaries) and sits in that month's partition, so these partitions hold exactly
    the archived events' rows; the default partition only ever holds rows of events in the
    events' default partition, which archiving refuses before `cut`, and is cleared below it
    for good measure (a row's `at` is its first event's, and all its events share the month).
    """
    for partition in partitions:
        name = index_partition_name(partition.start)
        if await session.scalar(text("SELECT to_regclass(:name)"), {"name": name}) is None:
            continue
        await session.execute(text(f'ALTER TABLE audit_resource_index DETACH PARTITION "{name}"'))
        await session.execute(text(f'DROP TABLE "{name}"'))
    await session.execute(
        text("DELETE FROM audit_resource_index_default WHERE at < :cut"), {"cut": cut}
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def archive_before(
    session: AsyncSession, before: dt.date, directory: Path, *, actor: str = "dossier-cli"
) -> ArchiveResult:
    """Archive and drop every monthly partition that ends on or before `before` (a 1st of month).

    Only whole months strictly before the current one can go. The caller commits.
    """
    if before != month_start(before):
        raise ArchiveError("archives cut at the first day of a month")
    if before > month_start(dt.datetime.now(dt.UTC)):
        raise ArchiveError("the current month cannot be archived")
    cut = _utc_midnight(before)
    partitions = [p for p in await list_partitions(session) if p.end <= before]
    stray = await session.scalar(
        text("SELECT count(*) FROM audit_events_default WHERE at < :cut"), {"cut": cut}
    )
    if stray:
        raise ArchiveError(
            f"{stray} events older than {before:%Y-%m} sit in the default partition; "
            "they cannot be detached by month"
        )
    anchor = (
        await session.execute(
            select(AuditAnchor.seq, AuditAnchor.hash).order_by(AuditAnchor.seq.desc()).limit(1)
        )
    ).first()
    start_seq, start_hash = (anchor.seq, anchor.hash) if anchor else (0, GENESIS_HASH)
    old = AuditEvent.__table__
    count = await session.scalar(select(func.count()).select_from(old).where(old.c.at < cut))
    if not count:
        return ArchiveResult(
            before=before,
            path=None,
            event_count=0,
            first_seq=None,
            last_seq=None,
            final_hash=None,
            sha256=None,
            dropped_partitions=(),
        )

    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  # CLI run: no loop to starve
    path = directory / f"audit-before-{before:%Y-%m}-from-{start_seq + 1}.jsonl"
    partial = path.with_suffix(".jsonl.partial")
    expected_seq, expected_prev, written = start_seq + 1, start_hash, 0
    with partial.open("w", encoding="utf-8") as out:
        # keyset batches rather than a server-side cursor: an open portal would pin the
        # partitions that are dropped below until the transaction ends
        while True:
            batch = (
                await session.execute(
                    select(*old.c)
                    .where(old.c.at < cut, old.c.seq >= expected_seq)
                    .order_by(old.c.seq)
                    .limit(ARCHIVE_BATCH)
                )
            ).all()
            for row in batch:
                if row.seq != expected_seq or row.prev_hash != expected_prev:
                    raise ArchiveError(f"chain broken at seq {expected_seq}: run `audit verify`")
                if event_hash(row._mapping) != row.hash:
                    raise ArchiveError(f"seq {row.seq} was altered: run `audit verify`")
                out.write(json.dumps(event_document(row), ensure_ascii=False) + "\n")
                expected_prev, expected_seq, written = row.hash, row.seq + 1, written + 1
            if len(batch) < ARCHIVE_BATCH:
                break
        last_seq = expected_seq - 1
        trailer = {
            "before": f"{before:%Y-%m}",
            "first_seq": start_seq + 1,
            "last_seq": last_seq,
            "start_hash": start_hash,
            "event_count": written,
            "final_hash": expected_prev,
        }
        out.write(json.dumps({TRAILER_KEY: trailer}) + "\n")
        out.flush()
        os.fsync(out.fileno())
    verify_archive_file(partial, start_seq=start_seq, start_hash=start_hash)

    # the cut must be a prefix of the chain: what stays links to the archive's final hash
    after = (
        await session.execute(
            select(old.c.seq, old.c.prev_hash).where(old.c.at >= cut).order_by(old.c.seq).limit(1)
        )
    ).first()
    if after is not None and (after.seq != last_seq + 1 or after.prev_hash != expected_prev):
        raise ArchiveError(f"seq {last_seq + 1} does not continue the archived chain")

    partial.replace(path)
    sha256 = file_sha256(path)
    session.add(
        AuditAnchor(
            seq=last_seq,
            hash=expected_prev,
            before=cut,
            event_count=written,
            archive_file=str(path),
            archive_sha256=sha256,
        )
    )
    await session.flush()
    for partition in partitions:
        await session.execute(text(f'ALTER TABLE audit_events DETACH PARTITION "{partition.name}"'))
        await session.execute(text(f'DROP TABLE "{partition.name}"'))
    await drop_index_months(session, partitions, cut)
    await append_events(
        session,
        [
            AuditRecord(
                actor=actor,
                actor_kind=ActorKind.SYSTEM,
                action=AuditAction.AUDIT_ARCHIVE,
                resource_type="audit",
                changes={
                    "before": f"{before:%Y-%m}",
                    "last_seq": last_seq,
                    "final_hash": expected_prev,
                    "event_count": written,
                    "archive_sha256": sha256,
                },
            )
        ],
    )
    return ArchiveResult(
        before=before,
        path=path,
        event_count=written,
        first_seq=start_seq + 1,
        last_seq=last_seq,
        final_hash=expected_prev,
        sha256=sha256,
        dropped_partitions=tuple(p.name for p in partitions),
    )
