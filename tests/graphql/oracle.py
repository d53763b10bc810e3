"""Direct SQL answers to compare responses against: what each demo user should see."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


async def customer_ids(engine: AsyncEngine, where: str = "true", **params: Any) -> set[str]:
    found = await rows(
        engine,
        f"SELECT id FROM customers WHERE archived_at IS NULL AND {where}",  # noqa: S608  # test-authored clause
        **params,
    )
    return {to_global_id("Customer", r.id) for r in found}


async def department_id(engine: AsyncEngine, name: str) -> int:
    return int((await rows(engine, "SELECT id FROM departments WHERE name = :n", n=name))[0].id)


async def user_id(engine: AsyncEngine, username: str) -> int:
    return int((await rows(engine, "SELECT id FROM users WHERE username = :u", u=username))[0].id)
