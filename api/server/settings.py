"""Connection limits of one server process, read once from `DOSSIER_*` variables.

| variable | default | what it bounds |
| --- | --- | --- |
| DOSSIER_KEEPALIVE_SECONDS | 5 | an idle keep-alive connection between requests |
| DOSSIER_HEADER_TIMEOUT_SECONDS | 10 | connecting (or the last answer) to complete headers |
| DOSSIER_BODY_TIMEOUT_SECONDS | 30 | a wait for the next part of a request body |
| DOSSIER_MAX_CONNECTIONS | 900 | open connections per process; past it the oldest idle is closed |
| DOSSIER_MAX_CONCURRENCY | 200 | requests in progress per process; past it 503 UNAVAILABLE |
| DOSSIER_MAX_HEADER_BYTES | 16384 | request line and headers of one request |
| DOSSIER_BACKLOG | 2048 | connections the kernel queues before the server accepts them |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache

from api.secrets import ConfigurationError


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    keepalive_seconds: float = 5.0
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_connections: int = 900  # below the usual 1 024 descriptors, with room for the pool
    max_concurrency: int = 200
    max_header_bytes: int = 16 * 1024
    backlog: int = 2048

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServerLimits:
        values: dict[str, float | int] = {}
        for item in fields(cls):
            name = "DOSSIER_" + item.name.upper().removesuffix("_SECONDS")
            if item.name.endswith("_seconds"):
                name += "_SECONDS"
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            kind = float if item.name.endswith("_seconds") else int
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
            if value <= 0:
                raise ConfigurationError(f"{name} must be > 0")
            values[item.name] = value
        return cls(**values)  # type: ignore[arg-type]  # each value has its field's type


@cache
def server_limits() -> ServerLimits:
    """This process's limits: server worker processes read the same environment."""
    return ServerLimits.from_env(os.environ)
