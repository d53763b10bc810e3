"""Token and login settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from api.secrets import SecretSource, random_secret


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    jwt_secret: str
    jwt_key_id: str = "k1"
    issuer: str = "dossier"
    audience: str = "dossier-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 14 * 24 * 3600
    leeway_seconds: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str], secrets: SecretSource) -> AuthSettings:
        return cls(
            jwt_secret=secrets.get("DOSSIER_JWT_SECRET", generate=random_secret),
            jwt_key_id=environ.get("DOSSIER_JWT_KEY_ID", "k1"),
            issuer=environ.get("DOSSIER_JWT_ISSUER", "dossier"),
            audience=environ.get("DOSSIER_JWT_AUDIENCE", "dossier-api"),
            access_token_ttl_seconds=int(environ.get("DOSSIER_ACCESS_TOKEN_TTL", "900")),
            refresh_token_ttl_seconds=int(
                environ.get("DOSSIER_REFRESH_TOKEN_TTL", str(14 * 24 * 3600))
            ),
        )
