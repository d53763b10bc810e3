"""Monthly partitions of audit_events, created ahead of need so the default one stays empty.

`audit_resource_index` (see `audit.indexer`) is partitioned the same way; each month's partition
of it is created together with the events' by the same SQL function.

A month's partition cannot be created once the default partition holds rows of that month, so
partitions are made for the current and the next month: at migration, at server start
(`ensure_partitions`) and, as a backstop, by the first append that lands in a month this process
has not seen (`ensure_partition_for`). The SQL function `audit_ensure_partition(date)` from the
migration does the DDL, tolerates a concurrent creator, and on a populated default partition
warns and leaves the rows where they are rather than failing the append. Being made with
PARTITION OF, a new partition takes the parent's column compression: lz4 for the event arrays
since migration 0008, which also altered the partitions that already existed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

PARTITION_NAME = re.compile(r"^audit_events_y(?P<year>\d{4})m(?P<month>\d{2})$")

# months whose partition this process has seen, per database: an append checks the catalogue
# once a month, not once per event
_known: set[tuple[str, dt.date]] = set()


@dataclass(frozen=True, slots=True)
class MonthPartition:
    name: str
    start: dt.date  # first day of the month, UTC

    @property
    def end(self) -> dt.date:
        return next_month(self.start)


def month_start(at: dt.datetime | dt.date) -> dt.date:
    if isinstance(at, dt.datetime):
        at = at.astimezone(dt.UTC).date() if at.tzinfo else at.date()
    return at.replace(day=1)


def next_month(start: dt.date) -> dt.date:
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def partition_name(start: dt.date) -> str:
    return f"audit_events_y{start.year:04d}m{start.month:02d}"


def index_partition_name(start: dt.date) -> str:
    """The month's partition of `audit_resource_index` (created with the events' one)."""
    return f"audit_resource_index_y{start.year:04d}m{start.month:02d}"


def _database_key(executor: AsyncConnection | AsyncSession) -> str:
    bind = executor.get_bind() if isinstance(executor, AsyncSession) else executor.engine
    return bind.url.render_as_string(hide_password=True)


async def ensure_partitions(
    executor: AsyncConnection | AsyncSession, at: dt.datetime | None = None
) -> list[str]:
    """Create the partitions of `at`'s month (default: now) and the next one; return their names."""
    start = month_start(at or dt.datetime.now(dt.UTC))
    names = []
    for month in (start, next_month(start)):
        result = await executor.execute(
            text("SELECT audit_ensure_partition(:month)"), {"month": month}
        )
        name = result.scalar_one()
        # remembered even when refused (populated default partition): retrying on every
        # append would only add a round trip under the chain lock
        _known.add((_database_key(executor), month))
        if name is not None:
            names.append(name)
    return names


async def ensure_partition_for(executor: AsyncConnection | AsyncSession, at: dt.datetime) -> None:
    """Backstop for appends: make sure `at`'s month (and the next) has its partition."""
    if (_database_key(executor), month_start(at)) not in _known:
        await ensure_partitions(executor, at)


async def list_partitions(executor: AsyncConnection | AsyncSession) -> list[MonthPartition]:
    """The monthly partitions attached to audit_events, oldest first (the default one excluded)."""
    result = await executor.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_events'::regclass"
        )
    )
    months = []
    for (name,) in result:
        match = PARTITION_NAME.match(name)
        if match:
            start = dt.date(int(match["year"]), int(match["month"]), 1)
            months.append(MonthPartition(name=name, start=start))
    return sorted(months, key=lambda partition: partition.start)
