"""Reminders nobody asks for: follow-ups due, contracts ending, payments overdue → OPEN tasks.

`run_reminders(engine, now)` is the whole scheduler: one transaction, three set-based
`INSERT … SELECT … ON CONFLICT DO NOTHING` (one per kind) and one SYSTEM audit event per kind
naming the tasks created. It scans date windows, not "what happened since the last run", so a
process that was down catches up on its next pass, and the partial unique index on
`tasks (kind, source_id)` makes it idempotent: a rerun, or a second process racing this one,
creates nothing twice. Writes that put a date straight into its window (`remind_now`) create
the task in their own transaction with the same statement, narrowed to the records written.

It is a plain async function so that a cron entry (`dossier remind`), the in-process leader
(`ReminderScheduler`, one per cluster through a PostgreSQL advisory lock) and a job system can
all run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord

log = logging.getLogger("dossier.reminders")

SYSTEM_ACTOR = "system:reminders"
REMINDER_LOCK_KEY = 0x05EED_0018  # pg advisory lock of the one scheduler leader
# follow-ups older than this are history, not reminders (a first run on old data stays quiet)
FOLLOW_UP_LOOKBACK_DAYS = 30
DEFAULT_RENEWAL_DAYS = 30

FOLLOW_UP = "FOLLOW_UP"
CONTRACT_RENEWAL = "CONTRACT_RENEWAL"
PAYMENT_DUE = "PAYMENT_DUE"

# per kind: INSERT … SELECT with :today, :renewal_until and :lookback; `/*only*/` is where a
# write narrows it to the records it wrote
_STATEMENTS: dict[str, str] = {
    FOLLOW_UP: """
INSERT INTO tasks (title, kind, status, due_at, assignee_id, customer_id, source_id)
SELECT left('跟进 Follow up: ' || c.name, 300), 'FOLLOW_UP', 'OPEN',
       i.next_follow_up_on::timestamptz, coalesce(c.owner_id, i.author_id), i.customer_id, i.id
FROM interactions i JOIN customers c ON c.id = i.customer_id
WHERE i.next_follow_up_on BETWEEN :lookback AND :today AND c.archived_at IS NULL /*only*/
ON CONFLICT (kind, source_id) WHERE source_id IS NOT NULL DO NOTHING
RETURNING id""",
    CONTRACT_RENEWAL: """
INSERT INTO tasks (title, kind, status, due_at, assignee_id, customer_id, source_id)
SELECT left('合同到期 Renew: ' || k.title, 300), 'CONTRACT_RENEWAL', 'OPEN',
       k.ends_on::timestamptz, coalesce(k.owner_id, c.owner_id), k.customer_id, k.id
FROM contracts k JOIN customers c ON c.id = k.customer_id
WHERE k.status = 'ACTIVE' AND k.ends_on BETWEEN :today AND :renewal_until
  AND c.archived_at IS NULL /*only*/
ON CONFLICT (kind, source_id) WHERE source_id IS NOT NULL DO NOTHING
RETURNING id""",
    PAYMENT_DUE: """
INSERT INTO tasks (title, kind, status, due_at, assignee_id, customer_id, source_id)
SELECT left('回款逾期 Payment overdue: ' || k.title, 300), 'PAYMENT_DUE', 'OPEN',
       p.due_on::timestamptz, coalesce(k.owner_id, c.owner_id), p.customer_id, p.id
FROM payments p JOIN contracts k ON k.id = p.contract_id JOIN customers c ON c.id = p.customer_id
WHERE p.paid_on IS NULL AND p.due_on < :today AND c.archived_at IS NULL /*only*/
ON CONFLICT (kind, source_id) WHERE source_id IS NOT NULL DO NOTHING
RETURNING id""",
}
_SOURCE = {FOLLOW_UP: "i.id", CONTRACT_RENEWAL: "k.id", PAYMENT_DUE: "p.id"}

# Statuses that follow from a date: a payment still unpaid after its due date is OVERDUE, an
# ACTIVE contract past its end EXPIRED. Written in the pass that creates the reminders, so a
# list filtered by status agrees with the tasks the same day, and audited as system changes.
_DATE_STATUSES: dict[str, tuple[str, str, str]] = {
    # resource: (statement, old status, new status)
    "payment": (
        """UPDATE payments SET status = 'OVERDUE'
WHERE status = 'PLANNED' AND paid_on IS NULL AND due_on < :today RETURNING id""",
        "PLANNED",
        "OVERDUE",
    ),
    "contract": (
        """UPDATE contracts SET status = 'EXPIRED'
WHERE status = 'ACTIVE' AND ends_on < :today RETURNING id""",
        "ACTIVE",
        "EXPIRED",
    ),
}


def renewal_days() -> int:
    """`DOSSIER_RENEWAL_DAYS` (default 30): how long before its end a contract is renewed."""
    raw = os.environ.get("DOSSIER_RENEWAL_DAYS", "").strip()
    if not raw:
        return DEFAULT_RENEWAL_DAYS
    days = int(raw)
    if days < 0:
        raise ValueError("DOSSIER_RENEWAL_DAYS must not be negative")
    return days


@dataclass(frozen=True)
class ReminderCounts:
    follow_ups: int = 0
    renewals: int = 0
    overdue_payments: int = 0
    payments_marked_overdue: int = 0
    contracts_expired: int = 0

    @property
    def total(self) -> int:
        """Tasks created (status changes are not tasks)."""
        return self.follow_ups + self.renewals + self.overdue_payments


def _parameters(today: date, days: int) -> dict[str, Any]:
    return {
        "today": today,
        "renewal_until": today + timedelta(days=days),
        "lookback": today - timedelta(days=FOLLOW_UP_LOOKBACK_DAYS),
    }


def _event(kind: str, ids: list[int]) -> AuditRecord:
    return AuditRecord(
        actor=SYSTEM_ACTOR,
        actor_kind=ActorKind.SYSTEM.value,
        action=AuditAction.CREATE.value,
        resource_type="task",
        resource_ids=[str(i) for i in ids],
        fields=["assignee", "customer", "dueAt", "kind", "status", "title"],
        changes={"kind": {"old": None, "new": kind}, "status": {"old": None, "new": "OPEN"}},
        operation="reminders",
    )


def _status_event(resource: str, ids: list[int], old: str, new: str) -> AuditRecord:
    return AuditRecord(
        actor=SYSTEM_ACTOR,
        actor_kind=ActorKind.SYSTEM.value,
        action=AuditAction.UPDATE.value,
        resource_type=resource,
        resource_ids=[str(i) for i in ids],
        fields=["status"],
        changes={"status": {"old": old, "new": new}},
        operation="reminders",
    )


async def _date_statuses(
    connection: AsyncConnection, today: date
) -> tuple[dict[str, list[int]], list[AuditRecord]]:
    """Flip the statuses that a passed date decides; the ids per resource and their events."""
    changed: dict[str, list[int]] = {}
    events: list[AuditRecord] = []
    for resource, (statement, old, new) in _DATE_STATUSES.items():
        rows = await connection.execute(text(statement), {"today": today})
        changed[resource] = sorted(r[0] for r in rows)
        if changed[resource]:
            events.append(_status_event(resource, changed[resource], old, new))
    return changed, events


async def _insert(
    executor: AsyncConnection | AsyncSession,
    kind: str,
    parameters: dict[str, Any],
    only: list[int] | None = None,
) -> list[int]:
    sql = _STATEMENTS[kind]
    narrowed = f"AND {_SOURCE[kind]} = ANY(:only)" if only is not None else ""
    values = dict(parameters, **({"only": only} if only is not None else {}))
    rows = await executor.execute(text(sql.replace("/*only*/", narrowed)), values)
    return sorted(r[0] for r in rows)


async def run_reminders(
    engine: AsyncEngine, now: datetime | None = None, *, days: int | None = None
) -> ReminderCounts:
    """Create every reminder task due at `now` that does not exist yet; idempotent."""
    today = (now or datetime.now(UTC)).date()
    parameters = _parameters(today, renewal_days() if days is None else days)
    created: dict[str, list[int]] = {}
    async with engine.begin() as connection:
        for kind in _STATEMENTS:
            created[kind] = await _insert(connection, kind, parameters)
        events = [_event(kind, ids) for kind, ids in created.items() if ids]
        # a status states what is true now: a pass that pretends a later day (`remind --at`,
        # the tests) creates that day's tasks but expires nothing before its date has come
        really = datetime.now(UTC).date()
        changed, status_events = await _date_statuses(connection, min(today, really))
        events.extend(status_events)
        if events:
            await append_events(connection, events)  # with the tasks, or not at all
    counts = ReminderCounts(
        follow_ups=len(created[FOLLOW_UP]),
        renewals=len(created[CONTRACT_RENEWAL]),
        overdue_payments=len(created[PAYMENT_DUE]),
        payments_marked_overdue=len(changed["payment"]),
        contracts_expired=len(changed["contract"]),
    )
    if counts.total or status_events:
        log.info("reminders created: %s", counts)
    return counts


async def remind_now(
    session: AsyncSession, kind: str, source_ids: list[int], now: datetime | None = None
) -> list[AuditRecord]:
    """In a write's transaction: the reminders of just these records, if already due.

    Returns the SYSTEM audit events to queue with the write's own (empty when none is due).
    """
    today = (now or datetime.now(UTC)).date()
    ids = await _insert(session, kind, _parameters(today, renewal_days()), only=source_ids)
    return [_event(kind, ids)] if ids else []


class ReminderScheduler:
    """`run_reminders` every `interval` seconds inside `dossier serve`, by one leader.

    The leader is whoever holds the session advisory lock on a dedicated connection (its own,
    not one of the request pool's); the lock goes with the connection, so when a leader dies
    another process takes over at its next try. Followers only retry the lock. Nothing is lost
    meanwhile: the scan is by date window.
    """

    def __init__(self, engine: AsyncEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.is_leader = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reminders")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        # the lock's connection is outside the request pool: it is held for the process's
        # life, and would otherwise take a request's place (and show as checked out)
        lock_engine = create_async_engine(self._engine.url, poolclass=NullPool)
        try:
            await self._hold(lock_engine)
        finally:
            await lock_engine.dispose()

    async def _hold(self, lock_engine: AsyncEngine) -> None:
        while True:
            try:
                async with lock_engine.connect() as leader:
                    await leader.execution_options(isolation_level="AUTOCOMMIT")
                    try:
                        await self._lead(leader)
                    finally:
                        await self._resign(leader)
            except asyncio.CancelledError:
                raise
            except Exception:  # a lost connection or a failed pass: retry, never crash serve
                log.exception("reminder pass failed; retrying")
                await asyncio.sleep(min(self._interval, 30))

    async def _lead(self, leader: AsyncConnection) -> None:
        while True:
            if not self.is_leader:
                locked = await leader.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": REMINDER_LOCK_KEY}
                )
                self.is_leader = bool(locked.scalar_one())
            if self.is_leader:
                await run_reminders(self._engine)
            else:
                await leader.execute(text("SELECT 1"))  # keep the connection alive
            await asyncio.sleep(self._interval)

    async def _resign(self, leader: AsyncConnection) -> None:
        """Give the lock back before the connection returns to the pool: a pooled connection
        keeps a session lock, and no other process could lead while this one lives."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            await leader.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": REMINDER_LOCK_KEY}
            )
        except Exception:  # the connection is gone, and the lock with it
            await leader.invalidate()
