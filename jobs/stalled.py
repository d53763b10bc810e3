"""Periodic: jobs held by a worker that stopped beating (killed, host lost) are queued again.

A worker beats every `heartbeat_seconds`; one silent for `stalled_seconds` is taken for dead.
Its `doing` jobs go back to `todo` and run again on a live worker; the jobs themselves are
written to be run again (`jobs.exports` restarts its file, `jobs.imports` resumes after the
last committed batch).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from procrastinate import App, JobContext

if TYPE_CHECKING:
    from jobs.settings import JobSettings

log = logging.getLogger("dossier.jobs.stalled")
TASK = "dossier.retry_stalled"


def register(app: App, settings: JobSettings) -> None:
    seconds = settings.worker.stalled_seconds

    @app.periodic(cron=settings.worker.stalled_check_cron)
    @app.task(name=TASK, pass_context=True, queueing_lock=TASK, lock=TASK)
    async def retry_stalled(context: JobContext, timestamp: int) -> None:
        manager = context.app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
            if job.task_name == TASK:
                continue
            log.warning("retrying job %s (%s) of a stalled worker", job.id, job.task_name)
            await manager.retry_job(job)
