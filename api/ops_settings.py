"""Settings of the operations surface: forwarded client addresses, `/metrics`, tracing.

- `DOSSIER_TRUSTED_PROXIES`: comma-separated addresses or CIDR networks of the proxies in front
  of the server. Only a connection from one of them has its `X-Forwarded-For` (and
  `X-Forwarded-Proto`) honoured, so the audit trail and the per-address throttles see the real
  client; unset, forwarded headers are ignored (anyone could write them).
- `DOSSIER_METRICS_TOKEN`: `/metrics` then needs `Authorization: Bearer <token>`. In production
  `/metrics` is refused (403) until it is set.
- `DOSSIER_METRICS_REFRESH_SECONDS` (default 15): how often the gauges read from the database
  (the audit chain length) are refreshed in the background; a scrape never queries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from api.secrets import ConfigurationError


@dataclass(frozen=True, kw_only=True)
class OpsSettings:
    trusted_proxies: tuple[str, ...] = ()
    metrics_token: str | None = field(default=None, repr=False)
    metrics_refresh_seconds: float = 15.0


def parse_trusted_proxies(spec: str) -> tuple[str, ...]:
    """The entries of DOSSIER_TRUSTED_PROXIES, each checked; raises ConfigurationError naming it."""
    entries = tuple(item.strip() for item in spec.split(",") if item.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigurationError(
                f"DOSSIER_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network"
            ) from None
    return entries


def ops_settings_from(environ: Mapping[str, str]) -> OpsSettings:
    """Raises ConfigurationError naming the variable when one is unusable."""
    refresh = environ.get("DOSSIER_METRICS_REFRESH_SECONDS", "15")
    try:
        seconds = float(refresh)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigurationError(
            "DOSSIER_METRICS_REFRESH_SECONDS must be a positive number of seconds"
        )
    return OpsSettings(
        trusted_proxies=parse_trusted_proxies(environ.get("DOSSIER_TRUSTED_PROXIES", "")),
        metrics_token=environ.get("DOSSIER_METRICS_TOKEN") or None,
        metrics_refresh_seconds=seconds,
    )
