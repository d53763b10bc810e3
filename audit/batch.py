"""Group commit for read events: one chain append and one commit for many requests.

A read has nothing to commit but its audit events. Appending them alone, every request takes
the chain head, inserts, commits and only then lets the next request in — at concurrency 8 the
requests queue on that lock and each pays its round trips (measured: read auditing cost 42 % of
the nested view's throughput). Here requests hand their records over and wait; one flusher per
process appends everything that queued up meanwhile in one transaction and releases the waiters
only after that commit. A read is still never answered before its events are durable, and the
chain still has one writer at a time.

A failed batch is retried request by request, so a record that cannot be written fails its own
request only. Writes do not come here: their events belong to their own transaction.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from audit.events import AuditRecord

Appender = Callable[[AsyncSession, Sequence[AuditRecord]], Awaitable[Any]]
MAX_BATCH_REQUESTS = 128  # bounds one transaction's size and the lock's hold time


class ReadAuditBatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], append: Appender) -> None:
        self._sessions = sessions
        self._append = append
        self._waiting: list[tuple[Sequence[AuditRecord], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, records: Sequence[AuditRecord]) -> Any:
        """Return once `records` are committed, with what the appender returned for their
        batch (the endpoint counts statements with it); raise if they could not be."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((records, future))
        if self._flusher is None or self._flusher.done():
            # a context of its own: the flusher serves many requests, not the first one's
            self._flusher = asyncio.create_task(self._flush(), context=contextvars.Context())
        # a caller that gives up (timeout, disconnect) leaves its records in the batch
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        try:
            await self._flush_waiting()
        except BaseException as stopped:  # cancelled at shutdown: nobody waits for ever
            for _, future in self._waiting:
                _settle(future, error=RuntimeError("read audit stopped"))
            self._waiting.clear()
            raise stopped

    async def _flush_waiting(self) -> None:
        while self._waiting:
            batch = self._waiting[:MAX_BATCH_REQUESTS]
            del self._waiting[:MAX_BATCH_REQUESTS]
            try:
                done = await self._write([record for records, _ in batch for record in records])
            except Exception as error:
                if len(batch) == 1:
                    _settle(batch[0][1], error=error)
                    continue
                for records, future in batch:
                    try:
                        alone = await self._write(records)
                    except Exception as own_error:
                        _settle(future, error=own_error)
                    else:
                        _settle(future, alone)
            else:
                for _, future in batch:
                    _settle(future, done)

    async def _write(self, records: Sequence[AuditRecord]) -> Any:
        async with self._sessions() as session:
            result = await self._append(session, records)
            await session.commit()
        return result


def _settle(
    future: asyncio.Future[Any], result: Any = None, *, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
