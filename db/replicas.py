"""Read replicas: which database a read-only request may read from.

A replica is used for a read only when

1. it answered its staleness probe within `check_seconds` and was at most `max_lag_seconds`
   behind the primary (a replica that cannot be reached, or lags, is skipped until the next
   probe: reads go to the primary, never to stale data), and
2. the reader has not written in the last `read_your_writes_seconds`: after a write, that
   principal's reads stay on the primary for the window, so it sees its own writes.

The last write of each principal is kept by a `WriteLog`: in this process by default, shared by
every process (Redis) when the app has a shared store, so a write through one host keeps the
writer's reads through every host on the primary.

Replica engines open their transactions read-only: a statement that would write fails there
as it would on a hot standby. Audit events are never written through them: the audit appenders
use the primary engine.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import PoolOptions, create_engine, create_sessionmaker

log = logging.getLogger("dossier.replicas")

# seconds the replica is behind: 0 on a server that is not a standby, and on a standby that
# has replayed all it received (an idle primary sends nothing new, so its last replayed
# transaction may be old while the data is current); NULL when nothing was replayed yet
LAG_SQL = """
SELECT CASE
  WHEN NOT pg_is_in_recovery() THEN 0.0
  WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
  ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
END
"""


@dataclass(frozen=True, kw_only=True)
class ReplicaSettings:
    """`DOSSIER_REPLICA_URLS` and the bounds a replica must meet to serve reads."""

    urls: tuple[str, ...] = ()
    max_lag_seconds: float = 5.0
    check_seconds: float = 1.0
    read_your_writes_seconds: float = 10.0


class WriteLog(Protocol):
    async def note_write(self, writer: str, seconds: float) -> None:
        """Remember that `writer` wrote, for `seconds`."""
        ...

    async def wrote_lately(self, writer: str) -> bool:
        """Whether `writer` wrote within the window of its last `note_write`."""
        ...


class InProcessWriteLog:
    """Last writes in this process, bounded (least recently written dropped first)."""

    def __init__(
        self, max_tracked: int = 100_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._until: OrderedDict[str, float] = OrderedDict()
        self._max_tracked = max_tracked
        self._clock = clock

    async def note_write(self, writer: str, seconds: float) -> None:
        self._until[writer] = self._clock() + seconds
        self._until.move_to_end(writer)
        while len(self._until) > self._max_tracked:
            self._until.popitem(last=False)

    async def wrote_lately(self, writer: str) -> bool:
        until = self._until.get(writer)
        return until is not None and until > self._clock()


@dataclass
class Replica:
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    lag: float | None = None  # None: unknown or unreachable
    checked: float = -math.inf
    probing: asyncio.Lock = field(default_factory=asyncio.Lock)


class ReplicaRouter:
    """Chooses a replica for a read, or None for the primary."""

    lag_sql = LAG_SQL

    def __init__(
        self,
        settings: ReplicaSettings,
        options: PoolOptions,
        writes: WriteLog,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._writes = writes
        self._clock = clock
        self._next = 0
        self.replicas: Sequence[Replica] = []
        for url in settings.urls:
            engine = create_engine(url, options, application_name="dossier-replica")
            # like a hot standby: a statement that writes fails instead of diverging
            read_only = engine.execution_options(postgresql_readonly=True)
            self.replicas.append(Replica(url, engine, create_sessionmaker(read_only)))

    async def sessions_for(self, writer: str | None) -> async_sessionmaker[AsyncSession] | None:
        """A fresh replica's session factory for `writer`'s read, or None: use the primary."""
        if not self.replicas:
            return None
        if writer is not None and await self._writes.wrote_lately(writer):
            return None
        count = len(self.replicas)
        start, self._next = self._next, (self._next + 1) % count
        for offset in range(count):  # round robin over the fresh ones
            replica = self.replicas[(start + offset) % count]
            if await self._is_fresh(replica):
                return replica.sessions
        return None

    async def note_write(self, writer: str) -> None:
        await self._writes.note_write(writer, self.settings.read_your_writes_seconds)

    async def _is_fresh(self, replica: Replica) -> bool:
        if self._clock() - replica.checked >= self.settings.check_seconds:
            async with replica.probing:  # one probe per replica at a time
                if self._clock() - replica.checked >= self.settings.check_seconds:
                    replica.lag = await self._probe(replica)
                    replica.checked = self._clock()
        return replica.lag is not None and replica.lag <= self.settings.max_lag_seconds

    async def _probe(self, replica: Replica) -> float | None:
        try:
            async with asyncio.timeout(max(self.settings.check_seconds, 1.0)):
                async with replica.engine.connect() as connection:
                    lag = (await connection.execute(text(self.lag_sql))).scalar()
        except Exception as exc:  # unreachable or failing: reads go to the primary
            log.warning("replica %s unavailable: %r", _safe(replica.url), exc)
            return None
        if lag is None:
            return None
        if lag > self.settings.max_lag_seconds:
            log.warning(
                "replica %s is %.1f s behind; reads go to the primary", _safe(replica.url), lag
            )
        return float(lag)

    async def dispose(self) -> None:
        for replica in self.replicas:
            await replica.engine.dispose()


def _safe(url: str) -> str:
    """The URL without its password, for the log."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
