"""What happened with a customer, newest first: follow-ups, stage moves, tickets, money."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from schema.enums import OpportunityStage
from schema.node import Connection, Node


@strawberry.type(description="One move of an opportunity between stages.")
class StageChange:
    from_: OpportunityStage | None = strawberry.field(default=None, name="from")
    to: OpportunityStage | None = None
    at: datetime | None = None
    by: str | None = None


@strawberry.enum
class TimelineKind(Enum):
    INTERACTION = "INTERACTION"
    STAGE_CHANGE = "STAGE_CHANGE"
    TICKET = "TICKET"
    CONTRACT = "CONTRACT"
    PAYMENT = "PAYMENT"


@strawberry.type(description="One item of a customer's timeline; `node` is the record itself.")
class TimelineItem:
    at: datetime | None
    kind: TimelineKind
    stage_change: StageChange | None = None
    type_name: strawberry.Private[str] = ""
    pk: strawberry.Private[int] = 0

    @strawberry.field(description="The interaction, opportunity, ticket, contract or payment.")
    async def node(self, info: strawberry.Info) -> Node | None:
        return await info.context.reader.one(info, self.type_name, self.pk)  # type: ignore[no-any-return]


@strawberry.type(name="TimelineConnection")
class TimelineConnection(Connection[TimelineItem]):
    pass
