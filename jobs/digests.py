"""Periodic: sign a digest of the audit chain head, once per period across every worker.

Before, digests were signed only by `dossier audit digest` from someone's cron. The signing
key comes from `DOSSIER_AUDIT_SIGNING_KEY` (outside production, generated once beside the
other dev secrets, as the CLI does); a worker without a key signs nothing and says so.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from procrastinate import App, JobContext

from audit.digests import sign_digest
from jobs.runtime import runtime_of

if TYPE_CHECKING:
    from jobs.settings import JobSettings

log = logging.getLogger("dossier.jobs.digests")
TASK = "dossier.sign_digest"


def register(app: App, settings: JobSettings) -> None:
    if not settings.worker.digest_cron:
        return

    @app.periodic(cron=settings.worker.digest_cron)
    @app.task(name=TASK, pass_context=True, queueing_lock=TASK, lock=TASK)
    async def sign(context: JobContext, timestamp: int) -> None:
        runtime = runtime_of(context)
        if runtime.digest_key is None:
            log.warning("no DOSSIER_AUDIT_SIGNING_KEY: audit digest not signed")
            return
        async with runtime.sessions() as session, session.begin():
            signed = await sign_digest(session, runtime.digest_key)
        log.info("audit digest signed at seq %s", signed.head_seq)
