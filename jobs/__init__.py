"""Background jobs: durable, retried, and periodic jobs run by exactly one worker across hosts.

Built on procrastinate (PostgreSQL: `procrastinate_jobs`, migration 0010). `dossier worker`
runs a worker; `dossier serve` runs one inside each server process unless
`DOSSIER_INPROCESS_WORKER=0`, so the embedded setup stays one command.

app        build_app: the procrastinate App with every module of JOB_MODULES registered
runtime    JobRuntime: what tasks need (engine, sessions, cipher, bulk runtime, signing key)
worker     run_worker: one worker until cancelled or signalled
settings   WorkerSettings: concurrency, heartbeat, stalled timeout, periodic schedules
exports    a large export, written under the requester's decisions (bulk)
imports    an import, committed in batches and resumed where the last batch committed
stalled    periodic: jobs of workers that stopped beating are queued again
digests    periodic: sign a digest of the audit chain head (audit.digests)
snapshots  periodic: refresh the insight snapshots (insights.snapshots)
expiry     periodic: delete export files that expired or were downloaded

Adding a job. Write one module here with `register(app, settings)` that declares its task(s)
on `app` with an explicit `name="dossier.<job>"`, and list the module in
`jobs.app.JOB_MODULES`. Tasks take `pass_context=True` and find the `JobRuntime` in
`context.additional_context["runtime"]`. A periodic job is

    @app.periodic(cron=settings.worker.<your>_cron)
    @app.task(name="dossier.reminders", pass_context=True,
              queueing_lock="dossier.reminders", lock="dossier.reminders")
    async def send_reminders(context: JobContext, timestamp: int) -> None: ...

procrastinate defers one job per period however many workers run (a unique row per task and
period in `procrastinate_periodic_defers`); `queueing_lock` keeps a second from being queued
while one waits, and `lock` keeps two from running at once. Make the job idempotent: after a
worker dies it is retried (`jobs.stalled`). To queue a job in the same transaction as the data
it acts on, use `db.job_queue.defer_job(session, "dossier.<job>", {...})`.
"""
