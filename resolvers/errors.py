"""Errors a client may see, each with the `extensions.code` fixed in docs/api.md.

Anything else raised during a request is masked as INTERNAL by the GraphQL endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class DossierError(Exception):
    """Base of every error whose message is safe to show the caller."""

    code = "INTERNAL"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.extensions: dict[str, Any] = {"code": self.code, **extensions}


class BadUserInputError(DossierError):
    code = "BAD_USER_INPUT"

    def __init__(
        self,
        message: str,
        *,
        argument: str | None = None,
        field: str | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        extra: dict[str, Any] = {}
        if argument is not None:
            extra["argument"] = argument
        if field is not None:
            extra["field"] = field
        if errors:
            extra["errors"] = list(errors)
        super().__init__(message, **extra)


class ForbiddenError(DossierError):
    code = "FORBIDDEN"

    def __init__(self, field: str, message: str | None = None) -> None:
        super().__init__(message or f"Not allowed: {field}", field=field)


class NotFoundError(DossierError):
    """Also the answer for records outside the caller's scope: they do not exist for it."""

    code = "NOT_FOUND"

    def __init__(self, what: str = "record") -> None:
        super().__init__(f"No such {what}")


class ConflictError(DossierError):
    code = "CONFLICT"


class DuplicateError(DossierError):
    code = "DUPLICATE"
