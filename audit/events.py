"""What callers hand to the audit trail: the closed vocabularies and one immutable record."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class AuditAction(StrEnum):
    """Everything the trail records; docs/api.md lists these strings as `AuditEvent.action`."""

    READ = "READ"
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    ARCHIVE = "ARCHIVE"
    MERGE = "MERGE"
    EXPORT = "EXPORT"
    IMPORT = "IMPORT"
    LOGIN = "LOGIN"
    LOGIN_FAILED = "LOGIN_FAILED"
    LOGOUT = "LOGOUT"
    TOKEN_REFRESH_REUSED = "TOKEN_REFRESH_REUSED"  # noqa: S105  # an event name, not a secret
    DENIED = "DENIED"
    POLICY_CHANGE = "POLICY_CHANGE"
    ROLE_CHANGE = "ROLE_CHANGE"
    USER_CHANGE = "USER_CHANGE"
    DEPARTMENT_CHANGE = "DEPARTMENT_CHANGE"
    TOKEN_ISSUED = "TOKEN_ISSUED"  # noqa: S105  # an event name, not a secret
    TOKEN_REVOKED = "TOKEN_REVOKED"  # noqa: S105  # an event name, not a secret
    AUDIT_READ = "AUDIT_READ"
    AUDIT_EXPORT = "AUDIT_EXPORT"
    AUDIT_ARCHIVE = "AUDIT_ARCHIVE"


class ActorKind(StrEnum):
    USER = "USER"
    PARTNER = "PARTNER"
    SYSTEM = "SYSTEM"


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """One event as a caller describes it; `append_events` adds time, sequence and hashes.

    `actor_kind` and `action` are plain strings so callers may pass the enums above (they are
    `StrEnum`s) or strings read from elsewhere. `changes` maps a field name to
    `{"old": ..., "new": ...}`; sensitive values must already be masked (`audit.masking`).
    """

    actor: str
    actor_kind: str
    action: str
    resource_type: str | None = None
    resource_ids: Sequence[str] = ()
    fields: Sequence[str] = ()
    changes: Mapping[str, Any] | None = None
    operation: str | None = None
    query_hash: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    token_id: uuid.UUID | None = None
