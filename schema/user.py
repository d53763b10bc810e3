"""People and the organisation tree, and what the caller may do (`me`)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from schema.node import Node


@strawberry.type
class Department(Node):
    id: strawberry.ID
    name: str | None = None
    pk: strawberry.Private[int] = 0
    parent_id: strawberry.Private[int | None] = None
    withheld: strawberry.Private[frozenset[str]] = frozenset()

    @strawberry.field
    async def parent(self, info: strawberry.Info) -> Department | None:
        return await info.context.reader.related(info, self, "parent", self.parent_id)  # type: ignore[no-any-return]


@strawberry.type(description="What a user still owns or is assigned that is open.")
class OwnedRecords:
    customers: int
    opportunities: int
    tickets: int
    tasks: int
    contracts: int


@strawberry.type
class User(Node):
    id: strawberry.ID
    username: str | None = None
    display_name: str | None = None
    active: bool | None = None
    still_owned: OwnedRecords | None = strawberry.field(
        default=None,
        description="Answered by `deactivateUser` only (null elsewhere): what is left to hand "
        "over.",
    )
    pk: strawberry.Private[int] = 0
    department_id: strawberry.Private[int | None] = None
    withheld: strawberry.Private[frozenset[str]] = frozenset()

    @strawberry.field
    async def department(self, info: strawberry.Info) -> Department | None:
        return await info.context.reader.related(info, self, "department", self.department_id)  # type: ignore[no-any-return]


@strawberry.type
class RoleAssignment:
    role: str
    department: Annotated[Department, strawberry.lazy("schema.user")] | None


@strawberry.type(description="What the caller may do with one field; a frontend hides the rest.")
class FieldPermission:
    type: str
    field: str
    read: bool
    write: bool
    read_scope: str | None = strawberry.field(
        default=None, description="ALL when readable on every visible row, SOME when row-dependent."
    )


@strawberry.type
class Me:
    user: User | None
    roles: list[RoleAssignment] | None
    permissions: list[FieldPermission] | None
