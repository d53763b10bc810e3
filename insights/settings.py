"""Thresholds of the insights: SLA hours per ticket priority, silence and churn limits."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resolvers.context import RequestContext

# where the endpoint may put the server's `InsightSettings` on a request context
EXTRAS_KEY = "insight_settings"


class InsightSettingsError(ValueError):
    """A `DOSSIER_*` insight variable that is not a usable number; names the variable."""


@dataclass(frozen=True, kw_only=True)
class InsightSettings:
    """What counts as late, silent or churning; read once from the environment.

    `InsightSettings.from_env(os.environ)` reads `DOSSIER_SLA_HOURS_{URGENT,HIGH,NORMAL,LOW}`,
    `DOSSIER_SILENT_DAYS`, `DOSSIER_SILENT_DAYS_LEVEL_A`, `DOSSIER_CHURN_WINDOW_DAYS` and
    `DOSSIER_CHURN_RATIO`; unset variables keep the defaults below.
    """

    sla_hours_urgent: int = 4
    sla_hours_high: int = 24
    sla_hours_normal: int = 72
    sla_hours_low: int = 168
    silent_days: int = 90
    silent_days_level_a: int = 30  # key accounts go quiet sooner
    churn_window_days: int = 90
    churn_ratio: float = 0.5  # recent won amount below this share of the window before

    def __post_init__(self) -> None:
        for name in (
            "sla_hours_urgent", "sla_hours_high", "sla_hours_normal", "sla_hours_low",
            "silent_days", "silent_days_level_a", "churn_window_days",
        ):  # fmt: skip
            if getattr(self, name) <= 0:
                raise InsightSettingsError(f"DOSSIER_{name.upper()} must be positive")
        if not 0 < self.churn_ratio <= 1:
            raise InsightSettingsError("DOSSIER_CHURN_RATIO must be in (0, 1]")

    def sla_hours(self, priority: str) -> int:
        """SLA of a ticket priority (`LOW` … `URGENT`)."""
        return int(getattr(self, f"sla_hours_{priority.lower()}"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InsightSettings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, parse in (
            ("sla_hours_urgent", int), ("sla_hours_high", int), ("sla_hours_normal", int),
            ("sla_hours_low", int), ("silent_days", int), ("silent_days_level_a", int),
            ("churn_window_days", int), ("churn_ratio", float),
        ):  # fmt: skip
            variable = f"DOSSIER_{name.upper()}"
            raw = environ.get(variable)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                raise InsightSettingsError(f"{variable} must be a number, not {raw!r}") from exc
        return cls(**values)


@lru_cache(maxsize=1)
def _process_settings() -> InsightSettings:
    return InsightSettings.from_env()


def insight_settings(context: RequestContext) -> InsightSettings:
    """The thresholds in force: those the endpoint put on the context, else the environment's.

    `api.settings.Settings.insights` validates the variables at start; until the endpoint hands
    them over in `context.extras[EXTRAS_KEY]`, the same variables are read here, once.
    """
    given = context.extras.get(EXTRAS_KEY)
    return given if isinstance(given, InsightSettings) else _process_settings()
