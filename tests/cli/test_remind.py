"""`dossier remind` for cron: two processes at once, then a rerun, create each reminder once."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from db.engine import create_engine
from resolvers.reminders import REMINDER_LOCK_KEY, ReminderScheduler


async def _dossier(env: dict[str, str], *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from api.cli import main; main()", *args,
        env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode().strip()


async def _remind_processes(env: dict[str, str], at: str, count: int) -> list[str]:
    async def one() -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from api.cli import main; main()", "remind", "--at", at,
            env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode().strip()

    return list(await asyncio.gather(*(one() for _ in range(count))))


def _created(output: str) -> int:
    # "follow-ups 3, renewals 1, overdue payments 2", then the statuses the pass changed
    tasks, statuses = output.splitlines()
    assert statuses.startswith("statuses: payments OVERDUE "), output
    return sum(int(part.split()[-1]) for part in tasks.split(","))


async def test_two_remind_processes_at_once_then_a_rerun_create_each_task_once(
    cli_env: dict[str, str], empty_database_url: str
) -> None:
    await _dossier(cli_env, "seed", "--customers", "200")
    at = (datetime.now(UTC) + timedelta(days=40)).isoformat()  # new follow-ups and renewals due
    lines = await _remind_processes(cli_env, at, 2)
    assert sum(_created(line) for line in lines) > 0, lines
    # after the race, and after a "restart": nothing more to create, no source twice
    (again,) = await _remind_processes(cli_env, at, 1)
    assert _created(again) == 0, again
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as c:
            twice = (await c.execute(text(
                "SELECT count(*) FROM (SELECT kind, source_id FROM tasks WHERE source_id IS NOT "
                "NULL GROUP BY 1, 2 HAVING count(*) > 1) d"))).scalar_one()  # fmt: skip
            system = (await c.execute(text(
                "SELECT coalesce(sum(cardinality(resource_ids)), 0) FROM audit_events "
                "WHERE actor = 'system:reminders'"))).scalar_one()  # fmt: skip
        assert twice == 0
        assert system == sum(_created(line) for line in lines)  # every task audited once

        # inside `serve`: of two schedulers only one holds the leader's lock
        schedulers = [ReminderScheduler(engine, 3600) for _ in range(2)]
        for scheduler in schedulers:
            await scheduler.start()
        for _ in range(100):
            if any(s.is_leader for s in schedulers):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert sorted(s.is_leader for s in schedulers) == [False, True]
        for scheduler in schedulers:
            await scheduler.stop()
        async with engine.connect() as c:  # the leader's lock went with its connection
            taken = await c.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": REMINDER_LOCK_KEY}
            )
            assert taken.scalar_one() is True
            await c.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REMINDER_LOCK_KEY})
    finally:
        await engine.dispose()
