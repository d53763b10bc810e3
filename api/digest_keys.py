"""The audit digests' signing key, from the environment or (outside production) made once.

Both `dossier audit` (which turns a failure into a CLI error) and the job worker (which then
signs nothing and warns) need it, so it lives here rather than in either.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.secrets import ConfigurationError, SecretSource
from api.settings import Settings
from audit.digests import DigestKeyError, new_signing_key_text, signing_key_from_text

SIGNING_KEY = "DOSSIER_AUDIT_SIGNING_KEY"


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The digest signing key: from the environment; outside production, generated once.

    Kept beside the other dev secrets (`<data dir>/dev-secrets.json`); production without the
    variable is a ConfigurationError naming it, never a generated key.
    """
    secrets = SecretSource(
        os.environ,
        production=settings.is_production,
        store=settings.data_dir / "dev-secrets.json",
    )
    value = secrets.get(SIGNING_KEY, generate=new_signing_key_text, min_length=43)
    try:
        return signing_key_from_text(value)
    except DigestKeyError as error:
        raise ConfigurationError(f"{SIGNING_KEY}: {error}") from error
