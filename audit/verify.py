"""Recomputing the audit chain: proves that no entry was altered, removed or reordered.

The chain is read in `seq` order through a server-side cursor. It starts at the newest archive
anchor (or at the genesis hash) and must end at the chain head, so removing the newest events is
caught as well as removing one in the middle. The first problem stops the walk; what follows a
broken link cannot be trusted anyway.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from audit.canonical import CANONICAL_KEYS, GENESIS_HASH, event_hash
from db.models.audit import AuditAnchor, AuditChainHead, AuditEvent

VERIFY_BATCH = 5_000
# how far past a broken link to look for the entry it names, to tell a swap from a removal
REORDER_LOOKAHEAD = 1_000


class Problem(StrEnum):
    ALTERED = "altered"  # the entry's content no longer matches its own hash
    MISSING = "missing"  # a sequence number is absent (removed), or the newest were removed
    REORDERED = "reordered"  # the entry links to one that now comes after it
    BROKEN_LINK = "broken link"  # links to an unknown hash: predecessor rewritten, or renumbered


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """What `verify_chain` found; `ok` only when every entry from anchor to head checked out."""

    checked: int
    first_bad_seq: int | None
    problem: Problem | None
    detail: str | None
    anchor_seq: int  # the archived prefix ends here (0: nothing archived)
    last_seq: int | None  # the newest entry read
    head_seq: int  # what the chain head says the newest entry is
    seconds: float

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def events_per_second(self) -> float:
        return self.checked / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        if self.ok:
            return (
                f"audit chain ok: {self.checked} events (seq {self.anchor_seq + 1}.."
                f"{self.head_seq}) verified in {self.seconds:.2f}s "
                f"({self.events_per_second:,.0f} events/s)"
            )
        return (
            f"audit chain BROKEN at seq {self.first_bad_seq}: {self.problem} — {self.detail} "
            f"({self.checked} events checked before it)"
        )


_COLUMNS = [AuditEvent.__table__.c[name] for name in ("seq", "hash", *CANONICAL_KEYS)]


async def _rows(
    executor: AsyncConnection | AsyncSession, after_seq: int
) -> AsyncGenerator[Row[Any], None]:
    statement = (
        select(*_COLUMNS)
        .where(AuditEvent.__table__.c.seq > after_seq)
        .order_by(AuditEvent.__table__.c.seq)
        .execution_options(yield_per=VERIFY_BATCH)
    )
    result = await executor.stream(statement)
    async for row in result:
        yield row


async def verify_chain(executor: AsyncConnection | AsyncSession) -> VerifyReport:
    """Recompute every hash from the newest anchor to the head; name the first bad entry."""
    started = time.perf_counter()
    anchor = (
        await executor.execute(
            select(AuditAnchor.seq, AuditAnchor.hash).order_by(AuditAnchor.seq.desc()).limit(1)
        )
    ).first()
    head = (
        await executor.execute(
            select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.id == 1)
        )
    ).one()
    anchor_seq, expected_prev = (anchor.seq, anchor.hash) if anchor else (0, GENESIS_HASH)
    expected_seq = anchor_seq + 1
    checked = 0
    last_seq: int | None = None

    def report(bad: int | None, problem: Problem | None, detail: str | None) -> VerifyReport:
        return VerifyReport(
            checked=checked,
            first_bad_seq=bad,
            problem=problem,
            detail=detail,
            anchor_seq=anchor_seq,
            last_seq=last_seq,
            head_seq=head.seq,
            seconds=time.perf_counter() - started,
        )

    rows = _rows(executor, anchor_seq)
    try:
        async for row in rows:
            if row.seq != expected_seq:
                if row.seq > expected_seq:
                    gap = (
                        f"{expected_seq}"
                        if row.seq == expected_seq + 1
                        else (f"{expected_seq}..{row.seq - 1}")
                    )
                    return report(expected_seq, Problem.MISSING, f"no event with seq {gap}")
                return report(row.seq, Problem.BROKEN_LINK, f"seq {row.seq} appears twice")
            if event_hash(row._mapping) != row.hash:
                return report(row.seq, Problem.ALTERED, "content does not match its hash")
            if row.prev_hash != expected_prev:
                async for later in _take(rows, REORDER_LOOKAHEAD):
                    if later.hash == row.prev_hash:
                        return report(
                            row.seq,
                            Problem.REORDERED,
                            f"it follows the event now at seq {later.seq}",
                        )
                return report(
                    row.seq,
                    Problem.BROKEN_LINK,
                    f"it does not link to seq {row.seq - 1}: that entry was rewritten and "
                    "rehashed, or an entry was removed and the later ones renumbered",
                )
            expected_prev, expected_seq, last_seq = row.hash, row.seq + 1, row.seq
            checked += 1
    finally:
        await rows.aclose()
    if head.seq > expected_seq - 1:
        return report(
            expected_seq,
            Problem.MISSING,
            f"the chain head records seq {head.seq}: the newest events were removed",
        )
    if head.seq < expected_seq - 1:
        return report(head.seq + 1, Problem.BROKEN_LINK, "events past the chain head were inserted")
    if head.hash != expected_prev:
        bad = last_seq if last_seq is not None else anchor_seq
        return report(bad, Problem.ALTERED, "the newest entry does not match the chain head")
    return report(None, None, None)


async def _take(rows: AsyncIterator[Row[Any]], limit: int) -> AsyncIterator[Row[Any]]:
    count = 0
    async for row in rows:
        yield row
        count += 1
        if count >= limit:
            return
