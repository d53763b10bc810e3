"""`node(id)` and `me`: who the caller is and what it may do."""

from __future__ import annotations

from typing import Any

import strawberry

from policy.vocabulary import FIELDS, Action
from resolvers.errors import BadUserInputError
from resolvers.records import SPECS
from schema.node import InvalidGlobalIdError, Node, from_global_id, integer_pk, to_global_id
from schema.user import Department, FieldPermission, Me, RoleAssignment, User

TYPE_OF_RESOURCE = {spec.resource: spec.type_name for spec in SPECS.values()}


def field_permissions(decisions: Any) -> list[FieldPermission]:
    """One entry per guarded field, from the same decisions that mask responses."""
    permissions = []
    catalog = decisions.snapshot.catalog
    for resource, fields in FIELDS.items():
        type_name = TYPE_OF_RESOURCE.get(resource)
        if type_name is None:
            continue
        # each custom field in force is a field of its own: `cf.<key>`
        for name in (*fields, *(d.field for d in catalog.active(resource))):
            read = decisions.field(resource, name, Action.READ)
            write = decisions.field(resource, name, Action.UPDATE)
            scope = None if read.is_never else ("ALL" if read.is_always else "SOME")
            permissions.append(
                FieldPermission(
                    type=type_name,
                    field=name,
                    read=not read.is_never,
                    write=not write.is_never,
                    read_scope=scope,
                )
            )
    return permissions


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by global id; null when not in the caller's scope.")
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> Node | None:
        try:
            type_name, pk = from_global_id(id)
        except InvalidGlobalIdError:
            raise BadUserInputError("`id` is not a valid id", argument="id") from None
        key = integer_pk(pk)
        if key is None:
            raise BadUserInputError("`id` is not a valid id", argument="id")
        if type_name not in SPECS:
            return None
        return await info.context.reader.one(info, type_name, key)  # type: ignore[no-any-return]

    @strawberry.field(description="The caller, its roles, and what it may read and write.")
    def me(self, info: strawberry.Info) -> Me:
        context = info.context
        principal = context.principal
        snapshot = context.decisions.snapshot
        tree = snapshot.departments
        user = None
        if principal.user_id is not None:
            user = User(
                id=strawberry.ID(to_global_id("User", principal.user_id)),
                username=principal.name,
                pk=principal.user_id,
                department_id=principal.department_id,
            )
        roles = []
        for role, domain in snapshot.assignments_of(principal.subject):
            department = None
            if domain.isdigit() and int(domain) in tree.names:
                department = Department(
                    id=strawberry.ID(to_global_id("Department", domain)),
                    name=tree.names[int(domain)],
                    pk=int(domain),
                    parent_id=tree.parents.get(int(domain)),
                )
            roles.append(RoleAssignment(role=role, department=department))
        return Me(user=user, roles=roles, permissions=field_permissions(context.decisions))
