"""An import job that cannot run at all ends FAILED, never RUNNING for ever."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.seed.demo import DemoSummary
from api.settings import Settings
from api.worker import job_runtime
from bulk.jobs import create_job
from bulk.requests import Requester, requester_json
from db.models import ImportJob
from jobs.imports import run_import
from policy.decisions import AccessDecisions
from policy.principal import Principal, PrincipalKind
from policy.store import read_snapshot
from resolvers.context import RequestMeta


async def test_an_import_whose_upload_is_gone_fails_instead_of_staying_running(
    demo_settings: Settings, demo_engine: AsyncEngine, demo: DemoSummary
) -> None:
    runtime = job_runtime(demo_settings, demo_engine)
    principal = Principal(kind=PrincipalKind.USER, name="alice")
    async with runtime.sessions() as session, session.begin():
        snapshot = await read_snapshot(session, 1)
        job_id = await create_job(
            session,
            principal="alice",
            resource="customer",
            file_name="gone.csv",
            dry_run=True,
            total_rows=1,
            ignored_columns=[],
        )
        requester = Requester(principal, AccessDecisions(principal, snapshot), RequestMeta())
        await session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id)
            .values(upload_key="import-never-stored.csv", request={
                "requester": requester_json(requester), "mapping": None})
        )  # fmt: skip
    assert await run_import(runtime, job_id) is False
    async with runtime.sessions() as session:
        job = (await session.execute(select(ImportJob).where(ImportJob.id == job_id))).scalar_one()
    assert job.status == "FAILED" and job.finished_at is not None
    assert job.error is not None and "FileNotFoundError" in job.error
