"""Root reads of customers."""

from __future__ import annotations

import strawberry

from policy.decisions import AccessDecisions
from resolvers.filters import (
    CUSTOMER_FILTERS,
    compile_filter,
    compile_ordering,
    custom_field_ordering,
    pk_of,
)
from resolvers.pagination import argument_given
from resolvers.reader import Ordering
from resolvers.records import CUSTOMER, CUSTOMERS
from resolvers.selection import requested_connection
from schema.customer import Customer
from schema.filters import CustomerFilter, CustomerOrder, CustomerOrderField
from schema.node import Connection

ORDER_COLUMNS = {
    CustomerOrderField.ID: CUSTOMERS.c.id,
    CustomerOrderField.NAME: CUSTOMERS.c.name,
    CustomerOrderField.CREATED_AT: CUSTOMERS.c.created_at,
    CustomerOrderField.UPDATED_AT: CUSTOMERS.c.updated_at,
    CustomerOrderField.TOTAL_SPEND: CUSTOMERS.c.total_spend,
    CustomerOrderField.LEVEL: CUSTOMERS.c.level,
}


def customer_ordering(
    decisions: AccessDecisions, order_by: CustomerOrder | None
) -> Ordering | None:
    if order_by is None:
        return None
    if order_by.custom_field is not None:
        return custom_field_ordering(CUSTOMER, decisions, order_by.custom_field, order_by.direction)
    column = ORDER_COLUMNS[order_by.field]
    return compile_ordering(CUSTOMER, decisions, order_by.field.value, column, order_by.direction)


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="Customers in the caller's scope; fields masked by policy.")
    async def customers(
        self,
        info: strawberry.Info,
        first: int | None = 50,
        after: str | None = None,
        filter: CustomerFilter | None = None,
        order_by: CustomerOrder | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Customer]:
        context = info.context
        where = compile_filter(
            CUSTOMER, context.decisions, CUSTOMER_FILTERS, filter, context.cipher
        )
        ordering = customer_ordering(context.decisions, order_by)
        requested = requested_connection(info, "Customer")
        return await context.reader.page(  # type: ignore[no-any-return]
            CUSTOMER, requested, first=first, after=after, where=where, ordering=ordering,
            last=last, before=before, first_given=argument_given(info, "first"),
        )  # fmt: skip

    @strawberry.field(description="One customer, or null when it is not in the caller's scope.")
    async def customer(self, info: strawberry.Info, id: strawberry.ID) -> Customer | None:
        return await info.context.reader.one(info, "Customer", pk_of(id, "Customer", "id"))  # type: ignore[no-any-return]
