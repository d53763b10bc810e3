"""Types of `explainRecordAccess` and `roleAssignments`: one record's access; who holds roles."""

from __future__ import annotations

import strawberry


@strawberry.type(description="Whether one user reaches one record, and one field of it.")
class RecordAccess:
    username: str
    record_id: strawberry.ID
    in_scope: bool = strawberry.field(description="The record is among the user's rows")
    field: str | None
    field_allowed: bool | None = strawberry.field(
        description="The field is readable (or writable) on this record; null without a field"
    )


@strawberry.type(description="A role held by a user in a department (a `g` line of the policy).")
class UserRoleAssignment:
    username: str
    role: str
    department_id: strawberry.ID | None
    department_name: str | None = strawberry.field(
        description="As explainAccess names it: the role's department is part of the policy"
    )
