"""Bulk loading with COPY: the only way 1.1 million rows fit into the three-minute budget.

Generating a block is Python work and storing it is PostgreSQL work, so the two overlap: the
next block is generated in a worker thread while the server ingests the previous one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import asyncpg

from api.seed.customers import COLUMNS, TABLES, Block


async def present_tables(connection: asyncpg.Connection) -> tuple[str, ...]:
    """The generated tables this database has: one migrated to an older revision (an upgrade
    test, a restore) lacks the newer ones, whose rows are then left out."""
    found = await connection.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = ANY($1::text[])",
        list(TABLES),
    )
    names = {row["table_name"] for row in found}
    return tuple(table for table in TABLES if table in names)


async def copy_block(
    connection: asyncpg.Connection, block: Block, tables: tuple[str, ...] = TABLES
) -> None:
    for table in tables:
        rows = block.rows[table]
        if rows:
            await connection.copy_records_to_table(table, records=rows, columns=COLUMNS[table])


async def load_blocks(
    connection: asyncpg.Connection,
    blocks: Iterator[Block],
    on_block: Callable[[Block], None] | None = None,
    tables: tuple[str, ...] = TABLES,
) -> dict[str, int]:
    """COPY every block into `tables`; return the number of rows stored per table."""
    counts = dict.fromkeys(tables, 0)
    pending: asyncio.Task[None] | None = None
    try:
        while True:
            block = await asyncio.to_thread(next, blocks, None)
            if pending is not None:
                await pending
                pending = None
            if block is None:
                break
            for table in tables:
                counts[table] += len(block.rows[table])
            pending = asyncio.create_task(copy_block(connection, block, tables))
            if on_block is not None:
                on_block(block)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
    return counts


async def advance_sequences(connection: asyncpg.Connection, tables: tuple[str, ...]) -> None:
    """Rows were copied with explicit ids: move each identity past the largest one."""
    for table in tables:
        await connection.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table} "  # noqa: S608  # table names come from COLUMNS, never from input
            "HAVING max(id) IS NOT NULL"
        )
