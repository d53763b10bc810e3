"""Which state changes opportunities and tickets may make.

Decisions (issue 6):
- Opportunities move forward only. From an open stage (LEAD, QUALIFIED, PROPOSAL, NEGOTIATION)
  any later open stage is allowed, so a deal that skips a stage is recorded as it happened;
  WON is reachable from any open stage (a skip forward too), LOST from any open stage. WON and
  LOST are final: a lost deal that comes back is a new opportunity. Never moving back keeps
  "reached stage X" well defined for conversion rates, and stage history still shows skips.
- Tickets: OPEN → IN_PROGRESS → RESOLVED → CLOSED. OPEN → RESOLVED is allowed (answered at
  once); nothing reaches CLOSED without passing RESOLVED, so `resolvedAt` is always set on a
  closed ticket. RESOLVED reopens to OPEN or IN_PROGRESS. CLOSED is final.
- Staying in the same state is not a transition and always passes (a patch may repeat it).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from validation.errors import FieldError, Rule


class OpportunityStage(StrEnum):
    LEAD = "LEAD"
    QUALIFIED = "QUALIFIED"
    PROPOSAL = "PROPOSAL"
    NEGOTIATION = "NEGOTIATION"
    WON = "WON"
    LOST = "LOST"


class TicketStatus(StrEnum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


class LifecycleKind(StrEnum):
    OPPORTUNITY = "opportunity"
    TICKET = "ticket"


_OPEN_STAGES = (
    OpportunityStage.LEAD,
    OpportunityStage.QUALIFIED,
    OpportunityStage.PROPOSAL,
    OpportunityStage.NEGOTIATION,
)

OPPORTUNITY_TRANSITIONS: Mapping[str, tuple[str, ...]] = {
    **{
        stage: (*_OPEN_STAGES[index + 1 :], OpportunityStage.WON, OpportunityStage.LOST)
        for index, stage in enumerate(_OPEN_STAGES)
    },
    OpportunityStage.WON: (),
    OpportunityStage.LOST: (),
}

TICKET_TRANSITIONS: Mapping[str, tuple[str, ...]] = {
    TicketStatus.OPEN: (TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED),
    TicketStatus.IN_PROGRESS: (TicketStatus.RESOLVED,),
    TicketStatus.RESOLVED: (TicketStatus.CLOSED, TicketStatus.OPEN, TicketStatus.IN_PROGRESS),
    TicketStatus.CLOSED: (),
}

_TABLES: Mapping[LifecycleKind, tuple[str, Mapping[str, tuple[str, ...]]]] = {
    LifecycleKind.OPPORTUNITY: ("stage", OPPORTUNITY_TRANSITIONS),
    LifecycleKind.TICKET: ("status", TICKET_TRANSITIONS),
}

# ticket states in which a satisfaction score may be given and `resolvedAt` is set
RESOLVED_STATUSES = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})


def allowed_next(kind: LifecycleKind | str, state: str) -> tuple[str, ...]:
    """States reachable in one step from `state` (empty for final states)."""
    field, table = _TABLES[LifecycleKind(kind)]
    if state not in table:
        raise FieldError(field, Rule.ENUM, f"{state!r} is not a {field}", tuple(table))
    return tuple(str(next_state) for next_state in table[state])


def is_final(kind: LifecycleKind | str, state: str) -> bool:
    return not allowed_next(kind, state)


def check_transition(kind: LifecycleKind | str, from_state: str, to_state: str) -> None:
    """Pass, or raise a TRANSITION `FieldError` whose suggestions are the allowed next states."""
    field, table = _TABLES[LifecycleKind(kind)]
    if to_state not in table:
        raise FieldError(field, Rule.ENUM, f"{to_state!r} is not a {field}", tuple(table))
    allowed = allowed_next(kind, from_state)
    if to_state == from_state or to_state in allowed:
        return
    options = ", ".join(allowed) if allowed else f"none, {from_state} is final"
    raise FieldError(
        field,
        Rule.TRANSITION,
        f"cannot move from {from_state} to {to_state}; allowed next: {options}",
        allowed,
    )


def resolution_change(from_status: str, to_status: str) -> bool | None:
    """How a ticket transition affects `resolvedAt`: True set it, False clear it, None keep it.

    Entering RESOLVED sets it; reopening (RESOLVED → OPEN/IN_PROGRESS) clears it together with
    the satisfaction score, which only describes a resolution; RESOLVED → CLOSED keeps it.
    """
    was = from_status in RESOLVED_STATUSES
    now = to_status in RESOLVED_STATUSES
    if to_status == TicketStatus.RESOLVED and from_status != TicketStatus.RESOLVED:
        return True
    if was and not now:
        return False
    return None
