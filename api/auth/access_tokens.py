"""Access tokens: short-lived HS256 JWTs with a `kid`, verified against a pinned algorithm.

Verification never trusts the token's header to choose how it is checked: the algorithm list
holds HS256 only (symmetric and asymmetric algorithms are never mixed in one allow-list, which
is what makes "HS256 signed with the public key" attacks possible), the `kid` must name a key
of our ring, and every claim we rely on is required, because PyJWT checks `exp` only when it is
present unless told to require it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from api.auth.errors import AuthenticationError, AuthFailure
from api.auth_settings import AuthSettings

ALGORITHM = "HS256"
ALGORITHMS = [ALGORITHM]
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss", "jti"]
_USER_ID = re.compile(r"[1-9][0-9]{0,17}")  # fits a PostgreSQL bigint


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    expires_in: int
    jti: str


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What the backend needs from a verified token; the rest comes from the user's row."""

    user_id: int
    token_version: int
    jti: str


def issue_access_token(
    settings: AuthSettings, *, user_id: int, token_version: int, now: int | None = None
) -> IssuedAccessToken:
    kid, secret = settings.active_key
    issued_at = int(time.time()) if now is None else now
    jti = uuid.uuid4().hex
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": str(user_id),
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + settings.access_token_ttl_seconds,
        "jti": jti,
        "ver": token_version,
    }
    token = jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})
    return IssuedAccessToken(token=token, expires_in=settings.access_token_ttl_seconds, jti=jti)


# most specific first: ExpiredSignatureError and friends subclass more general errors
_FAILURES: tuple[tuple[type[jwt.PyJWTError], AuthFailure], ...] = (
    (jwt.ExpiredSignatureError, AuthFailure.EXPIRED),
    (jwt.ImmatureSignatureError, AuthFailure.NOT_YET_VALID),
    (jwt.InvalidIssuedAtError, AuthFailure.NOT_YET_VALID),
    (jwt.InvalidAudienceError, AuthFailure.WRONG_AUDIENCE),
    (jwt.InvalidIssuerError, AuthFailure.WRONG_ISSUER),
    (jwt.MissingRequiredClaimError, AuthFailure.MISSING_CLAIM),
    (jwt.InvalidSignatureError, AuthFailure.BAD_SIGNATURE),
    (jwt.InvalidAlgorithmError, AuthFailure.UNSUPPORTED_ALGORITHM),
)


# tokens this process verified: (settings, claims, exp) by token, least recently used first out
_VERIFIED: OrderedDict[str, tuple[AuthSettings, AccessClaims, float]] = OrderedDict()
MAX_VERIFIED_TOKENS = 10_000


def verify_access_token(settings: AuthSettings, token: str) -> AccessClaims:
    """Verify signature and claims; raise AuthenticationError with a reason code.

    A token verified before under the same settings is answered from memory until it expires:
    its signature, issuer, audience and shape cannot have changed, a token valid once stays
    past its `nbf` and `iat`, and only `exp` depends on the clock, so only `exp` is checked
    again. Verifying cost ~45 µs per request (PyJWT parses the header twice and checks every
    claim), 4 % of a nested read. Revocation is not a property of the token: the user row is
    checked on every request all the same (`api.auth.backend`).
    """
    found = _VERIFIED.get(token)
    if found is not None and found[0] is settings:
        if time.time() <= found[2] + settings.leeway_seconds:
            _VERIFIED.move_to_end(token)
            return found[1]
        del _VERIFIED[token]
        raise AuthenticationError(AuthFailure.EXPIRED)
    claims, expires = _verified(settings, token)
    _VERIFIED[token] = (settings, claims, expires)
    if len(_VERIFIED) > MAX_VERIFIED_TOKENS:
        _VERIFIED.popitem(last=False)
    return claims


def _verified(settings: AuthSettings, token: str) -> tuple[AccessClaims, float]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise AuthenticationError(AuthFailure.MALFORMED_TOKEN) from error
    if header.get("alg") not in ALGORITHMS:
        raise AuthenticationError(AuthFailure.UNSUPPORTED_ALGORITHM)
    kid = header.get("kid")
    key = settings.signing_keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise AuthenticationError(AuthFailure.UNKNOWN_KID)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway_seconds,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as error:
        for kind, failure in _FAILURES:
            if isinstance(error, kind):
                raise AuthenticationError(failure) from error
        raise AuthenticationError(AuthFailure.MALFORMED_TOKEN) from error
    subject, version, jti = claims["sub"], claims.get("ver"), claims["jti"]
    # only our own shape passes: a bigint user id, an int version (bool is not an int here)
    if not (isinstance(subject, str) and _USER_ID.fullmatch(subject)):
        raise AuthenticationError(AuthFailure.MALFORMED_TOKEN)
    if type(version) is not int or not isinstance(jti, str):
        raise AuthenticationError(AuthFailure.MALFORMED_TOKEN)
    return AccessClaims(user_id=int(subject), token_version=version, jti=jti), float(claims["exp"])
