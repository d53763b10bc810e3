"""Settings of webhook delivery (CONTRACT.md, "Settings added")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class WebhookSettings:
    # DOSSIER_WEBHOOK_ALLOW_PRIVATE=1: webhooks may target loopback and private addresses
    allow_private: bool = False
    max_attempts: int = 8  # then the delivery is DEAD (dead-lettered) and the endpoint moves on
    retry_base_seconds: float = 5.0  # attempt n waits base * 2**(n-1), at most a day
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    max_response_bytes: int = 64 * 1024  # read no more of a receiver's answer than this
    poll_seconds: float = 1.0  # how often an idle worker looks for due retries
    batch_size: int = 32  # deliveries one worker claims at once (one per endpoint)
    deliver_in_serve: bool = True  # `dossier serve` runs a delivery worker in each process

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WebhookSettings:
        return cls(
            allow_private=environ.get("DOSSIER_WEBHOOK_ALLOW_PRIVATE", "") == "1",
            max_attempts=max(1, int(environ.get("DOSSIER_WEBHOOK_MAX_ATTEMPTS", "8"))),
            retry_base_seconds=float(environ.get("DOSSIER_WEBHOOK_RETRY_SECONDS", "5")),
            connect_timeout_seconds=float(environ.get("DOSSIER_WEBHOOK_CONNECT_TIMEOUT", "5")),
            read_timeout_seconds=float(environ.get("DOSSIER_WEBHOOK_READ_TIMEOUT", "10")),
            max_response_bytes=int(environ.get("DOSSIER_WEBHOOK_MAX_RESPONSE_BYTES", "65536")),
            poll_seconds=float(environ.get("DOSSIER_WEBHOOK_POLL_SECONDS", "1")),
            deliver_in_serve=environ.get("DOSSIER_WEBHOOK_DELIVER", "1") != "0",
        )
