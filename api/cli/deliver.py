"""`dossier deliver`: a webhook delivery worker, alone in its process.

Start as many as the load needs, beside or instead of the workers inside `dossier serve`: they
share the work through PostgreSQL (`events.delivery`), never sending one delivery twice at once.
"""

from __future__ import annotations

import asyncio
import signal

import click

from api.cli.runtime import database_url, resolve_settings, run
from api.root_schema import build_schema
from db.engine import create_engine, create_sessionmaker, plain_url
from events.runtime import start_events
from policy.store import PolicyStore


async def deliver_until_stopped(url: str, once: bool) -> int:
    settings = resolve_settings()
    engine = create_engine(url, settings.pool)
    sessions = create_sessionmaker(engine)
    listen = plain_url(settings.listen_database_url or url)
    store = PolicyStore(sessions, listen_dsn=listen)
    await store.start()
    schema = build_schema()
    runtime = await start_events(
        webhooks=settings.webhooks, cipher=settings.field_cipher,
        sessions=sessions, listen_dsn=listen, schema=schema, store=store,
        deliver=not once,
    )  # fmt: skip
    done = 0
    try:
        if once:
            from events.delivery import DeliveryWorker

            worker = DeliveryWorker(
                sessions=sessions, settings=settings.webhooks, cipher=settings.field_cipher,
                schema=schema, store=store,
            )  # fmt: skip
            while count := await worker.run_once():
                done += count
            await worker.stop()
        else:
            stopping = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stopping.set)
            click.echo("delivering webhooks; Ctrl-C stops", err=True)
            await stopping.wait()
    finally:
        await runtime.stop()
        await store.stop()
        await engine.dispose()
    return done


@click.command()
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def deliver(once: bool) -> None:
    """Run a webhook delivery worker until stopped (SIGINT/SIGTERM)."""
    settings = resolve_settings()
    done = run(deliver_until_stopped(database_url(settings), once))
    if once:
        click.echo(f"{done} deliveries attempted")
