"""Every hardening limit, read once from `DOSSIER_*` variables, with defaults safe for production.

| variable | default | what it bounds |
| --- | --- | --- |
| DOSSIER_MAX_QUERY_DEPTH | 10 | nesting of fields in one operation |
| DOSSIER_MAX_QUERY_ALIASES | 30 | aliased fields, counted after fragments are expanded |
| DOSSIER_MAX_QUERY_TOKENS | 2000 | lexical tokens of the query text (counted before parsing) |
| DOSSIER_MAX_QUERY_FIELDS | 500 | field selections after fragments are expanded |
| DOSSIER_MAX_QUERY_COST | 500000 | field values the response may hold (`first` multiplied down) |
| DOSSIER_MAX_BODY_BYTES | 262144 | request body of any request except uploads |
| DOSSIER_MAX_UPLOAD_BYTES | 67108864 | `multipart/form-data` request body (bulk imports) |
| DOSSIER_EXECUTION_TIMEOUT_SECONDS | 10 | wall time of one GraphQL execution |
| DOSSIER_RATE_USER_BURST / _PER_SECOND | 200 / 20 | GraphQL requests per user |
| DOSSIER_RATE_PARTNER_BURST / _PER_SECOND | 50 / 5 | GraphQL requests per partner token |
| DOSSIER_RATE_MAX_TRACKED | 100000 | principals whose buckets are kept in memory |
| DOSSIER_COST_BUDGET / _SECONDS | 50000000 / 60 | query cost per principal per window (0: none) |
| DOSSIER_CORS_ORIGINS | (none) | comma-separated origins allowed to call from a browser |
| DOSSIER_HSTS_SECONDS | 31536000 in prod, else 0 | `Strict-Transport-Security` max-age |

Introspection, GraphiQL and field suggestions ("Did you mean …") follow `DOSSIER_ENV`: on only
in `dev`, and introspection never for partner tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from api.secrets import ConfigurationError


@dataclass(frozen=True, kw_only=True)
class RateBudget:
    """A token bucket: `burst` requests at once, refilled at `per_second`."""

    burst: int
    per_second: float


@dataclass(frozen=True, kw_only=True)
class HardeningSettings:
    """Bounds on what one request, and one principal over time, may ask of the server."""

    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    max_fields: int = 500
    max_cost: int = 500_000
    max_body_bytes: int = 256 * 1024
    max_upload_bytes: int = 64 * 1024 * 1024
    execution_timeout_seconds: float = 10.0
    user_rate: RateBudget = RateBudget(burst=200, per_second=20.0)
    partner_rate: RateBudget = RateBudget(burst=50, per_second=5.0)
    rate_max_tracked: int = 100_000
    cost_budget: int = 50_000_000  # 100 operations of the largest cost a minute; 0: no budget
    cost_budget_seconds: int = 60
    cors_origins: tuple[str, ...] = ()
    hsts_seconds: int = 0
    # dev-only conveniences; both follow DOSSIER_ENV
    introspection: bool = False
    field_suggestions: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HardeningSettings:
        env = environ.get("DOSSIER_ENV", "dev")
        dev, prod = env == "dev", env == "prod"
        origins = tuple(
            o.strip().rstrip("/") for o in environ.get("DOSSIER_CORS_ORIGINS", "").split(",")
        )
        origins = tuple(o for o in origins if o)
        if prod and "*" in origins:
            raise ConfigurationError("DOSSIER_CORS_ORIGINS must list origins in production, not *")
        return cls(
            max_depth=_positive_int(environ, "DOSSIER_MAX_QUERY_DEPTH", 10),
            max_aliases=_positive_int(environ, "DOSSIER_MAX_QUERY_ALIASES", 30, allow_zero=True),
            max_tokens=_positive_int(environ, "DOSSIER_MAX_QUERY_TOKENS", 2000),
            max_fields=_positive_int(environ, "DOSSIER_MAX_QUERY_FIELDS", 500),
            max_cost=_positive_int(environ, "DOSSIER_MAX_QUERY_COST", 500_000),
            max_body_bytes=_positive_int(environ, "DOSSIER_MAX_BODY_BYTES", 256 * 1024),
            max_upload_bytes=_positive_int(environ, "DOSSIER_MAX_UPLOAD_BYTES", 64 * 1024 * 1024),
            execution_timeout_seconds=_positive_float(
                environ, "DOSSIER_EXECUTION_TIMEOUT_SECONDS", 10.0
            ),
            user_rate=RateBudget(
                burst=_positive_int(environ, "DOSSIER_RATE_USER_BURST", 200),
                per_second=_positive_float(environ, "DOSSIER_RATE_USER_PER_SECOND", 20.0),
            ),
            partner_rate=RateBudget(
                burst=_positive_int(environ, "DOSSIER_RATE_PARTNER_BURST", 50),
                per_second=_positive_float(environ, "DOSSIER_RATE_PARTNER_PER_SECOND", 5.0),
            ),
            rate_max_tracked=_positive_int(environ, "DOSSIER_RATE_MAX_TRACKED", 100_000),
            cost_budget=_positive_int(environ, "DOSSIER_COST_BUDGET", 50_000_000, allow_zero=True),
            cost_budget_seconds=_positive_int(environ, "DOSSIER_COST_BUDGET_SECONDS", 60),
            cors_origins=origins,
            hsts_seconds=_positive_int(
                environ, "DOSSIER_HSTS_SECONDS", 31_536_000 if prod else 0, allow_zero=True
            ),
            introspection=dev,
            field_suggestions=dev,
        )


def _positive_int(
    environ: Mapping[str, str], name: str, default: int, *, allow_zero: bool = False
) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, not {raw!r}") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be {'≥ 0' if allow_zero else '> 0'}")
    return value


def _positive_float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number")
    return value
