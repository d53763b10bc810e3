"""`explainRecordAccess` and `roleAssignments`: what `explainAccess` says, applied to one record.

`explainAccess` answers for a resource (ALL, SOME or NONE of its rows). For SOME, an admin's
next question is "and this record?": the record's scope facts (owner, department, customer) are
read with the same `RecordSpec` the readers use and the user's row and field predicates are
evaluated on them. Nothing of the record's content is returned. Both queries need READ on
`policy`, like `explainAccess`, and are audited as reads of `policy`.
"""

from __future__ import annotations

import strawberry
from sqlalchemy import and_, select

from db.models import User as UserRow
from policy.decisions import AccessDecisions
from policy.principal import Principal, PrincipalKind
from policy.vocabulary import FIELDS, Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, NotFoundError
from resolvers.records import SPECS
from resolvers.writes import require
from schema import admin as admin_types
from schema.access_record import RecordAccess, UserRoleAssignment
from schema.node import InvalidGlobalIdError, from_global_id, to_global_id


def _principal_of_row(row: object) -> Principal:
    return Principal(PrincipalKind.USER, row.username, row.id, row.department_id)  # type: ignore[attr-defined]


async def explain_record_access(
    context: RequestContext,
    username: str,
    record_id: strawberry.ID,
    action: admin_types.Action,
    field: str | None,
) -> RecordAccess:
    require(context, Resource.POLICY, Action.READ, "explainRecordAccess")
    try:
        type_name, pk_text = from_global_id(record_id)
        spec = SPECS[type_name]
        pk = int(pk_text)
    except (InvalidGlobalIdError, KeyError, ValueError):
        raise BadUserInputError("not a record id", argument="recordId") from None
    if field is not None and field not in FIELDS.get(spec.resource, ()):
        raise BadUserInputError(f"{type_name} has no field {field!r}", argument="field")
    user = (
        await context.db.execute(
            select(UserRow.id, UserRow.username, UserRow.department_id, UserRow.is_active).where(
                UserRow.username == username
            )
        )
    ).first()
    if user is None:
        raise NotFoundError("user")
    facts = spec.scope_columns()
    statement = (
        select(
            facts.owner_id.label("owner_id"),
            facts.department_id.label("department_id"),
            facts.customer_id.label("customer_id"),
        )
        .select_from(spec.from_clause())
        .where(and_(spec.table.c.id == pk, *spec.live()))
    )
    found = (await context.db.execute(statement)).first()
    if found is None:
        raise NotFoundError("record")
    decisions = AccessDecisions(_principal_of_row(user), context.decisions.snapshot)
    verb = Action(action.value)
    in_scope = bool(user.is_active) and decisions.rows(spec.resource, verb).holds_for(
        found.owner_id, found.department_id, found.customer_id
    )
    field_allowed = None
    if field is not None:
        field_allowed = in_scope and decisions.field(spec.resource, field, verb).holds_for(
            found.owner_id, found.department_id, found.customer_id
        )
    context.reads.note(Resource.POLICY.value, (), ["explainRecordAccess"])
    return RecordAccess(
        username=username,
        record_id=record_id,
        in_scope=in_scope,
        field=field,
        field_allowed=field_allowed,
    )


@strawberry.type
class RecordAccessQuery:
    @strawberry.field(
        description="Whether a user reaches one record (and one field of it) under the current "
        "rules. Needs READ on policy."
    )
    async def explain_record_access(
        self,
        info: strawberry.Info,
        username: str,
        record_id: strawberry.ID,
        action: admin_types.Action = admin_types.Action.READ,
        field: str | None = None,
    ) -> RecordAccess:
        return await explain_record_access(info.context, username, record_id, action, field)

    @strawberry.field(
        description="Every role held by every user, by department. Needs READ on policy."
    )
    async def role_assignments(self, info: strawberry.Info) -> list[UserRoleAssignment]:
        context: RequestContext = info.context
        require(context, Resource.POLICY, Action.READ, "roleAssignments")
        tree = context.decisions.snapshot.departments
        found = []
        for line in context.decisions.snapshot.lines:
            if line[0] != "g" or line[1].startswith("partner:"):
                continue
            domain = line[3]
            known = domain.isdigit() and int(domain) in tree.names
            found.append(
                UserRoleAssignment(
                    username=line[1],
                    role=line[2],
                    department_id=strawberry.ID(to_global_id("Department", int(domain)))
                    if known
                    else None,
                    department_name=tree.names[int(domain)] if known else domain,
                )
            )
        context.reads.note(Resource.POLICY.value, (), ["roleAssignments"])
        return sorted(found, key=lambda a: (a.username, a.role))
