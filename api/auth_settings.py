"""Token and login settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from api.secrets import ConfigurationError, SecretSource, random_secret

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output
MIN_JWT_SECRET_LENGTH = 32


@dataclass(frozen=True, kw_only=True)
class LoginThrottleSettings:
    """Token buckets for failed logins: `burst` failures at once, then one per `refill_seconds`.

    Per (username, client address) this stops one host guessing one account's password, while
    the owner, from another address, still logs in: a stranger cannot lock them out. Per
    username (`account_*`, a higher ceiling) it slows guessing one account from many
    addresses; it does not apply to a network the account logged in from within
    `known_network_seconds`, so the owner's own network is not blocked. Per client address it
    stops one host spraying a common password across many accounts.
    """

    username_burst: int = 5
    username_refill_seconds: float = 60.0
    account_burst: int = 30
    account_refill_seconds: float = 20.0
    address_burst: int = 20
    address_refill_seconds: float = 15.0
    known_network_seconds: float = 30 * 24 * 3600.0
    max_tracked_keys: int = 100_000


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    """How access tokens are signed and checked.

    Keys form a ring (`kid` → HS256 secret) so they rotate without logging everyone out: add
    the new key, make it active (new tokens carry its `kid`), drop the old one once the longest
    access token TTL has passed. With no ring, `jwt_secret` is the single key `jwt_key_id`.
    """

    jwt_secret: str = field(repr=False)
    jwt_key_id: str = "k1"
    jwt_keys: Mapping[str, str] | None = field(default=None, repr=False)
    issuer: str = "dossier"
    audience: str = "dossier-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 14 * 24 * 3600
    leeway_seconds: int = 5
    login_throttle: LoginThrottleSettings = LoginThrottleSettings()

    @property
    def signing_keys(self) -> Mapping[str, str]:
        """Every key a token may be verified with, by `kid`."""
        return self.jwt_keys if self.jwt_keys else {self.jwt_key_id: self.jwt_secret}

    @property
    def active_key(self) -> tuple[str, str]:
        """The (`kid`, secret) new tokens are signed with."""
        return self.jwt_key_id, self.signing_keys[self.jwt_key_id]

    @classmethod
    def from_env(cls, environ: Mapping[str, str], secrets: SecretSource) -> AuthSettings:
        ring_spec = environ.get("DOSSIER_JWT_KEYS", "")
        if ring_spec:
            ring = parse_jwt_key_ring(ring_spec)
            active = environ.get("DOSSIER_JWT_KEY_ID") or next(iter(ring))
            if active not in ring:
                raise ConfigurationError(f"DOSSIER_JWT_KEY_ID names unknown key {active!r}")
            jwt_secret = ring[active]
        else:
            ring = None
            active = environ.get("DOSSIER_JWT_KEY_ID", "k1")
            jwt_secret = secrets.get(
                "DOSSIER_JWT_SECRET", generate=random_secret, min_length=MIN_JWT_SECRET_LENGTH
            )
        return cls(
            jwt_secret=jwt_secret,
            jwt_key_id=active,
            jwt_keys=ring,
            issuer=environ.get("DOSSIER_JWT_ISSUER", "dossier"),
            audience=environ.get("DOSSIER_JWT_AUDIENCE", "dossier-api"),
            access_token_ttl_seconds=int(environ.get("DOSSIER_ACCESS_TOKEN_TTL", "900")),
            refresh_token_ttl_seconds=int(
                environ.get("DOSSIER_REFRESH_TOKEN_TTL", str(14 * 24 * 3600))
            ),
            leeway_seconds=int(environ.get("DOSSIER_JWT_LEEWAY", "5")),
            login_throttle=LoginThrottleSettings(
                username_burst=int(environ.get("DOSSIER_LOGIN_USERNAME_BURST", "5")),
                username_refill_seconds=float(
                    environ.get("DOSSIER_LOGIN_USERNAME_REFILL_SECONDS", "60")
                ),
                account_burst=int(environ.get("DOSSIER_LOGIN_ACCOUNT_BURST", "30")),
                account_refill_seconds=float(
                    environ.get("DOSSIER_LOGIN_ACCOUNT_REFILL_SECONDS", "20")
                ),
                address_burst=int(environ.get("DOSSIER_LOGIN_ADDRESS_BURST", "20")),
                address_refill_seconds=float(
                    environ.get("DOSSIER_LOGIN_ADDRESS_REFILL_SECONDS", "15")
                ),
            ),
        )


def parse_jwt_key_ring(spec: str) -> dict[str, str]:
    """Parse `DOSSIER_JWT_KEYS=kid:secret,kid:secret`; every secret ≥ 32 characters."""
    ring: dict[str, str] = {}
    for item in spec.split(","):
        kid, sep, secret = item.strip().partition(":")
        if not sep or not kid or not secret:
            raise ConfigurationError("DOSSIER_JWT_KEYS must look like kid:secret,kid:secret")
        if len(secret) < MIN_JWT_SECRET_LENGTH:
            raise ConfigurationError(
                f"DOSSIER_JWT_KEYS key {kid!r} is too short: at least "
                f"{MIN_JWT_SECRET_LENGTH} characters"
            )
        if kid in ring:
            raise ConfigurationError(f"DOSSIER_JWT_KEYS names key {kid!r} twice")
        ring[kid] = secret
    return ring
