"""How workers run and when periodic jobs fall due, read once from `DOSSIER_WORKER_*` and
`DOSSIER_*_CRON` (on `Settings.worker`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from croniter import croniter  # type: ignore[import-untyped]  # procrastinate's cron parser


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """Worker behaviour and periodic schedules (cron, with an optional 6th field for seconds).

    `inprocess`: `dossier serve` runs one worker inside each server process unless
    `DOSSIER_INPROCESS_WORKER=0`. A worker beats every `heartbeat_seconds`; one silent for
    `stalled_seconds` is taken for dead, and the jobs it held are retried by the periodic
    `jobs.stalled` (every `stalled_check_cron`). `concurrency` jobs run at once per worker.
    """

    inprocess: bool = True
    concurrency: int = 4
    heartbeat_seconds: float = 10.0
    stalled_seconds: float = 30.0
    stalled_check_cron: str = "* * * * * */15"
    digest_cron: str = "*/10 * * * *"
    expiry_cron: str = "* * * * *"
    insight_cron: str = "*/5 * * * *"

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("DOSSIER_WORKER_CONCURRENCY must be at least 1")
        if self.stalled_seconds <= self.heartbeat_seconds:
            raise ValueError("DOSSIER_WORKER_STALLED_SECONDS must exceed the heartbeat interval")
        for name in ("stalled_check_cron", "digest_cron", "expiry_cron", "insight_cron"):
            value = getattr(self, name)
            if value and not croniter.is_valid(value):
                raise ValueError(f"{name}: {value!r} is not a cron expression")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSettings:
        defaults = cls()
        return cls(
            inprocess=environ.get("DOSSIER_INPROCESS_WORKER", "1") not in ("0", "false", "no"),
            concurrency=int(environ.get("DOSSIER_WORKER_CONCURRENCY", defaults.concurrency)),
            heartbeat_seconds=float(
                environ.get("DOSSIER_WORKER_HEARTBEAT_SECONDS", defaults.heartbeat_seconds)
            ),
            stalled_seconds=float(
                environ.get("DOSSIER_WORKER_STALLED_SECONDS", defaults.stalled_seconds)
            ),
            stalled_check_cron=environ.get(
                "DOSSIER_STALLED_CHECK_CRON", defaults.stalled_check_cron
            ),
            digest_cron=environ.get("DOSSIER_DIGEST_CRON", defaults.digest_cron),
            expiry_cron=environ.get("DOSSIER_EXPORT_EXPIRY_CRON", defaults.expiry_cron),
            insight_cron=environ.get("DOSSIER_INSIGHT_CRON", defaults.insight_cron),
        )


class JobSettings(Protocol):
    """What the jobs read of the application's settings (`api.settings.Settings` is one):
    the jobs sit below the API and name only this."""

    @property
    def worker(self) -> WorkerSettings: ...

    @property
    def database_url(self) -> str | None: ...

    @property
    def insight_refresh_seconds(self) -> float: ...
