"""Errors raised by identity functions, typed so callers can map them to GraphQL codes.

IdentityError
├── IdentityInputError (field, reason)     → BAD_USER_INPUT naming the field
│   ├── InvalidUsernameError
│   ├── UserExistsError
│   ├── WeakPasswordError
│   ├── DepartmentNotFoundError
│   ├── UnknownScopeError
│   └── InvalidExpiryError
├── UserNotFoundError (user_id)            → NOT_FOUND
└── RefreshTokenError (reason)             → 401 at /auth/refresh
    └── RefreshTokenReusedError (user_id, family_id)
"""

from __future__ import annotations

import uuid


class IdentityError(Exception):
    """Base of every error this package raises on purpose."""


class IdentityInputError(IdentityError):
    """Input refused before anything was written; `field` names the offending input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidUsernameError(IdentityInputError):
    def __init__(self, reason: str) -> None:
        super().__init__("username", reason)


class UserExistsError(IdentityInputError):
    def __init__(self, username: str) -> None:
        super().__init__("username", "a user with this username already exists")
        self.username = username


class WeakPasswordError(IdentityInputError):
    def __init__(self, reason: str) -> None:
        super().__init__("password", reason)


class DepartmentNotFoundError(IdentityInputError):
    def __init__(self, department_id: int) -> None:
        super().__init__("departmentId", f"no department with id {department_id}")
        self.department_id = department_id


class UnknownScopeError(IdentityInputError):
    def __init__(self, scopes: list[str]) -> None:
        super().__init__("scopes", f"unknown scope(s): {', '.join(scopes)}")
        self.scopes = scopes


class InvalidExpiryError(IdentityInputError):
    def __init__(self, reason: str) -> None:
        super().__init__("expiresInDays", reason)


class UserNotFoundError(IdentityError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"no user with id {user_id}")
        self.user_id = user_id


class RefreshTokenError(IdentityError):
    """A refresh token was refused; `reason` is a short code (unknown, expired, revoked, …)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RefreshTokenReusedError(RefreshTokenError):
    """A spent refresh token came back: its whole family is now revoked.

    The revocation was made in the caller's session; the caller must commit it (with the
    audit event) even though the refresh itself failed.
    """

    def __init__(self, user_id: int, family_id: uuid.UUID) -> None:
        super().__init__("reused")
        self.user_id = user_id
        self.family_id = family_id
