"""Defer a procrastinate job inside the caller's transaction: the job exists iff the data does.

procrastinate's own `defer_async` goes through its connector's connection, a transaction of
its own. An export job row and the job that runs it must commit together (a job for a row
that was rolled back, or a row no job will ever run, would both be lost work), so the row and
the job are written by one SQLAlchemy session, calling the same SQL function procrastinate
calls (`procrastinate_defer_jobs_v1`, migration 0010).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

DEFAULT_QUEUE = "default"

_DEFER = text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW("
    "CAST(:queue AS varchar), CAST(:task AS varchar), 0, CAST(:lock AS text), "
    "CAST(:queueing_lock AS text), CAST(:args AS jsonb), NULL::timestamptz"
    ")::procrastinate_job_to_defer_v1])) AS id"
)


async def defer_job(
    session: AsyncSession,
    task_name: str,
    args: dict[str, Any],
    *,
    lock: str | None = None,
    queueing_lock: str | None = None,
    queue: str = DEFAULT_QUEUE,
) -> int:
    """Queue `task_name(**args)`; the job id. Workers see it once the caller commits."""
    found = await session.execute(
        _DEFER,
        {
            "queue": queue,
            "task": task_name,
            "lock": lock,
            "queueing_lock": queueing_lock,
            "args": orjson.dumps(args).decode(),
        },
    )
    return int(found.scalar_one())
