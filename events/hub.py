"""One LISTEN connection per process, fanned out to everyone in it who waits for changes.

`events.outbox` announces committed outbox ids on `dossier_events`; the hub hands each id to
every subscriber's queue (GraphQL subscriptions) and wakes every waiter (the delivery worker).
A lost listener is replaced with backoff; subscribers are told (`None` in their queue is never
sent: a gap is reported as `LOST`) so that nobody believes it heard everything when it did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from events.outbox import NOTIFY_CHANNEL

log = logging.getLogger("dossier.events")

LOST = -1  # queued when the listener was lost: changes in between may be missed
QUEUE_SIZE = 1000


class EventHub:
    MAX_BACKOFF_SECONDS = 10.0

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._listener: asyncpg.Connection | None = None
        self._queues: set[asyncio.Queue[int]] = set()
        self._wakeups: set[asyncio.Event] = set()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._listen()

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def _listen(self) -> None:
        listener = await asyncpg.connect(self._dsn)
        await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        listener.add_termination_listener(self._on_lost)
        self._listener = listener

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        ids = [int(part) for part in payload.split(",") if part.isdigit()]
        for queue in list(self._queues):
            for outbox_id in ids:
                self._put(queue, outbox_id)
        for wakeup in list(self._wakeups):
            wakeup.set()

    def _put(self, queue: asyncio.Queue[int], item: int) -> None:
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:  # a subscriber that cannot keep up loses its stream
            log.warning("event subscriber too slow; its stream is cut")
            self._queues.discard(queue)
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            queue.put_nowait(LOST)

    def _on_lost(self, lost: object) -> None:
        if self._stopping or lost is not self._listener:
            return
        log.warning("event listener lost; reconnecting")
        self._listener = None
        for queue in list(self._queues):
            self._put(queue, LOST)
        task = asyncio.get_running_loop().create_task(self._reconnect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconnect(self) -> None:
        delay = 0.1
        while not self._stopping:
            try:
                await self._listen()
            except (OSError, TimeoutError, asyncpg.PostgresError) as error:
                log.warning("event listener cannot reconnect yet: %s", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.MAX_BACKOFF_SECONDS)
                continue
            for wakeup in list(self._wakeups):
                wakeup.set()  # deliveries announced meanwhile: look now
            return

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[int]]:
        """A queue of committed outbox ids (and `LOST`) from now on, until the block ends."""
        queue: asyncio.Queue[int] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def wakeup(self) -> asyncio.Event:
        """An event set whenever something was announced; the caller clears it."""
        event = asyncio.Event()
        self._wakeups.add(event)
        return event
