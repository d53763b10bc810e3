"""Periodic: refresh the insight snapshots when due (`DOSSIER_INSIGHT_REFRESH_SECONDS`).

The job runs on `insight_cron` and refreshes only snapshots older than the refresh interval
(`SnapshotRefresher.due_in`), under the refresher's advisory lock; 0 seconds turns it off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from procrastinate import App, JobContext

from insights.snapshots import SnapshotRefresher
from jobs.runtime import runtime_of

if TYPE_CHECKING:
    from jobs.settings import JobSettings

TASK = "dossier.refresh_insights"


def register(app: App, settings: JobSettings) -> None:
    interval = settings.insight_refresh_seconds
    if interval <= 0 or not settings.worker.insight_cron:
        return

    @app.periodic(cron=settings.worker.insight_cron)
    @app.task(name=TASK, pass_context=True, queueing_lock=TASK, lock=TASK)
    async def refresh(context: JobContext, timestamp: int) -> None:
        refresher = SnapshotRefresher(runtime_of(context).engine, interval)
        if await refresher.due_in() <= 0:
            await refresher.refresh_once()
