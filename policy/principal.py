"""The caller of a request, as established by authentication and consumed by every decision."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class PrincipalKind(StrEnum):
    USER = "USER"
    PARTNER = "PARTNER"
    SYSTEM = "SYSTEM"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user or partner token.

    For a partner, `scopes` and `shared_customer_ids` narrow whatever its policies allow:
    the token can never do more than it was issued for.
    """

    kind: PrincipalKind
    name: str
    user_id: int | None = None
    department_id: int | None = None
    token_id: uuid.UUID | None = None
    scopes: frozenset[str] | None = None
    shared_customer_ids: frozenset[int] | None = None

    @property
    def subject(self) -> str:
        """The Casbin subject: users by username, partners under a `partner:` prefix."""
        if self.kind is PrincipalKind.PARTNER:
            return f"partner:{self.name}"
        return self.name

    @property
    def is_partner(self) -> bool:
        return self.kind is PrincipalKind.PARTNER


SYSTEM = Principal(kind=PrincipalKind.SYSTEM, name="system")
