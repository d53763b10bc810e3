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

With the split of database rights in docs/operations.md the application role does not own
`audit_events` and so cannot create its partitions: the owner (migration) role makes them ahead
of time (`dossier audit partitions --months N`, e.g. monthly from cron; the migrations make the
current and next month). Here a month whose partitions exist costs one catalogue look-up and no
DDL, and a month that is missing is attempted under a savepoint: a role without the right gets
a warning naming the command to run, and the surrounding transaction (an append's) goes on —
its rows land in the default partition, which the owner's next run can no longer split off for
that month, so keep the partitions months ahead.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

log = logging.getLogger(__name__)
INSUFFICIENT_PRIVILEGE = "42501"
MAKE_AHEAD = "dossier audit partitions"

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
    if isinstance(executor, AsyncSession):
        bind = executor.get_bind()
        url = bind.engine.url if isinstance(bind, Connection) else bind.url
    else:
        url = executor.engine.url
    return url.render_as_string(hide_password=True)


async def ensure_partitions(
    executor: AsyncConnection | AsyncSession, at: dt.datetime | None = None, *, months: int = 2
) -> list[str]:
    """Make sure the partitions of `at`'s month (default: now) and the following months exist
    (`months` in all: this and the next by default); return the events partitions' names that
    exist afterwards. A month this role may not create is logged and skipped (see above)."""
    start = month_start(at or dt.datetime.now(dt.UTC))
    wanted = [start]
    while len(wanted) < months:
        wanted.append(next_month(wanted[-1]))
    present = await executor.execute(
        text(
            "SELECT m, to_regclass(e) IS NOT NULL AND to_regclass(i) IS NOT NULL FROM "
            "unnest(CAST(:months AS date[]), CAST(:events AS text[]), CAST(:index AS text[])) "
            "AS w(m, e, i)"
        ),
        {
            "months": wanted,
            "events": [partition_name(m) for m in wanted],
            "index": [index_partition_name(m) for m in wanted],
        },
    )
    exists = {month: found for month, found in present}
    names = []
    key = _database_key(executor)
    for month in wanted:
        # remembered even when refused (populated default partition, no right): retrying on
        # every append would only add a round trip under the chain lock
        _known.add((key, month))
        if exists.get(month):
            names.append(partition_name(month))
            continue
        try:
            async with executor.begin_nested():
                result = await executor.execute(
                    text("SELECT audit_ensure_partition(:month)"), {"month": month}
                )
                name = result.scalar_one()
        except DBAPIError as error:
            if _sqlstate(error) != INSUFFICIENT_PRIVILEGE:
                raise
            log.warning(
                "audit partition %s is missing and this database role may not create it: "
                "run `%s` as the owner role",
                partition_name(month),
                MAKE_AHEAD,
            )
            continue
        if name is not None:
            names.append(name)
    return names


def _sqlstate(error: DBAPIError) -> str | None:
    original = error.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    cause = getattr(original, "__cause__", None)
    return state or getattr(cause, "sqlstate", None)


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
