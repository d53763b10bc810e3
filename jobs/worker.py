"""Run one procrastinate worker with Dossier's jobs until cancelled or signalled."""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

from jobs.app import build_app
from jobs.runtime import JobRuntime

if TYPE_CHECKING:
    from jobs.settings import JobSettings

log = logging.getLogger("dossier.jobs")


def worker_name(role: str) -> str:
    """`worker@host:pid`: which process ran a job, in procrastinate's logs."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


async def run_worker(
    settings: JobSettings,
    runtime: JobRuntime,
    *,
    name: str,
    install_signal_handlers: bool = True,
) -> None:
    """Take jobs until stopped; the periodic jobs are deferred by every worker alike, and
    procrastinate keeps one per period."""
    options = settings.worker
    app = build_app(settings, pool_size=options.concurrency + 2)
    async with app.open_async():
        log.info("worker %s started", name)
        await app.run_worker_async(
            name=name,
            concurrency=options.concurrency,
            update_heartbeat_interval=options.heartbeat_seconds,
            stalled_worker_timeout=options.stalled_seconds,
            additional_context={"runtime": runtime},
            install_signal_handlers=install_signal_handlers,
            delete_jobs="successful",
            shutdown_graceful_timeout=30,
        )
