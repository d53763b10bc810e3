"""Where secrets come from: the environment, or in dev mode a file generated once.

Production never falls back to a generated value: a missing or weak secret there is a start-up
error naming the variable, because a silent default would let anyone forge tokens.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path


class ConfigurationError(RuntimeError):
    """A setting is missing or unusable; the message names the variable."""


class SecretSource:
    """Reads secrets from the environment; outside production, makes and keeps missing ones."""

    def __init__(self, environ: Mapping[str, str], *, production: bool, store: Path) -> None:
        self._environ = environ
        self._production = production
        self._store = store
        self._generated: dict[str, str] | None = None

    def get(self, name: str, *, generate: Callable[[], str], min_length: int = 32) -> str:
        value = self._environ.get(name, "")
        if value:
            if len(value) < min_length:
                raise ConfigurationError(f"{name} is too short: at least {min_length} characters")
            return value
        if self._production:
            raise ConfigurationError(f"{name} must be set in production (DOSSIER_ENV=prod)")
        return self._dev_secret(name, generate)

    def _dev_secret(self, name: str, generate: Callable[[], str]) -> str:
        if self._generated is None:
            self._generated = json.loads(self._store.read_text()) if self._store.exists() else {}
        if name not in self._generated:
            self._generated[name] = generate()
            self._store.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._store.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._generated, indent=2))
            os.chmod(tmp, 0o600)
            tmp.replace(self._store)
        return self._generated[name]


def random_secret() -> str:
    return secrets.token_urlsafe(48)
