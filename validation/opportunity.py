"""Opportunity input: name, stage, amount and expected close date; stage moves per lifecycle."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from validation.amounts import normalise_amount
from validation.dates import normalise_date
from validation.errors import ErrorCollector
from validation.fields import FieldSpec, choice, normalise_fields, present_keys
from validation.lifecycle import LifecycleKind, OpportunityStage, check_transition
from validation.text import normalise_line

_STAGE_ALIASES = {
    "线索": OpportunityStage.LEAD,
    "已确认": OpportunityStage.QUALIFIED,
    "合格": OpportunityStage.QUALIFIED,
    "方案": OpportunityStage.PROPOSAL,
    "报价": OpportunityStage.PROPOSAL,
    "谈判": OpportunityStage.NEGOTIATION,
    "商务谈判": OpportunityStage.NEGOTIATION,
    "赢单": OpportunityStage.WON,
    "成交": OpportunityStage.WON,
    "输单": OpportunityStage.LOST,
    "丢单": OpportunityStage.LOST,
}

OPPORTUNITY_FIELDS = (
    FieldSpec("name", "name", lambda v, f: normalise_line(v, f, max_length=300), required=True),
    FieldSpec(
        "stage",
        "stage",
        choice(OpportunityStage, _STAGE_ALIASES),
        required=True,
        default=OpportunityStage.LEAD,
        has_default=True,
    ),
    FieldSpec("amount", "amount", lambda v, f: normalise_amount(v, field=f)),
    FieldSpec("expectedCloseDate", "expected_close_date", lambda v, f: normalise_date(v, field=f)),
)


@dataclass(frozen=True, kw_only=True)
class NormalisedOpportunity:
    name: str | None = None
    stage: OpportunityStage | None = None
    amount: Decimal | None = None
    expected_close_date: date | None = None
    present: frozenset[str] = frozenset()

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.present}


def validate_opportunity_input(
    data: Mapping[str, Any], *, partial: bool = False, ignore: Collection[str] = ()
) -> NormalisedOpportunity:
    """Normalise an opportunity create; any stage may be given (imports carry history), the
    default is LEAD. For updates use `validate_opportunity_patch`, which checks the move."""
    errors = ErrorCollector()
    # a required field with a default is only "required" in that it cannot be cleared
    values = normalise_fields(data, OPPORTUNITY_FIELDS, errors, partial=partial, ignore=ignore)
    errors.raise_if_any()
    return NormalisedOpportunity(**values, present=frozenset(values))


def validate_opportunity_patch(
    existing: Mapping[str, Any], patch: Mapping[str, Any], *, ignore: Collection[str] = ()
) -> NormalisedOpportunity:
    """Normalise an update and check the stage move against the stored stage.

    A stage change is the caller's cue to write an `OpportunityStageChange` row.
    """
    errors = ErrorCollector()
    values = normalise_fields(patch, OPPORTUNITY_FIELDS, errors, partial=True, ignore=ignore)
    current = present_keys(existing, OPPORTUNITY_FIELDS).get("stage")
    new = values.get("stage")
    if current is not None and new is not None:
        errors.run(lambda: check_transition(LifecycleKind.OPPORTUNITY, str(current), str(new)))
    errors.raise_if_any()
    return NormalisedOpportunity(**values, present=frozenset(values))
