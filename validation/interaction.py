"""Interaction (跟进记录) input: a follow-up with a customer by call, visit, e-mail, WeChat or
meeting, with a summary, when it happened and optionally when to follow up next."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from validation.dates import CHINA_TIME, normalise_date, normalise_datetime
from validation.errors import ErrorCollector, FieldError, Rule
from validation.fields import FieldSpec, choice, normalise_fields
from validation.text import normalise_paragraph

# clocks of browsers and import machines drift; a follow-up minutes "in the future" is fine
CLOCK_SKEW = timedelta(minutes=5)


class InteractionChannel(StrEnum):
    CALL = "CALL"
    VISIT = "VISIT"
    EMAIL = "EMAIL"
    WECHAT = "WECHAT"
    MEETING = "MEETING"


_CHANNEL_ALIASES = {
    "电话": InteractionChannel.CALL,
    "phone": InteractionChannel.CALL,
    "拜访": InteractionChannel.VISIT,
    "上门": InteractionChannel.VISIT,
    "邮件": InteractionChannel.EMAIL,
    "e-mail": InteractionChannel.EMAIL,
    "微信": InteractionChannel.WECHAT,
    "企业微信": InteractionChannel.WECHAT,
    "会议": InteractionChannel.MEETING,
    "会面": InteractionChannel.MEETING,
}

INTERACTION_FIELDS = (
    FieldSpec("channel", "channel", choice(InteractionChannel, _CHANNEL_ALIASES), required=True),
    FieldSpec(
        "summary",
        "summary",
        lambda v, f: normalise_paragraph(v, f, max_length=10_000),
        required=True,
    ),
    FieldSpec("occurredAt", "occurred_at", lambda v, f: normalise_datetime(v, field=f)),
    FieldSpec("nextFollowUpOn", "next_follow_up_on", lambda v, f: normalise_date(v, field=f)),
)


@dataclass(frozen=True, kw_only=True)
class NormalisedInteraction:
    channel: InteractionChannel | None = None
    summary: str | None = None
    occurred_at: datetime | None = None
    next_follow_up_on: date | None = None
    present: frozenset[str] = frozenset()

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.present}


def validate_interaction_input(
    data: Mapping[str, Any], *, now: datetime | None = None, ignore: Collection[str] = ()
) -> NormalisedInteraction:
    """Normalise a follow-up: not in the future, and the next follow-up not before it (both
    compared in China time, the calendar the sales team works by)."""
    now = now or datetime.now(UTC)
    errors = ErrorCollector()
    values = normalise_fields(data, INTERACTION_FIELDS, errors, partial=False, ignore=ignore)
    occurred = values.get("occurred_at")
    if occurred is not None and occurred > now + CLOCK_SKEW:
        errors.add(FieldError("occurredAt", Rule.RANGE, "must not be in the future"))
    follow_up = values.get("next_follow_up_on")
    day = (occurred or now).astimezone(CHINA_TIME).date()
    if follow_up is not None and follow_up < day:
        errors.add(
            FieldError("nextFollowUpOn", Rule.RANGE, f"must not be before the follow-up ({day})")
        )
    errors.raise_if_any()
    return NormalisedInteraction(**values, present=frozenset(values))
