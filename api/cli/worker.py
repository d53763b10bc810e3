"""`dossier worker`: run background jobs (exports, imports, digests, insight refreshes)."""

from __future__ import annotations

import dataclasses
import logging
import os

import click

from api.cli.runtime import database_url, resolve_settings, run
from api.settings import Settings
from api.worker import job_runtime
from db.engine import create_engine
from jobs.worker import run_worker, worker_name


async def _work(settings: Settings) -> None:
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, settings.pool)
    try:
        await run_worker(settings, job_runtime(settings, engine), name=worker_name("worker"))
    finally:
        await engine.dispose()


@click.command()
@click.option("--concurrency", type=click.IntRange(min=1), help="Jobs run at once.")
def worker(concurrency: int | None) -> None:
    """Run background jobs until SIGINT or SIGTERM.

    Any number of workers, on any hosts, may share one database: each job runs once, and each
    periodic job once per period. A worker killed mid-job has its job retried elsewhere once
    it stops beating (DOSSIER_WORKER_STALLED_SECONDS).
    """
    if concurrency is not None:
        os.environ["DOSSIER_WORKER_CONCURRENCY"] = str(concurrency)
    settings = resolve_settings()
    logging.basicConfig(level=settings.log_level)
    # the embedded database, when DATABASE_URL is unset, as `dossier serve` finds it
    settings = dataclasses.replace(settings, database_url=database_url(settings))
    run(_work(settings))
