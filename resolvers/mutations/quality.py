"""`Customer.quality`: the 3C score of `validation.quality`, batched per request.

The score looks at every field, readable or not (a phone the caller cannot see still makes the
record complete), but `missing` names only fields the caller may read on that row: listing
`idNumber` as missing would tell a caller who may not read it that it is empty.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.mutations.common import vocabularies
from resolvers.records import CUSTOMER, CUSTOMERS
from schema.quality import CustomerQuality
from validation.quality import quality

COLUMNS = ("id", "owner_id", "department_id", "name", "kind", "industry", "region", "level",
           "source", "tags", "credit_code", "phone_enc", "email", "id_number_enc", "address",
           "updated_at", "data_key", "email_enc", "address_enc")  # fmt: skip


class QualityLoader:
    def __init__(self, context: RequestContext) -> None:
        self.context = context
        self._loader: DataLoader[int, CustomerQuality | None] = DataLoader(load_fn=self._load)

    async def of(self, customer: Any) -> CustomerQuality | None:
        if "quality" in customer.withheld:
            self.context.deny("Customer.quality")
            return None
        return await self._loader.load(customer.pk)

    async def _load(self, pks: list[int]) -> list[CustomerQuality | None]:
        context = self.context
        decisions = context.decisions
        rows_allowed = decisions.rows(Resource.CUSTOMER, Action.READ)
        statement = select(*(CUSTOMERS.c[c] for c in COLUMNS)).where(
            CUSTOMERS.c.id.in_(sorted(set(pks))), rows_allowed.sql(CUSTOMER.scope_columns())
        )
        async with context.db.lock:
            session = context.db.session
            vocab = await vocabularies(session)
            rows = (await session.execute(statement)).all()
        now = datetime.now(UTC)
        found: dict[int, CustomerQuality] = {}
        for row in rows:
            values = dict(row._mapping)
            data_key = values.pop("data_key")
            for attribute in ("email", "address"):  # the clear column: values from before 0015
                sealed = values.pop(f"{attribute}_enc")
                if sealed is not None:
                    values[attribute] = context.cipher.decrypt(
                        f"customer.{attribute}", sealed, data_key
                    )
            values["phone"] = context.cipher.decrypt(
                "customer.phone", values.pop("phone_enc"), data_key
            )
            values["id_number"] = context.cipher.decrypt(
                "customer.id_number", values.pop("id_number_enc"), data_key
            )
            score = quality(values, now, vocabularies=vocab)
            facts = (row.owner_id, row.department_id, row.id)
            missing = [
                name
                for name in score.missing
                if decisions.field(Resource.CUSTOMER, name, Action.READ).holds_for(*facts)
            ]
            found[row.id] = CustomerQuality(score=score.score, missing=missing, stale=score.stale)
        return [found.get(pk) for pk in pks]
