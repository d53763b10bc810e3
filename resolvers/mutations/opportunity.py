"""createOpportunity, updateOpportunity; every stage move is kept in the stage history."""

from __future__ import annotations

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from audit.events import AuditAction
from db.models import Opportunity as OpportunityRow
from db.models import OpportunityStageChange
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.mutations.children import (
    ChildKind,
    prepare_create,
    prepare_update,
    record_change,
    validated,
)
from resolvers.mutations.common import check_version, existing_user, reread, touch_customer
from resolvers.writes import require, write
from schema.inputs import OpportunityInput, OpportunityPatch
from schema.opportunity import Opportunity
from validation.opportunity import validate_opportunity_input, validate_opportunity_patch

OPPORTUNITY = ChildKind(
    type_name="Opportunity",
    resource=Resource.OPPORTUNITY,
    model=OpportunityRow,
    attributes={"name": "name", "stage": "stage", "amount": "amount",
                "expectedCloseDate": "expected_close_date"},
    references={"ownerId": ("owner", "owner_id")},
)  # fmt: skip


async def _stage_moved(
    context: RequestContext, session: AsyncSession, pk: int, old: str | None, new: str
) -> None:
    session.add(
        OpportunityStageChange(
            opportunity_id=pk, from_stage=old, to_stage=new, actor=context.principal.name
        )
    )


@strawberry.type
class OpportunityMutation:
    @strawberry.mutation(description="The owner defaults to the caller.")
    async def create_opportunity(
        self, info: strawberry.Info, input: OpportunityInput
    ) -> Opportunity | None:
        context: RequestContext = info.context
        require(context, Resource.OPPORTUNITY, Action.CREATE, "createOpportunity")
        async with write(context) as session:
            prepared = await prepare_create(context, session, OPPORTUNITY, input)
            values = validated(lambda: validate_opportunity_input(prepared.data)).changes()
            owner = context.principal.user_id
            if prepared.references.get("ownerId") is not None:
                owner = await existing_user(session, prepared.references["ownerId"], "ownerId")
            row = OpportunityRow(customer_id=prepared.facts[2], owner_id=owner, version=1)
            OPPORTUNITY.apply(row, values, context.cipher)
            custom_before, custom_after = prepared.write_custom(
                context, OPPORTUNITY, row, creating=True
            )
            session.add(row)
            await session.flush()
            await _stage_moved(context, session, row.id, None, str(values["stage"]))
            await touch_customer(session, row.customer_id)
            after = {OPPORTUNITY.api_names[a]: v for a, v in values.items()} | {"ownerId": owner}
            await record_change(context, session, OPPORTUNITY, AuditAction.CREATE, row,
                                custom_before, after | custom_after)  # fmt: skip
            pk = row.id
        return await reread(info, "Opportunity", pk)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Stages move forward only; WON and LOST are final.")
    async def update_opportunity(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        input: OpportunityPatch,
        expected_version: int | None = None,
    ) -> Opportunity | None:
        context: RequestContext = info.context
        require(context, Resource.OPPORTUNITY, Action.UPDATE, "updateOpportunity")
        async with write(context) as session:
            row, prepared = await prepare_update(context, session, OPPORTUNITY, id, input)
            values = validated(
                lambda: validate_opportunity_patch({"stage": row.stage}, prepared.data)
            ).changes()
            check_version(row, "opportunity", expected_version)
            before = OPPORTUNITY.values_of(row, context.cipher)
            after = {OPPORTUNITY.api_names[a]: v for a, v in values.items()}
            if "ownerId" in prepared.references:
                owner = prepared.references["ownerId"]
                after["ownerId"] = (
                    None if owner is None else await existing_user(session, owner, "ownerId")
                )
                row.owner_id = after["ownerId"]
            old_stage = row.stage
            OPPORTUNITY.apply(row, values, context.cipher)
            custom_before, custom_after = prepared.write_custom(
                context, OPPORTUNITY, row, creating=False
            )
            row.version = row.version + 1
            if "stage" in values and str(values["stage"]) != old_stage:
                await _stage_moved(context, session, row.id, old_stage, str(values["stage"]))
            await session.flush()
            await touch_customer(session, row.customer_id)
            await record_change(
                context, session, OPPORTUNITY, AuditAction.UPDATE, row,
                before | custom_before, after | custom_after,
            )  # fmt: skip
            pk = row.id
        return await reread(info, "Opportunity", pk)  # type: ignore[no-any-return]
