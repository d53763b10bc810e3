"""The worker's side of the API package: its runtime from the settings, and the in-process
worker that `dossier serve` starts in each server process."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncEngine

from api.digest_keys import load_signing_key
from api.secrets import ConfigurationError
from api.settings import Settings
from bulk.runtime import BulkRuntime
from db.engine import create_engine, create_sessionmaker
from jobs.runtime import JobRuntime
from jobs.worker import run_worker, worker_name

log = logging.getLogger("dossier.jobs")


def digest_key(settings: Settings) -> Ed25519PrivateKey | None:
    try:
        return load_signing_key(settings)
    except ConfigurationError as error:
        log.warning("audit digests will not be signed: %s", error)
        return None


def job_runtime(settings: Settings, engine: AsyncEngine) -> JobRuntime:
    sessions = create_sessionmaker(engine)
    bulk = BulkRuntime(
        settings=settings.bulk,
        directory=settings.bulk.directory_under(settings.data_dir),
        sessions=sessions,
        cipher=settings.field_cipher,
    )
    return JobRuntime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        cipher=settings.field_cipher,
        bulk=bulk,
        digest_key=digest_key(settings),
    )


class InProcessWorker:
    """One worker on the server's event loop: the embedded setup needs no second command.

    Its jobs use an engine of their own, so a long export never holds a connection the
    requests' pool (and its `/metrics` gauges) counts on.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._engine: AsyncEngine | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        settings = self._settings
        assert settings.database_url is not None
        jobs = settings.worker.concurrency
        pool = dataclasses.replace(settings.pool, size=jobs + 1, max_overflow=jobs)
        self._engine = create_engine(settings.database_url, pool)
        runtime = job_runtime(self._settings, self._engine)
        self._task = asyncio.create_task(
            run_worker(
                self._settings,
                runtime,
                name=worker_name("serve"),
                install_signal_handlers=False,  # uvicorn owns the signals
            ),
            name="dossier-worker",
        )
        self._task.add_done_callback(_report_end)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the in-process worker stopped", exc_info=task.exception())
