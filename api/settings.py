"""All configuration in one frozen object, read once from `DOSSIER_*` and `DATABASE_URL`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir

from api.auth.settings import AuthSettings
from api.hardening.settings import HardeningSettings
from api.secrets import ConfigurationError, SecretSource, random_secret
from api.server.settings import ServerLimits
from db.crypto import FieldCipher, new_key, parse_key_ring
from db.engine import PoolOptions
from db.replicas import ReplicaSettings
from events.settings import WebhookSettings
from jobs.settings import WorkerSettings
from resolvers.bulk.settings import BulkSettings
from resolvers.insights.settings import InsightSettings

ENVIRONMENTS = ("dev", "test", "prod")


@dataclass(frozen=True, kw_only=True)
class LimitSettings:
    """Bounds on what one request may ask for."""

    max_page_size: int = 500
    default_page_size: int = 50


@dataclass(frozen=True, kw_only=True)
class Settings:
    env: str = "dev"
    database_url: str | None = None
    # LISTEN needs a session-level connection: behind PgBouncer in transaction mode, point this
    # at the server itself (or a session-mode pool); defaults to DATABASE_URL
    listen_database_url: str | None = None
    data_dir: Path
    field_cipher: FieldCipher = field(repr=False)
    auth: AuthSettings = field(repr=False)
    pool: PoolOptions = PoolOptions()
    limits: LimitSettings = LimitSettings()
    insights: InsightSettings = InsightSettings()  # SLA hours, silence and churn thresholds
    hardening: HardeningSettings = HardeningSettings()
    bulk: BulkSettings = BulkSettings()
    worker: WorkerSettings = WorkerSettings()  # background jobs (jobs/)
    log_level: str = "INFO"
    insight_refresh_seconds: float = 300.0  # 0: never refresh the insight snapshots
    audit_index_seconds: float = 1.0  # 0: no background audit resource indexer
    webhooks: WebhookSettings = WebhookSettings()  # events.delivery
    # limits shared by every process and host (api.hardening.shared_limits); None: in-process
    redis_url: str | None = None
    redis_prefix: str = "dossier"
    replicas: ReplicaSettings = ReplicaSettings()  # db.replicas; no URLs: all on the primary
    server: ServerLimits = ServerLimits()  # connection timeouts and caps (api.server)
    reminder_seconds: float = 300.0  # 0: no reminder pass inside the server (cron: `remind`)

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def is_production(self) -> bool:
        return self.env == "prod"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        env = environ.get("DOSSIER_ENV", "dev")
        if env not in ENVIRONMENTS:
            raise ConfigurationError(f"DOSSIER_ENV must be one of {', '.join(ENVIRONMENTS)}")
        data_dir = Path(environ.get("DOSSIER_DATA_DIR") or user_data_dir("dossier"))
        secrets = SecretSource(
            environ, production=env == "prod", store=data_dir / "dev-secrets.json"
        )
        return cls(
            env=env,
            database_url=environ.get("DATABASE_URL") or None,
            listen_database_url=environ.get("DOSSIER_LISTEN_DATABASE_URL") or None,
            data_dir=data_dir,
            field_cipher=field_cipher_from(environ, secrets),
            auth=AuthSettings.from_env(environ, secrets),
            pool=PoolOptions(
                size=int(environ.get("DOSSIER_DB_POOL_SIZE", "10")),
                max_overflow=int(environ.get("DOSSIER_DB_MAX_OVERFLOW", "5")),
                statement_timeout_ms=int(environ.get("DOSSIER_DB_STATEMENT_TIMEOUT_MS", "15000")),
                idle_in_transaction_timeout_ms=int(
                    environ.get("DOSSIER_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", "30000")
                ),
                prepared_statement_cache_size=int(
                    environ.get("DOSSIER_DB_PREPARED_STATEMENT_CACHE", "256")
                ),
            ),
            log_level=environ.get("DOSSIER_LOG_LEVEL", "INFO"),
            insight_refresh_seconds=float(environ.get("DOSSIER_INSIGHT_REFRESH_SECONDS", "300")),
            audit_index_seconds=float(environ.get("DOSSIER_AUDIT_INDEX_SECONDS", "1")),
            reminder_seconds=float(environ.get("DOSSIER_REMINDER_SECONDS", "300")),
            hardening=HardeningSettings.from_env(environ),
            bulk=BulkSettings.from_env(environ),
            worker=WorkerSettings.from_env(environ),
            insights=InsightSettings.from_env(environ),
            webhooks=WebhookSettings.from_env(environ),
            redis_url=environ.get("DOSSIER_REDIS_URL") or None,
            redis_prefix=environ.get("DOSSIER_REDIS_PREFIX") or "dossier",
            replicas=replica_settings_from(environ),
            server=ServerLimits.from_env(environ),
        )


def replica_settings_from(environ: Mapping[str, str]) -> ReplicaSettings:
    urls = tuple(u.strip() for u in environ.get("DOSSIER_REPLICA_URLS", "").split(",") if u.strip())
    try:
        return ReplicaSettings(
            urls=urls,
            max_lag_seconds=float(environ.get("DOSSIER_REPLICA_MAX_LAG_SECONDS", "5")),
            check_seconds=float(environ.get("DOSSIER_REPLICA_CHECK_SECONDS", "1")),
            read_your_writes_seconds=float(
                environ.get("DOSSIER_REPLICA_READ_YOUR_WRITES_SECONDS", "10")
            ),
        )
    except ValueError as exc:
        raise ConfigurationError(f"DOSSIER_REPLICA_* must be numbers: {exc}") from None


def field_cipher_from(environ: Mapping[str, str], secrets: SecretSource) -> FieldCipher:
    ring_spec = secrets.get("DOSSIER_FIELD_KEYS", generate=lambda: f"k1:{new_key()}")
    ring = parse_key_ring(ring_spec)
    active = environ.get("DOSSIER_FIELD_KEY_ACTIVE") or next(iter(ring))
    if active not in ring:
        raise ConfigurationError(f"DOSSIER_FIELD_KEY_ACTIVE names unknown key {active!r}")
    blind = secrets.get("DOSSIER_BLIND_INDEX_KEY", generate=random_secret)
    return FieldCipher(keys=ring, active_key_id=active, blind_index_key=blind.encode())
