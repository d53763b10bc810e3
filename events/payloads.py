"""A changed record as a given principal may read it: the GraphQL query path, the same mask.

The payload of a webhook delivery (and the check behind a subscription message) is not built
from the row: it is the answer to `node(id) { ... on <Type> { <every column field> } }` executed
through the application's schema with the reader's own decisions, so the row scope, the field
rules, partner scopes and shared customers apply exactly as to the same principal's query. A
field the principal may not read is left out (not sent as null); a record outside its scope is
not there. A record that has just been archived or merged away is no longer readable by anyone;
then the payload is `{"id": ...}` alone, and only when the record's row facts are still inside
the principal's READ scope (the reader's own scope predicate, without the liveness filter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.crypto import FieldCipher
from policy.decisions import AccessDecisions
from policy.store import PolicyStore
from policy.vocabulary import Action
from resolvers.context import RequestContext, RequestDatabase, RequestMeta
from resolvers.records import SPECS
from schema.node import to_global_id

TYPE_OF_RESOURCE = {spec.resource.value: spec.type_name for spec in SPECS.values()}


@dataclass
class Seen:
    """What a principal may see of one record now."""

    data: dict[str, Any] | None  # None: nothing (outside its scope, or no such record)
    fields: list[str] = field(default_factory=list)  # the fields `data` carries
    gone: bool = False  # archived or merged away: `data` is the id alone


@cache
def record_query(type_name: str) -> str:
    spec = SPECS[type_name]
    names = " ".join(name for name, f in spec.fields.items() if f.column is not None)
    return f"query($id: ID!) {{ node(id: $id) {{ id ... on {type_name} {{ {names} }} }} }}"


async def _in_scope_though_gone(
    session: AsyncSession, decisions: AccessDecisions, type_name: str, pk: int
) -> bool:
    spec = SPECS[type_name]
    allowed = decisions.rows(spec.resource, Action.READ)
    if allowed.is_never:
        return False
    statement = (
        select(spec.table.c.id)
        .select_from(spec.from_clause())
        .where(and_(spec.table.c.id == pk, allowed.sql(spec.scope_columns())))
    )
    return (await session.execute(statement)).first() is not None


async def read_as(
    *,
    schema: Any,
    sessions: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    store: PolicyStore,
    decisions: AccessDecisions,
    resource_type: str,
    resource_id: str,
    operation: str,
) -> Seen:
    """The record as `decisions.principal` may read it, through the schema."""
    type_name = TYPE_OF_RESOURCE.get(resource_type)
    if type_name is None or not resource_id.isdigit():
        return Seen(None)
    global_id = to_global_id(type_name, resource_id)
    db = RequestDatabase(sessions)
    context = RequestContext(
        principal=decisions.principal,
        decisions=decisions,
        db=db,
        cipher=cipher,
        policy_store=store,
        meta=RequestMeta(operation=operation),
    )
    try:
        result = await schema.execute(
            record_query(type_name), variable_values={"id": global_id}, context_value=context
        )
        node = (result.data or {}).get("node")
        if node is None:
            gone = await _in_scope_though_gone(db.session, decisions, type_name, int(resource_id))
            return Seen({"id": global_id}, ["id"], gone=True) if gone else Seen(None)
    finally:
        await db.close()
    denied = {name.split(".", 1)[1] for name in context.denials if name.startswith(f"{type_name}.")}
    # a field that answered with an error (FORBIDDEN or anything else) is left out as well
    denied |= {str(e.path[1]) for e in result.errors or () if e.path and len(e.path) > 1}
    data = {"__typename": type_name}
    data.update({k: v for k, v in node.items() if k not in denied})
    return Seen(data, sorted(k for k in data if k != "__typename"))
