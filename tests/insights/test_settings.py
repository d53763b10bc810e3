"""InsightSettings: thresholds from DOSSIER_* variables, refused when unusable."""

from __future__ import annotations

import pytest

from insights.settings import InsightSettings, InsightSettingsError


def test_defaults_apply_when_nothing_is_set() -> None:
    settings = InsightSettings.from_env({})
    assert settings == InsightSettings()
    assert [settings.sla_hours(p) for p in ("URGENT", "HIGH", "NORMAL", "LOW")] == [4, 24, 72, 168]


def test_variables_override_thresholds() -> None:
    settings = InsightSettings.from_env(
        {"DOSSIER_SLA_HOURS_URGENT": "2", "DOSSIER_SILENT_DAYS_LEVEL_A": "14",
         "DOSSIER_CHURN_RATIO": "0.25"}
    )  # fmt: skip
    assert settings.sla_hours("URGENT") == 2
    assert settings.silent_days_level_a == 14
    assert settings.churn_ratio == 0.25


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DOSSIER_SLA_HOURS_HIGH", "soon"),
        ("DOSSIER_SLA_HOURS_LOW", "0"),
        ("DOSSIER_SILENT_DAYS", "-3"),
        ("DOSSIER_CHURN_RATIO", "1.5"),
    ],
)
def test_unusable_values_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(InsightSettingsError, match=variable):
        InsightSettings.from_env({variable: value})
