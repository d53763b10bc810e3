"""mergeCustomers: two records of one real customer become one.

The kept record receives the merged one's contacts, opportunities, tickets and follow-ups and
its values for the kept record's empty fields (`validation.customer.merge_customer_values`);
the merged record is archived with `merged_into_id` pointing at the kept one, so old links can be
followed. The caller needs UPDATE on both records, write access to every field that gets filled
and UPDATE on every kind of child that moves; otherwise nothing changes. `totalSpend` is not
added up: spend belongs to invoices, and summing it would be a finance decision.

One MERGE event carries the full before and after of both records (sensitive values masked)
and the ids of every moved child.
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import func, select, update

from audit.events import AuditAction
from db.models import Contact, Interaction, Opportunity, Ticket
from db.models import Customer as CustomerRow
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import ForbiddenError
from resolvers.filters import pk_of
from resolvers.mutations.common import (
    audit_value,
    change_set,
    customer_facts,
    field_error,
    load_customer,
    require_writable,
    reread,
)
from resolvers.mutations.customer import API_NAMES, ATTRIBUTES, apply_values, stored_values
from resolvers.writes import record, require, write
from schema.customer import Customer
from validation.customer import merge_customer_values

CHILDREN: tuple[tuple[str, Resource, Any], ...] = (
    ("contacts", Resource.CONTACT, Contact),
    ("opportunities", Resource.OPPORTUNITY, Opportunity),
    ("tickets", Resource.TICKET, Ticket),
    ("interactions", Resource.INTERACTION, Interaction),
)


def _snapshot(row: CustomerRow, values: dict[str, Any]) -> dict[str, Any]:
    """Every field of a customer as the trail may hold it."""
    full = {name: audit_value(Resource.CUSTOMER, name, value) for name, value in values.items()}
    full |= {
        "ownerId": row.owner_id,
        "departmentId": row.department_id,
        "version": row.version,
        "archivedAt": row.archived_at,
        "mergedIntoId": row.merged_into_id,
        "lastInteractionAt": row.last_interaction_at,
    }
    return full


async def merge_customers(
    info: strawberry.Info, keep_id: strawberry.ID, merge_id: strawberry.ID
) -> Customer | None:
    context: RequestContext = info.context
    require(context, Resource.CUSTOMER, Action.UPDATE, "mergeCustomers")
    keep_pk = pk_of(keep_id, "Customer", "keepId")
    merge_pk = pk_of(merge_id, "Customer", "mergeId")
    if keep_pk == merge_pk:
        raise field_error("mergeId", "conflict", "a customer cannot be merged into itself")
    async with write(context) as session:
        # lock in id order: two merges of the same pair in opposite directions cannot deadlock
        rows = {}
        for pk in sorted((keep_pk, merge_pk)):
            rows[pk] = await load_customer(
                context, session, pk, Resource.CUSTOMER, Action.UPDATE, lock=True
            )
        keep, merged = rows[keep_pk], rows[merge_pk]
        keep_values = stored_values(keep, context.cipher)
        merged_values = stored_values(merged, context.cipher)
        filled = merge_customer_values(
            {ATTRIBUTES[k]: v for k, v in keep_values.items()},
            {ATTRIBUTES[k]: v for k, v in merged_values.items()},
        )
        filled_names = [API_NAMES[a] for a in filled]
        require_writable(
            context,
            Resource.CUSTOMER,
            "Customer",
            filled_names,
            Action.UPDATE,
            customer_facts(keep),
        )
        before = {
            "keep": _snapshot(keep, keep_values),
            "merged": _snapshot(merged, merged_values),
        }
        moved: dict[str, list[str]] = {}
        for field, resource, model in CHILDREN:
            ids = list(
                (
                    await session.execute(select(model.id).where(model.customer_id == merge_pk))
                ).scalars()
            )
            if not ids:
                continue
            allowed = context.decisions.rows(resource, Action.UPDATE)
            if not (
                allowed.holds_for(*customer_facts(keep))
                and allowed.holds_for(*customer_facts(merged))
            ):
                raise ForbiddenError(f"Customer.{field}", f"Not allowed to move {field}")
            values: dict[str, Any] = {"customer_id": keep_pk}
            if hasattr(model, "version"):
                values["version"] = model.version + 1
            await session.execute(
                update(model).where(model.customer_id == merge_pk).values(**values)
            )
            moved[field] = [str(i) for i in sorted(ids)]
        now = (await session.execute(select(func.now()))).scalar_one()
        apply_values(keep, filled, context.cipher)
        latest = [t for t in (keep.last_interaction_at, merged.last_interaction_at) if t]
        keep.last_interaction_at = max(latest) if latest else None
        keep.version = keep.version + 1
        merged.archived_at = now
        merged.merged_into_id = keep_pk
        merged.version = merged.version + 1
        await session.flush()
        await session.refresh(keep)
        await session.refresh(merged)
        after = {
            "keep": _snapshot(keep, stored_values(keep, context.cipher)),
            "merged": _snapshot(merged, merged_values),
        }
        filled_changes = change_set(
            Resource.CUSTOMER, keep_values, {API_NAMES[a]: v for a, v in filled.items()}
        )
        await record(context, session, AuditAction.MERGE, "customer", [keep_pk, merge_pk],
                     changes={"before": before, "after": after, "filled": filled_changes,
                              "moved": moved},
                     fields=filled_names)  # fmt: skip
    return await reread(info, "Customer", keep_pk)  # type: ignore[no-any-return]


@strawberry.type
class MergeMutation:
    @strawberry.mutation(description="Needs UPDATE on both; the merged record is archived.")
    async def merge_customers(
        self, info: strawberry.Info, keep_id: strawberry.ID, merge_id: strawberry.ID
    ) -> Customer | None:
        return await merge_customers(info, keep_id, merge_id)
