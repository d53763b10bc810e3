"""Bulk loading with COPY: the only way 1.1 million rows fit into the three-minute budget.

Secondary indexes and foreign keys are set aside for the load and rebuilt once after it
(`defer_checks`): maintained row by row they were three quarters of the database's work
(50 000 customers: 10.4 s of backend CPU with them, 1.6 s + 1.5 s to rebuild without).

Generating a block is Python work and storing it is PostgreSQL work, so the two overlap: the
next block is generated in a worker thread while the server ingests the previous one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

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


async def present_columns(
    connection: asyncpg.Connection, tables: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """Per table, the generated columns this database has: an older revision lacks the newer
    ones (`email_enc` before 0015, say), whose values are then left out of its rows."""
    found = await connection.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ANY($1::text[])",
        list(tables),
    )
    names: dict[str, set[str]] = {}
    for row in found:
        names.setdefault(row["table_name"], set()).add(row["column_name"])
    return {
        table: tuple(c for c in COLUMNS[table] if c in names.get(table, set())) for table in tables
    }


def _projected(rows: list[tuple[object, ...]], table: str, kept: tuple[str, ...]) -> list[Any]:
    """`rows` cut to the `kept` columns; as they are when nothing is missing (the usual case)."""
    if kept == COLUMNS[table]:
        return rows
    positions = [COLUMNS[table].index(name) for name in kept]
    return [tuple(row[i] for i in positions) for row in rows]


async def copy_block(
    connection: asyncpg.Connection,
    block: Block,
    tables: tuple[str, ...] = TABLES,
    columns: dict[str, tuple[str, ...]] | None = None,
) -> None:
    for table in tables:
        rows = block.rows[table]
        if rows:
            kept = COLUMNS[table] if columns is None else columns[table]
            await connection.copy_records_to_table(
                table, records=_projected(rows, table, kept), columns=kept
            )


async def load_blocks(
    connection: asyncpg.Connection,
    blocks: Iterator[Block],
    on_block: Callable[[Block], None] | None = None,
    tables: tuple[str, ...] = TABLES,
    columns: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, int]:
    """COPY every block into `tables` (only `columns` of each, when given); return the number
    of rows stored per table."""
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
            pending = asyncio.create_task(copy_block(connection, block, tables, columns))
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


@dataclass(frozen=True)
class DeferredChecks:
    """Secondary indexes and foreign keys of the generated tables, set aside during a load.

    COPY into a table with a dozen indexes updates every one of them row by row, and checks
    each foreign key with a lookup per row; building an index once over the loaded rows and
    validating a foreign key with one join is several times cheaper (the PostgreSQL manual,
    "Populating a Database"). Primary keys and the constraints' own indexes stay.
    """

    indexes: tuple[tuple[str, str], ...]  # (name, CREATE INDEX …)
    foreign_keys: tuple[tuple[str, str, str], ...]  # (table, name, FOREIGN KEY … definition)


async def defer_checks(connection: asyncpg.Connection, tables: tuple[str, ...]) -> DeferredChecks:
    """Drop the secondary indexes and foreign keys of `tables` (in the caller's transaction:
    a failed load restores them with its rollback); `restore_checks` puts them back."""
    indexes = await connection.fetch(
        """
        SELECT index.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        JOIN pg_class tab ON tab.oid = i.indrelid
        JOIN pg_class index ON index.oid = i.indexrelid
        WHERE tab.relname = ANY($1::text[])
          AND tab.relnamespace = current_schema()::regnamespace
          AND NOT EXISTS (
            SELECT 1 FROM pg_constraint c
            WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
          )
        ORDER BY 1
        """,
        list(tables),
    )
    keys = await connection.fetch(
        """
        SELECT tab.relname AS table, c.conname AS name, pg_get_constraintdef(c.oid) AS definition
        FROM pg_constraint c JOIN pg_class tab ON tab.oid = c.conrelid
        WHERE c.contype = 'f' AND tab.relname = ANY($1::text[])
          AND tab.relnamespace = current_schema()::regnamespace
        ORDER BY 1, 2
        """,
        list(tables),
    )
    for key in keys:
        await connection.execute(f'ALTER TABLE "{key["table"]}" DROP CONSTRAINT "{key["name"]}"')
    for index in indexes:
        await connection.execute(f'DROP INDEX "{index["name"]}"')
    return DeferredChecks(
        tuple((row["name"], row["definition"]) for row in indexes),
        tuple((row["table"], row["name"], row["definition"]) for row in keys),
    )


async def restore_checks(connection: asyncpg.Connection, checks: DeferredChecks) -> None:
    """Build the indexes over the loaded rows, then add and validate the foreign keys."""
    await connection.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for _, definition in checks.indexes:
        await connection.execute(definition)
    for table, name, definition in checks.foreign_keys:
        await connection.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
