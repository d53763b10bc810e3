"""Configuration: production refuses to start without secrets; every variable is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import main
from api.secrets import ConfigurationError
from api.settings import Settings
from db.crypto import new_key
from tests.ops.conftest import REPO

SECRETS = ("DOSSIER_FIELD_KEYS", "DOSSIER_BLIND_INDEX_KEY", "DOSSIER_JWT_SECRET")
SOURCE_PACKAGES = ("api", "audit", "db", "identity", "policy", "resolvers", "schema", "validation")
OPERATIONS_GUIDE = REPO / "docs" / "operations.md"


def production(data_dir: Path, **values: str) -> dict[str, str]:
    return {
        "DOSSIER_ENV": "prod",
        "DATABASE_URL": "postgresql://dossier@db.internal/dossier",
        "DOSSIER_DATA_DIR": str(data_dir),
        **values,
    }


def test_production_names_every_missing_secret_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env(production(tmp_path))
    message = str(refused.value)
    assert message.startswith(f"{len(SECRETS)} settings must be fixed")
    for name in SECRETS:
        assert f"{name} must be set in production" in message
    given: dict[str, str] = {}
    for name in SECRETS[:-1]:
        given[name] = f"k1:{new_key()}" if name == "DOSSIER_FIELD_KEYS" else new_key()
    with pytest.raises(ConfigurationError, match=f"^{SECRETS[-1]} must be set in production"):
        Settings.from_env(production(tmp_path, **given))
    given[SECRETS[-1]] = new_key()
    settings = Settings.from_env(production(tmp_path, **given))
    assert settings.is_production
    assert not (tmp_path / "dev-secrets.json").exists()  # never generated in production


def test_secrets_and_other_settings_are_reported_together(tmp_path: Path) -> None:
    env = production(tmp_path, DOSSIER_LOG_LEVEL="chatty", DOSSIER_TRUSTED_PROXIES="nope")
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env(env)
    for name in (*SECRETS, "DOSSIER_LOG_LEVEL", "DOSSIER_TRUSTED_PROXIES"):
        assert name in str(refused.value)


@pytest.mark.parametrize(
    "spec",
    [
        "a-key-without-its-id-and-colon-0123456789",
        ":" + new_key(),
        "k1:" + "*!" * 22,  # not base64
        "k1:" + "c2hvcnQ" * 5,  # base64 of the wrong length for an AES key
        f"k1:{new_key()},k2:c2hvcnQ",
    ],
)
def test_a_malformed_field_key_ring_names_the_variable(tmp_path: Path, spec: str) -> None:
    env = {"DOSSIER_DATA_DIR": str(tmp_path), "DOSSIER_FIELD_KEYS": spec}
    with pytest.raises(ConfigurationError, match="^DOSSIER_FIELD_KEYS .*expected id:base64key"):
        Settings.from_env(env)
    with pytest.raises(ConfigurationError, match="^DOSSIER_FIELD_KEYS is too short"):
        Settings.from_env({**env, "DOSSIER_FIELD_KEYS": "k1:abc"})


def test_keys_generate_makes_a_complete_production_configuration(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["keys", "generate"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("#")]
    generated = dict(line.split("=", 1) for line in lines)
    assert set(SECRETS) | {"DOSSIER_AUDIT_SIGNING_KEY", "DOSSIER_METRICS_TOKEN"} == set(generated)
    settings = Settings.from_env(production(tmp_path, **generated))
    assert settings.ops.metrics_token == generated["DOSSIER_METRICS_TOKEN"]
    again = CliRunner().invoke(main, ["keys", "generate"]).output
    assert not set(again.splitlines()) & set(lines)  # fresh every time


def test_production_refuses_a_short_jwt_secret(tmp_path: Path) -> None:
    weak = production(
        tmp_path,
        DOSSIER_FIELD_KEYS=f"k1:{new_key()}",
        DOSSIER_BLIND_INDEX_KEY=new_key(),
        DOSSIER_JWT_SECRET="secret",
    )
    with pytest.raises(ConfigurationError, match="DOSSIER_JWT_SECRET is too short"):
        Settings.from_env(weak)


def test_dossier_serve_in_production_without_secrets_stops_naming_the_variable(
    tmp_path: Path,
) -> None:
    env = production(tmp_path, **dict.fromkeys(SECRETS, ""))
    result = CliRunner().invoke(main, ["serve", "--port", "0"], env=env)
    assert result.exit_code != 0
    assert "DOSSIER_FIELD_KEYS must be set in production" in result.output


def variables_in_code() -> set[str]:
    found: set[str] = set()
    for package in SOURCE_PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            found.update(re.findall(r"DOSSIER_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    return found


def test_every_dossier_variable_read_by_the_code_is_in_the_configuration_reference() -> None:
    reference = OPERATIONS_GUIDE.read_text()
    documented = set(re.findall(r"`(DOSSIER_[A-Z0-9_]+)`", reference))
    missing = sorted(variables_in_code() - documented)
    assert not missing, f"add to docs/operations.md: {', '.join(missing)}"
