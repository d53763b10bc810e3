"""Suspected duplicate customers, for clean-up."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

if TYPE_CHECKING:
    from schema.customer import Customer


@strawberry.enum(description="What two customer records share.")
class DuplicateReason(Enum):
    CREDIT_CODE = "CREDIT_CODE"
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    ID_NUMBER = "ID_NUMBER"
    NAME = "NAME"  # a very similar company name in the same region
    CUSTOM_FIELD = "CUSTOM_FIELD"  # the same value of a custom field marked unique


@strawberry.type(description="Two customers that look like one; `reasons` says why.")
class DuplicatePair:
    reasons: list[DuplicateReason]
    similarity: float | None = strawberry.field(
        default=None, description="Name similarity in [0, 1] when a name matched."
    )
    left_pk: strawberry.Private[int] = 0
    right_pk: strawberry.Private[int] = 0

    @strawberry.field
    async def left(
        self, info: strawberry.Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customer")] | None:
        return await info.context.reader.one(info, "Customer", self.left_pk)  # type: ignore[no-any-return]

    @strawberry.field
    async def right(
        self, info: strawberry.Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customer")] | None:
        return await info.context.reader.one(info, "Customer", self.right_pk)  # type: ignore[no-any-return]
