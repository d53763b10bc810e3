"""Contacts, opportunities, tickets and interactions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from validation.contact import validate_contact_input
from validation.errors import Rule, ValidationFailed
from validation.interaction import InteractionChannel, validate_interaction_input
from validation.lifecycle import OpportunityStage, TicketStatus
from validation.opportunity import validate_opportunity_input, validate_opportunity_patch
from validation.ticket import TicketPriority, validate_ticket_input, validate_ticket_patch


def rules(caught: pytest.ExceptionInfo[ValidationFailed]) -> set[tuple[str, str]]:
    return {(error.field, error.rule) for error in caught.value.errors}


def test_contact_needs_a_name_and_checks_phone_and_email() -> None:
    contact = validate_contact_input(
        {"name": " 王 经理 ", "phone": "139-0013-9000", "isDecisionMaker": "是"}
    )
    assert contact.changes() == {
        "name": "王 经理",
        "phone": "+8613900139000",
        "is_decision_maker": True,
    }
    with pytest.raises(ValidationFailed) as caught:
        validate_contact_input({"phone": "123", "email": "x", "isDecisionMaker": "maybe"})
    assert rules(caught) == {
        ("name", Rule.REQUIRED),
        ("phone", Rule.FORMAT),
        ("email", Rule.FORMAT),
        ("isDecisionMaker", Rule.TYPE),
    }


def test_contact_patch_checks_only_what_it_changes() -> None:
    assert validate_contact_input({"title": "CTO"}, partial=True).changes() == {"title": "CTO"}


def test_opportunity_defaults_to_lead_and_normalises_amount_and_date() -> None:
    opportunity = validate_opportunity_input(
        {"name": "ERP 升级", "amount": "250,000", "expectedCloseDate": "2027/3/31"}
    )
    assert opportunity.stage is OpportunityStage.LEAD
    assert opportunity.amount == Decimal("250000.00")
    assert opportunity.expected_close_date == date(2027, 3, 31)


def test_opportunity_errors_are_reported_together() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_opportunity_input(
            {"name": "", "stage": "MAYBE", "amount": "1.234", "expectedCloseDate": "2027-02-30"}
        )
    assert rules(caught) == {
        ("name", Rule.REQUIRED),
        ("stage", Rule.ENUM),
        ("amount", Rule.PRECISION),
        ("expectedCloseDate", Rule.FORMAT),
    }


def test_opportunity_patch_checks_the_stage_move() -> None:
    existing = {"stage": "PROPOSAL", "name": "ERP"}
    assert validate_opportunity_patch(existing, {"stage": "赢单"}).stage is OpportunityStage.WON
    with pytest.raises(ValidationFailed) as caught:
        validate_opportunity_patch(existing, {"stage": "LEAD", "amount": "-1"})
    assert rules(caught) == {("stage", Rule.TRANSITION), ("amount", Rule.RANGE)}
    transition = next(e for e in caught.value.errors if e.rule == Rule.TRANSITION)
    assert transition.suggestions == ("NEGOTIATION", "WON", "LOST")


def test_ticket_defaults_and_satisfaction_range() -> None:
    ticket = validate_ticket_input({"title": "无法登录"})
    assert (ticket.status, ticket.priority) == (TicketStatus.OPEN, TicketPriority.NORMAL)
    assert ticket.resolved_at_change is None
    with pytest.raises(ValidationFailed) as caught:
        validate_ticket_input({"title": "x", "status": "RESOLVED", "satisfaction": 6})
    assert rules(caught) == {("satisfaction", Rule.RANGE)}


def test_satisfaction_only_once_resolved() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_ticket_input({"title": "x", "satisfaction": 5})
    assert rules(caught) == {("satisfaction", Rule.NOT_ALLOWED)}
    with pytest.raises(ValidationFailed) as caught:
        validate_ticket_patch({"status": "IN_PROGRESS"}, {"satisfaction": "4"})
    assert rules(caught) == {("satisfaction", Rule.NOT_ALLOWED)}
    resolved = validate_ticket_patch(
        {"status": "IN_PROGRESS"}, {"status": "RESOLVED", "satisfaction": "4"}
    )
    assert resolved.satisfaction == 4 and resolved.resolved_at_change is True


def test_reopening_clears_satisfaction_and_resolution() -> None:
    reopened = validate_ticket_patch({"status": "RESOLVED", "satisfaction": 2}, {"status": "OPEN"})
    assert reopened.changes() == {"status": TicketStatus.OPEN, "satisfaction": None}
    assert reopened.resolved_at_change is False
    with pytest.raises(ValidationFailed) as caught:
        validate_ticket_patch({"status": "RESOLVED"}, {"status": "OPEN", "satisfaction": 3})
    assert rules(caught) == {("satisfaction", Rule.NOT_ALLOWED)}


def test_ticket_cannot_be_closed_without_being_resolved() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_ticket_patch({"status": "IN_PROGRESS"}, {"status": "CLOSED"})
    (error,) = caught.value.errors
    assert (error.field, error.rule, error.suggestions) == (
        "status",
        Rule.TRANSITION,
        ("RESOLVED",),
    )


NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_interaction_is_normalised_to_utc_and_china_calendar() -> None:
    interaction = validate_interaction_input(
        {
            "channel": "微信",
            "summary": "  约了下周演示 ",
            "occurredAt": "2026-11-23 09:30",
            "nextFollowUpOn": "2026-11-30",
        },
        now=NOW,
    )
    assert interaction.channel is InteractionChannel.WECHAT
    assert interaction.summary == "约了下周演示"
    assert interaction.occurred_at == datetime(2026, 11, 23, 1, 30, tzinfo=UTC)


def test_interaction_rules() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_interaction_input(
            {
                "channel": "fax",
                "summary": "",
                "occurredAt": "2026-11-24T09:00:00+08:00",
                "nextFollowUpOn": "2026-11-20",
            },
            now=NOW,
        )
    assert rules(caught) == {
        ("channel", Rule.ENUM),
        ("summary", Rule.REQUIRED),
        ("occurredAt", Rule.RANGE),
        ("nextFollowUpOn", Rule.RANGE),
    }
