"""Ticket input: title, priority, status and satisfaction (1-5, only once resolved)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from validation.errors import ErrorCollector, FieldError, Rule
from validation.fields import FieldSpec, choice, integer_between, normalise_fields, present_keys
from validation.lifecycle import (
    RESOLVED_STATUSES,
    LifecycleKind,
    TicketStatus,
    check_transition,
    resolution_change,
)
from validation.text import normalise_line


class TicketPriority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


_PRIORITY_ALIASES = {
    "低": TicketPriority.LOW,
    "普通": TicketPriority.NORMAL,
    "中": TicketPriority.NORMAL,
    "高": TicketPriority.HIGH,
    "紧急": TicketPriority.URGENT,
}
_STATUS_ALIASES = {
    "待处理": TicketStatus.OPEN,
    "处理中": TicketStatus.IN_PROGRESS,
    "已解决": TicketStatus.RESOLVED,
    "已关闭": TicketStatus.CLOSED,
}

TICKET_FIELDS = (
    FieldSpec("title", "title", lambda v, f: normalise_line(v, f, max_length=300), required=True),
    FieldSpec(
        "priority",
        "priority",
        choice(TicketPriority, _PRIORITY_ALIASES),
        required=True,
        default=TicketPriority.NORMAL,
        has_default=True,
    ),
    FieldSpec(
        "status",
        "status",
        choice(TicketStatus, _STATUS_ALIASES),
        required=True,
        default=TicketStatus.OPEN,
        has_default=True,
    ),
    FieldSpec("satisfaction", "satisfaction", integer_between(1, 5)),
)


@dataclass(frozen=True, kw_only=True)
class NormalisedTicket:
    """Validated ticket values; `resolved_at_change` tells the writer what to do with
    `resolvedAt` (True set now, False clear together with satisfaction, None keep)."""

    title: str | None = None
    priority: TicketPriority | None = None
    status: TicketStatus | None = None
    satisfaction: int | None = None
    present: frozenset[str] = frozenset()
    resolved_at_change: bool | None = None

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.present}


def _satisfaction_rule(status: object, satisfaction: object, errors: ErrorCollector) -> None:
    if satisfaction is not None and status not in RESOLVED_STATUSES:
        errors.add(
            FieldError(
                "satisfaction",
                Rule.NOT_ALLOWED,
                f"can only be given once the ticket is resolved (status is {status})",
            )
        )


def validate_ticket_input(
    data: Mapping[str, Any], *, ignore: Collection[str] = ()
) -> NormalisedTicket:
    """Normalise a ticket create (status defaults to OPEN; a RESOLVED or CLOSED import may
    carry its satisfaction)."""
    errors = ErrorCollector()
    values = normalise_fields(data, TICKET_FIELDS, errors, partial=False, ignore=ignore)
    if "status" not in {error.field for error in errors.errors}:
        _satisfaction_rule(values.get("status"), values.get("satisfaction"), errors)
    errors.raise_if_any()
    status = values.get("status")
    return NormalisedTicket(
        **values,
        present=frozenset(values),
        resolved_at_change=True if status in RESOLVED_STATUSES else None,
    )


def validate_ticket_patch(
    existing: Mapping[str, Any], patch: Mapping[str, Any], *, ignore: Collection[str] = ()
) -> NormalisedTicket:
    """Normalise an update: the status move must be allowed, and satisfaction needs a resolved
    ticket after the move. Reopening clears satisfaction (it rated the old resolution)."""
    errors = ErrorCollector()
    values = normalise_fields(patch, TICKET_FIELDS, errors, partial=True, ignore=ignore)
    stored = present_keys(existing, TICKET_FIELDS)
    current = str(stored.get("status") or TicketStatus.OPEN)
    new = values.get("status") or current
    change: bool | None = None
    if "status" not in {error.field for error in errors.errors}:
        errors.run(lambda: check_transition(LifecycleKind.TICKET, current, str(new)))
        change = resolution_change(current, str(new))
        if change is False:
            if values.get("satisfaction") is not None:
                errors.add(
                    FieldError(
                        "satisfaction", Rule.NOT_ALLOWED, "a reopened ticket has no satisfaction"
                    )
                )
            elif stored.get("satisfaction") is not None:
                values["satisfaction"] = None
        elif "satisfaction" in values:
            _satisfaction_rule(new, values["satisfaction"], errors)
    errors.raise_if_any()
    return NormalisedTicket(**values, present=frozenset(values), resolved_at_change=change)
