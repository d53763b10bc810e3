"""Types of `previewPolicyChange`: what a candidate rule change would do to each user's access."""

from __future__ import annotations

import strawberry

from schema.admin import Action


@strawberry.type(description="One user's access to one resource or field, before and after.")
class AccessChange:
    username: str
    resource: str
    field: str | None = strawberry.field(description="null: the rows of the resource themselves")
    action: Action
    before: str = strawberry.field(description="NONE, SOME or ALL rows, under the current rules")
    after: str = strawberry.field(description="NONE, SOME or ALL rows, under the candidate rules")
    gained: int | None = strawberry.field(
        description="Records the user could not reach before and could after; null for a "
        "resource without rows (policy, audit, token)"
    )
    lost: int | None = strawberry.field(description="Records reachable before and not after")


@strawberry.type(description="A dry run of a rule change through the decisions the API uses.")
class PolicyPreview:
    changes: list[AccessChange]
    affected_users: list[str]
    locks_out: bool = strawberry.field(
        description="Whether the change would leave nobody able to edit policies (it would be "
        "refused)"
    )
