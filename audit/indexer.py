"""The resource-id index of the trail, filled behind the appenders rather than by them.

Appends hold the chain head until they commit, so whatever an append costs, every other request
waits for. A GIN index on `audit_events.resource_ids` made a 550-id read event cost ~2.7 ms of
index maintenance inside that lock (pgbench; ~0.5 ms without it). So the events carry no index
on their ids; instead `index_once` reads the events above the watermark
(`audit_index_state.indexed_seq`) a batch at a time in chain order, groups the events by the
ids they name, unnests each distinct list once, groups the ids by (id, type, month) and inserts
one `audit_resource_index` row per group holding the seqs that name the id as an array, and
moves the watermark in the same statement: a crash loses the whole batch or nothing, and the
next run resumes at the watermark.

Why compact rows: reads repeat the same records (the same customer views, read by many
requests), so within a batch most ids recur. One row per (id, event) was ~120 bytes and ~5 µs of
insert each; one row per (id, batch) plus 8 bytes per event naming it makes the indexer's cost
the grouping of the batch's pairs in memory, not a B-tree insert per pair.

Why a watermark is exact: appenders hold the chain head from the moment they take a `seq` to
their commit, so committed events always form a prefix of the chain (no later event becomes
visible before an earlier one). `seq > watermark ORDER BY seq LIMIT n` therefore never skips
an event that commits later. A batch is indexed whole, so every index row lies wholly below
or wholly above any watermark (`first_seq <= watermark` says which).

One indexer runs at a time fleet-wide: each round takes a transaction-level advisory lock
(skipping the round when another process holds it — PgBouncer-safe, unlike a session lock)
and then locks the watermark row, so even a caller that bypasses the advisory lock (a CLI
`dossier audit index` during a server's round) waits instead of indexing a batch twice.

Readers (`audit.queries`) take the watermark first, then unnest the index rows up to it and
scan `seq > watermark` in the events (`resource_ids @> ARRAY[id]`): an event is found the
moment it commits, whether the indexer has reached it or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the indexer ("audit_ix"); the insight refresher uses another
INDEX_LOCK_KEY = 0x61756469745F6978
# events per statement: 500 read events of 550 ids are 275k (id, event) pairs; the more events
# per batch, the more often an id recurs within it and the fewer index rows it makes. Measured
# (backend CPU per event, 4-event reads of 550 ids): 2000 instead of 500 cut it from 0.143 to
# 0.077 ms when the reads came from 20 views, but raised it from 0.56 to 0.68 ms when no id
# recurred (the grouping outgrows work_mem); a row costs ~3.3 µs to insert, a pair ~0.3 µs to
# group. Deduplicating the pairs in one aggregate instead of per event, or array_agg(DISTINCT),
# cost more (90 and 73 ms a batch instead of 56-63)
INDEX_BATCH = 500

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")
# the grouping sorts (or hashes) the batch's pairs: ~30 MB for 275k, in memory rather than on disk
_WORK_MEM = text("SET LOCAL work_mem = '64MB'")
_WATERMARK = text("SELECT indexed_seq, indexed_at FROM audit_index_state WHERE id = 1")
_LOCK_WATERMARK = text("SELECT indexed_seq FROM audit_index_state WHERE id = 1 FOR UPDATE")
# one statement per batch: read the next events in chain order, insert one row per distinct
# (id, type, month) holding the seqs that name it, move the watermark to the last event read
# (unchanged when there was none). An event names each id once (`audit.chain.prepare_row`).
# Events naming exactly the same ids (the same view read again) are grouped first and their
# list unnested once: 500 events of the bench's nested view cost 7 ms instead of 18 (20
# views: 9 instead of 20; EXPLAIN ANALYZE), and lists that share nothing cost as much as
# before. An id in several distinct lists joins their seqs (`audit_seqs_cat`, migration
# 0009); lists that each overlap the next (a window moved by one) cost ~1.4x. The seqs of a
# row are not sorted (readers unnest them); ordering them cost up to 2.5x.
_INDEX_BATCH = text(
    """
WITH batch AS MATERIALIZED (
    SELECT seq, at, coalesce(resource_type, '') AS resource_type, resource_ids,
        date_trunc('month', at, 'UTC') AS month
    FROM audit_events
    WHERE seq > :watermark ORDER BY seq LIMIT :limit
), views AS MATERIALIZED (
    SELECT resource_type, resource_ids, month, array_agg(seq) AS seqs,
        min(seq) AS first_seq, min(at) AS first_at, max(seq) AS last_seq, max(at) AS last_at
    FROM batch
    GROUP BY resource_type, resource_ids, month
), indexed AS (
    INSERT INTO audit_resource_index
        (resource_id, resource_type, first_seq, at, last_seq, last_at, seqs)
    SELECT id, v.resource_type, min(v.first_seq), min(v.first_at), max(v.last_seq),
        max(v.last_at), audit_seqs_cat(v.seqs)
    FROM views v CROSS JOIN LATERAL unnest(v.resource_ids) AS id
    GROUP BY id, v.resource_type, v.month
)
UPDATE audit_index_state
SET indexed_seq = coalesce((SELECT max(seq) FROM batch), indexed_seq),
    indexed_at = coalesce((SELECT max(at) FROM batch), indexed_at)
WHERE id = 1
RETURNING indexed_seq, (SELECT count(*) FROM batch) AS events
"""
)


@dataclass(frozen=True, slots=True)
class IndexRound:
    """What one `index_once` did: `locked` False means another indexer held the lock."""

    locked: bool
    events: int = 0
    watermark: int | None = None


@dataclass(frozen=True, slots=True)
class Watermark:
    """Every event with `seq <= seq` is in `audit_resource_index`; `at` is that event's time.

    Appends never stamp an event earlier than the one before it (`audit.chain`), so every
    event above the watermark has `at >= self.at`: the unindexed tail lies in the last month
    partitions, and a query can prune the others when it plans.
    """

    seq: int
    at: dt.datetime | None


async def read_watermark(executor: AsyncConnection | AsyncSession) -> Watermark:
    row = (await executor.execute(_WATERMARK)).one()
    return Watermark(seq=int(row.indexed_seq), at=row.indexed_at)


async def index_watermark(executor: AsyncConnection | AsyncSession) -> int:
    """Every event with `seq <=` this is in `audit_resource_index`."""
    return (await read_watermark(executor)).seq


async def index_batch(
    connection: AsyncConnection | AsyncSession, *, limit: int = INDEX_BATCH
) -> tuple[int, int]:
    """Index the next `limit` events in the caller's transaction; returns (events, watermark).

    Locks the watermark row first: a concurrent caller waits, then continues from the
    watermark this one leaves. The caller commits.
    """
    watermark = int((await connection.execute(_LOCK_WATERMARK)).scalar_one())
    await connection.execute(_WORK_MEM)
    row = (await connection.execute(_INDEX_BATCH, {"watermark": watermark, "limit": limit})).one()
    return int(row.events), int(row.indexed_seq)


async def index_once(
    engine: AsyncEngine, *, limit: int = INDEX_BATCH, max_batches: int | None = None
) -> IndexRound:
    """Catch the index up with the chain, a transaction per batch, unless another indexer runs.

    Stops when a batch comes back short (the chain's end, as of that batch) or after
    `max_batches`. Returns what it did; `locked=False` when another process was indexing.
    """
    total, watermark, batches = 0, None, 0
    while max_batches is None or batches < max_batches:
        async with engine.begin() as connection:
            await connection.execute(text("SET LOCAL statement_timeout = 0"))
            if not (await connection.execute(_TRY_LOCK, {"key": INDEX_LOCK_KEY})).scalar_one():
                return IndexRound(locked=batches > 0, events=total, watermark=watermark)
            events, watermark = await index_batch(connection, limit=limit)
        total, batches = total + events, batches + 1
        if events < limit:
            break
    return IndexRound(locked=True, events=total, watermark=watermark)


class ResourceIndexer:
    """Runs `index_once` every `interval` seconds while the server runs.

    Meant for the lifespan, like the insight snapshot refresher: `await indexer.start()` after
    the engine exists, `await indexer.stop()` before it is disposed. Of several server
    processes, the one that gets the advisory lock indexes; the others skip that round.
    """

    def __init__(self, engine: AsyncEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-resource-indexer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _ready(self) -> bool:
        async with self._engine.connect() as connection:
            found = await connection.execute(text("SELECT to_regclass('audit_index_state')"))
            return found.scalar_one() is not None

    async def _run(self) -> None:
        ready = False
        while True:
            try:
                # a database not yet migrated to the index: nothing to do, and nothing to log
                ready = ready or await self._ready()
                if ready:
                    await index_once(self._engine)
            except Exception:  # the tail scan keeps queries complete; retry next round
                log.exception("audit resource indexing failed")
            await asyncio.sleep(self._interval)
