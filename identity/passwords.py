"""Password hashing with argon2id at OWASP's parameters, upgraded transparently on login.

OWASP's Password Storage Cheat Sheet recommends argon2id with m=19456 KiB, t=2, p=1. Hashes
made with other (older) parameters still verify; `verify_password` then returns a fresh hash
that the caller stores in the same transaction as the successful login.

Hashing costs ~20 ms of CPU and is synchronous: async callers should run these functions in a
worker thread (`anyio.to_thread.run_sync`) so the event loop keeps serving other requests.
"""

from __future__ import annotations

from functools import cache

from passlib.context import CryptContext  # no stubs: ignore_missing_imports
from passlib.exc import UnknownHashError

ARGON2_MEMORY_KIB = 19456
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

_context = CryptContext(
    schemes=["argon2"],
    deprecated="auto",
    argon2__type="ID",
    argon2__memory_cost=ARGON2_MEMORY_KIB,
    argon2__time_cost=ARGON2_TIME_COST,
    argon2__parallelism=ARGON2_PARALLELISM,
)


def hash_password(password: str) -> str:
    """Hash a password with the current parameters (a PHC string, `$argon2id$...`)."""
    return str(_context.hash(password))


def verify_password(password: str, stored: str) -> tuple[bool, str | None]:
    """Check `password` against `stored`; return (ok, new hash or None).

    The second element is set only when the password matched and `stored` used parameters
    older than the current ones: store it to upgrade the hash. A stored value that is not a
    hash this context knows (corrupt row, disabled account marker) never matches.
    """
    try:
        ok, new_hash = _context.verify_and_update(password, stored)
    except (UnknownHashError, ValueError):
        return False, None
    return bool(ok), None if new_hash is None else str(new_hash)


@cache
def _dummy_hash() -> str:
    # made once per process with the current parameters, so a miss costs what a hit costs
    return str(_context.hash("dossier-dummy-password-for-unknown-users"))


def burn_dummy_verification() -> None:
    """Spend the time of one verification, for a username that does not exist.

    Without this, "unknown user" answers in microseconds and "wrong password" in ~20 ms, which
    tells an attacker which usernames exist.
    """
    _context.verify("not-the-password", _dummy_hash())
