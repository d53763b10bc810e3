"""All configuration in one frozen object, read once from `DOSSIER_*` and `DATABASE_URL`."""

from __future__ import annotations

import binascii
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from platformdirs import user_data_dir

from api.auth_settings import AuthSettings
from api.hardening.settings import HardeningSettings
from api.logs import log_level_from
from api.ops_settings import OpsSettings, ops_settings_from
from api.secrets import ConfigurationError, SecretSource, raise_problems, random_secret
from api.server.settings import ServerLimits
from bulk.settings import BulkSettings
from db.crypto import FieldCipher, new_key, parse_key_ring
from db.engine import PoolOptions
from db.replicas import ReplicaSettings
from events.settings import WebhookSettings
from insights.settings import InsightSettings
from jobs.settings import WorkerSettings

ENVIRONMENTS = ("dev", "test", "prod")
T = TypeVar("T")


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
    ops: OpsSettings = OpsSettings()  # trusted proxies, /metrics token (api.ops_settings)
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
            environ, production=env == "prod", store=data_dir / "dev-secrets.json", collect=True
        )
        problems: list[str] = []

        def checked(build: Callable[[], T]) -> T:
            # every section is read even after one fails, so all problems are told at once
            try:
                return build()
            except ConfigurationError as error:
                problems.append(str(error))
                return None  # type: ignore[return-value]  # refused below, never used

        field_cipher = checked(lambda: field_cipher_from(environ, secrets))
        auth = checked(lambda: AuthSettings.from_env(environ, secrets))
        log_level = checked(lambda: log_level_from(environ))
        ops = checked(lambda: ops_settings_from(environ))
        raise_problems(secrets.problems + problems)
        return cls(
            env=env,
            database_url=environ.get("DATABASE_URL") or None,
            listen_database_url=environ.get("DOSSIER_LISTEN_DATABASE_URL") or None,
            data_dir=data_dir,
            field_cipher=field_cipher,
            auth=auth,
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
            log_level=log_level,
            ops=ops,
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
    ring = field_key_ring(ring_spec)
    active = environ.get("DOSSIER_FIELD_KEY_ACTIVE") or next(iter(ring))
    if active not in ring:
        raise ConfigurationError(f"DOSSIER_FIELD_KEY_ACTIVE names unknown key {active!r}")
    blind = secrets.get("DOSSIER_BLIND_INDEX_KEY", generate=random_secret)
    return FieldCipher(keys=ring, active_key_id=active, blind_index_key=blind.encode())


FIELD_KEYS_FORM = "id:base64key[,id:base64key…] with 32-byte keys (`dossier keys generate`)"


def field_key_ring(spec: str) -> dict[str, bytes]:
    """The ring of DOSSIER_FIELD_KEYS; raises ConfigurationError naming the variable."""
    try:
        ring = parse_key_ring(spec)
    except (ValueError, binascii.Error) as error:  # FieldKeyError is a ValueError
        raise ConfigurationError(
            f"DOSSIER_FIELD_KEYS is malformed ({error}): expected {FIELD_KEYS_FORM}"
        ) from None
    short = [key_id for key_id, key in ring.items() if len(key) not in (16, 24, 32)]
    if short:
        raise ConfigurationError(
            f"DOSSIER_FIELD_KEYS key {short[0]!r} is not an AES key (16, 24 or 32 bytes): "
            f"expected {FIELD_KEYS_FORM}"
        )
    return ring
