"""createInteraction: a follow-up (跟进记录), which moves the customer's `lastInteractionAt`."""

from __future__ import annotations

import strawberry

from audit.events import AuditAction
from db.models import Interaction as InteractionRow
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.mutations.children import ChildKind, prepare_create, record_change, validated
from resolvers.mutations.common import reread, touch_customer
from resolvers.reminders import FOLLOW_UP, remind_now
from resolvers.writes import require, write
from schema.inputs import InteractionInput
from schema.interaction import Interaction
from validation.interaction import validate_interaction_input

INTERACTION = ChildKind(
    type_name="Interaction",
    resource=Resource.INTERACTION,
    model=InteractionRow,
    attributes={"channel": "channel", "summary": "summary", "occurredAt": "occurred_at",
                "nextFollowUpOn": "next_follow_up_on"},
)  # fmt: skip


@strawberry.type
class InteractionMutation:
    @strawberry.mutation(description="The author is the caller; the time defaults to now.")
    async def create_interaction(
        self, info: strawberry.Info, input: InteractionInput
    ) -> Interaction | None:
        context: RequestContext = info.context
        require(context, Resource.INTERACTION, Action.CREATE, "createInteraction")
        async with write(context) as session:
            prepared = await prepare_create(context, session, INTERACTION, input)
            values = validated(lambda: validate_interaction_input(prepared.data)).changes()
            if values.get("occurred_at") is None:
                values.pop("occurred_at", None)  # the database clock, like every other time
            row = InteractionRow(customer_id=prepared.facts[2], author_id=context.principal.user_id)
            INTERACTION.apply(row, values, context.cipher)
            session.add(row)
            await session.flush()
            await touch_customer(session, row.customer_id, values.get("occurred_at"))
            after = {INTERACTION.api_names[a]: v for a, v in values.items()}
            after["authorId"] = row.author_id
            await record_change(context, session, INTERACTION, AuditAction.CREATE, row, {}, after)
            # a follow-up date already due gets its reminder task now, not at the next pass
            context.extras["savepoint_events"].extend(
                await remind_now(session, FOLLOW_UP, [row.id])
            )
            pk = row.id
        return await reread(info, "Interaction", pk)  # type: ignore[no-any-return]
