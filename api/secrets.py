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
    """Reads secrets from the environment; outside production, makes and keeps missing ones.

    A missing or weak secret raises ConfigurationError — or, with `collect=True`, is noted in
    `problems` while a throwaway value of the right form is returned, so that the rest of the
    configuration is still read and checked, and the caller raises them together
    (`raise_problems`): an operator learns of every missing secret in one attempt.
    """

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        production: bool,
        store: Path,
        collect: bool = False,
    ) -> None:
        self._environ = environ
        self._production = production
        self._store = store
        self._collect = collect
        self._generated: dict[str, str] | None = None
        self.problems: list[str] = []

    def _problem(self, message: str, generate: Callable[[], str]) -> str:
        if not self._collect:
            raise ConfigurationError(message)
        self.problems.append(message)
        return generate()  # never stored, never used: the settings are refused

    def get(self, name: str, *, generate: Callable[[], str], min_length: int = 32) -> str:
        value = self._environ.get(name, "")
        if value:
            if len(value) < min_length:
                return self._problem(
                    f"{name} is too short: at least {min_length} characters", generate
                )
            return value
        if self._production:
            return self._problem(f"{name} must be set in production (DOSSIER_ENV=prod)", generate)
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


def raise_problems(problems: list[str]) -> None:
    """One ConfigurationError naming every problem (each on its own line), if there are any."""
    if len(problems) == 1:
        raise ConfigurationError(problems[0])
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigurationError(f"{len(problems)} settings must be fixed:\n{listed}")


def random_secret() -> str:
    return secrets.token_urlsafe(48)
