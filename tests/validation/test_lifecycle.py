from __future__ import annotations

from itertools import product

import pytest

from validation.errors import FieldError, Rule
from validation.lifecycle import (
    LifecycleKind,
    OpportunityStage,
    TicketStatus,
    allowed_next,
    check_transition,
    resolution_change,
)

S = OpportunityStage
T = TicketStatus

LEGAL_OPPORTUNITY = {
    (S.LEAD, S.QUALIFIED), (S.LEAD, S.PROPOSAL), (S.LEAD, S.NEGOTIATION),
    (S.LEAD, S.WON), (S.LEAD, S.LOST),
    (S.QUALIFIED, S.PROPOSAL), (S.QUALIFIED, S.NEGOTIATION), (S.QUALIFIED, S.WON),
    (S.QUALIFIED, S.LOST),
    (S.PROPOSAL, S.NEGOTIATION), (S.PROPOSAL, S.WON), (S.PROPOSAL, S.LOST),
    (S.NEGOTIATION, S.WON), (S.NEGOTIATION, S.LOST),
}  # fmt: skip
LEGAL_TICKET = {
    (T.OPEN, T.IN_PROGRESS), (T.OPEN, T.RESOLVED),
    (T.IN_PROGRESS, T.RESOLVED),
    (T.RESOLVED, T.CLOSED), (T.RESOLVED, T.OPEN), (T.RESOLVED, T.IN_PROGRESS),
}  # fmt: skip

ILLEGAL_OPPORTUNITY = [
    (a, b) for a, b in product(S, S) if a != b and (a, b) not in LEGAL_OPPORTUNITY
]
ILLEGAL_TICKET = [(a, b) for a, b in product(T, T) if a != b and (a, b) not in LEGAL_TICKET]


@pytest.mark.parametrize(("from_stage", "to_stage"), sorted(LEGAL_OPPORTUNITY))
def test_forward_opportunity_moves_pass(from_stage: str, to_stage: str) -> None:
    check_transition(LifecycleKind.OPPORTUNITY, from_stage, to_stage)


@pytest.mark.parametrize(("from_stage", "to_stage"), ILLEGAL_OPPORTUNITY)
def test_every_illegal_opportunity_move_names_the_allowed_stages(
    from_stage: str, to_stage: str
) -> None:
    with pytest.raises(FieldError) as caught:
        check_transition(LifecycleKind.OPPORTUNITY, from_stage, to_stage)
    error = caught.value
    assert (error.field, error.rule) == ("stage", Rule.TRANSITION)
    assert error.suggestions == allowed_next(LifecycleKind.OPPORTUNITY, from_stage)
    for stage in error.suggestions:
        assert stage in error.message


@pytest.mark.parametrize(("from_status", "to_status"), sorted(LEGAL_TICKET))
def test_legal_ticket_moves_pass(from_status: str, to_status: str) -> None:
    check_transition(LifecycleKind.TICKET, from_status, to_status)


@pytest.mark.parametrize(("from_status", "to_status"), ILLEGAL_TICKET)
def test_every_illegal_ticket_move_names_the_allowed_states(
    from_status: str, to_status: str
) -> None:
    with pytest.raises(FieldError) as caught:
        check_transition(LifecycleKind.TICKET, from_status, to_status)
    error = caught.value
    assert (error.field, error.rule) == ("status", Rule.TRANSITION)
    assert error.suggestions == allowed_next(LifecycleKind.TICKET, from_status)


def test_final_states_say_so() -> None:
    with pytest.raises(FieldError) as caught:
        check_transition("opportunity", "WON", "LOST")
    assert "WON is final" in caught.value.message
    assert caught.value.suggestions == ()


@pytest.mark.parametrize("kind", list(LifecycleKind))
def test_staying_in_a_state_is_no_transition(kind: LifecycleKind) -> None:
    for state in OpportunityStage if kind is LifecycleKind.OPPORTUNITY else TicketStatus:
        check_transition(kind, state, state)


def test_unknown_state_is_an_enum_error() -> None:
    with pytest.raises(FieldError) as caught:
        check_transition("ticket", "OPEN", "DONE")
    assert caught.value.rule == Rule.ENUM
    assert "CLOSED" in caught.value.suggestions


def test_resolution_time_follows_the_transition() -> None:
    assert resolution_change("IN_PROGRESS", "RESOLVED") is True
    assert resolution_change("OPEN", "RESOLVED") is True
    assert resolution_change("RESOLVED", "OPEN") is False
    assert resolution_change("RESOLVED", "CLOSED") is None
    assert resolution_change("OPEN", "IN_PROGRESS") is None
