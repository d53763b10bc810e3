"""Periodic: delete export files that expired or were downloaded, and their records.

The request path sweeps too (before each export), but a host that exports nothing would keep
expired files for ever: this job makes expiry independent of traffic.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from procrastinate import App, JobContext

from audit.chain import append_events
from audit.events import AuditRecord
from bulk.downloads import sweep_expired
from jobs.runtime import runtime_of

if TYPE_CHECKING:
    from jobs.settings import JobSettings

log = logging.getLogger("dossier.jobs.expiry")
TASK = "dossier.expire_exports"


def register(app: App, settings: JobSettings) -> None:
    @app.periodic(cron=settings.worker.expiry_cron)
    @app.task(name=TASK, pass_context=True, queueing_lock=TASK, lock=TASK)
    async def expire(context: JobContext, timestamp: int) -> None:
        runtime = runtime_of(context)
        async with runtime.sessions() as session, session.begin():
            expired: list[AuditRecord] = []  # expiry is itself in the trail, same transaction
            removed = await sweep_expired(session, runtime.bulk.objects, expired)
            if expired:
                await append_events(session, expired)
        if removed:
            log.info("%d expired export files deleted", removed)
