"""Administration: departments, users, role assignments, rules and partner tokens.

Each operation is gated by a policy on its own resource (`department`, `user`, `policy`,
`token`), writes in a savepoint with its audit event, and — for anything that changes decisions —
announces the change so every process reloads before its next request.
"""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from sqlalchemy import select

from audit.events import AuditAction
from db.models import Department as DepartmentRow
from db.models import User as UserRow
from identity.errors import IdentityInputError, UserNotFoundError
from identity.partner_tokens import issue_partner_token, list_partner_tokens, revoke_partner_token
from identity.users import create_user, deactivate_user, revoke_user_tokens
from policy import admin as policy_admin
from policy.decisions import AccessDecisions
from policy.principal import Principal, PrincipalKind
from policy.store import announce_change
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, ConflictError, ForbiddenError, NotFoundError
from resolvers.filters import pk_of
from resolvers.workflow import transfer as handover
from resolvers.writes import record, require, write
from schema import admin as types
from schema.node import to_global_id
from schema.user import Department, OwnedRecords, User


def _bad_input(error: IdentityInputError | policy_admin.PolicyInputError) -> BadUserInputError:
    return BadUserInputError(f"{error.field}: {error.reason}", field=error.field)


def _rule_of(rule: types.PolicyRuleInput) -> policy_admin.Rule:
    department = rule.department
    if department != "*" and not department.isdigit():
        department = str(pk_of(department, "Department", "rule.department"))
    return policy_admin.Rule(
        role=rule.role,
        department=department,
        resource=rule.resource,
        action=Action(rule.action.value),
        scope=policy_admin.Scope(rule.scope.value),
        effect=policy_admin.Effect(rule.effect.value),
    )


def _rule_type(rule: policy_admin.Rule) -> types.PolicyRule:
    return types.PolicyRule(
        role=rule.role,
        department=rule.department,
        resource=rule.resource,
        action=types.Action(rule.action.value),
        scope=types.Scope(rule.scope.value),
        effect=types.Effect(rule.effect.value),
    )


def _user_type(row: UserRow) -> User:
    return User(
        id=strawberry.ID(to_global_id("User", row.id)),
        username=row.username,
        display_name=row.display_name,
        active=row.is_active,
        pk=row.id,
        department_id=row.department_id,
    )


def _department_type(row: DepartmentRow) -> Department:
    return Department(
        id=strawberry.ID(to_global_id("Department", row.id)),
        name=row.name,
        pk=row.id,
        parent_id=row.parent_id,
    )


def _policy_changed(context: RequestContext) -> None:
    context.extras["policy_changed"] = True


async def _successor(
    context: RequestContext, session: Any, successor_id: strawberry.ID, leaving: int
) -> int:
    """An active user in the caller's UPDATE scope, not the one leaving."""
    pk = pk_of(successor_id, "User", "successorId")
    row = await session.get(UserRow, pk)
    if row is None or not row.is_active or not _user_in_scope(context, Action.UPDATE, row):
        raise BadUserInputError("no such active user", argument="successorId")
    if pk == leaving:
        raise BadUserInputError("a user cannot succeed itself", argument="successorId")
    return pk


def _user_in_scope(context: RequestContext, action: Action, row: UserRow) -> bool:
    return context.decisions.rows(Resource.USER, action).holds_for(
        row.id, row.department_id, row.id
    )


@strawberry.type
class AdminQuery:
    @strawberry.field(description="Rules, optionally of one role. Needs READ on `policy`.")
    async def policies(
        self, info: strawberry.Info, role: str | None = None
    ) -> list[types.PolicyRule]:
        context: RequestContext = info.context
        require(context, Resource.POLICY, Action.READ, "policies")
        lines = context.decisions.snapshot.lines
        rules = [policy_admin.Rule.from_line(line) for line in lines if line[0] == "p"]
        chosen = [r for r in rules if role is None or r.role == role]
        context.reads.note(Resource.POLICY.value, (), ["policies"])
        return [_rule_type(r) for r in chosen]

    @strawberry.field(description="Every role named by a rule or an assignment.")
    async def roles(self, info: strawberry.Info) -> list[str]:
        context: RequestContext = info.context
        require(context, Resource.POLICY, Action.READ, "roles")
        lines = context.decisions.snapshot.lines
        return sorted({line[1] for line in lines if line[0] == "p"}
                      | {line[2] for line in lines if line[0] == "g"})  # fmt: skip

    @strawberry.field
    async def departments(self, info: strawberry.Info) -> list[Department]:
        context: RequestContext = info.context
        require(context, Resource.DEPARTMENT, Action.READ, "departments")
        allowed = context.decisions.rows(Resource.DEPARTMENT, Action.READ)
        rows = (
            await context.db.execute(select(DepartmentRow).order_by(DepartmentRow.id))
        ).scalars()
        visible = [r for r in rows if allowed.holds_for(None, r.id, r.id)]
        context.reads.note(Resource.DEPARTMENT.value, (r.id for r in visible), ["name", "parent"])
        return [_department_type(r) for r in visible]

    @strawberry.field
    async def users(self, info: strawberry.Info) -> list[User]:
        context: RequestContext = info.context
        require(context, Resource.USER, Action.READ, "users")
        rows = (await context.db.execute(select(UserRow).order_by(UserRow.id))).scalars()
        visible = [r for r in rows if _user_in_scope(context, Action.READ, r)]
        context.reads.note(Resource.USER.value, (r.id for r in visible),
                           ["username", "displayName", "active", "department"])  # fmt: skip
        return [_user_type(r) for r in visible]

    @strawberry.field(description="Partner tokens, without their secrets.")
    async def partner_tokens(self, info: strawberry.Info) -> list[types.PartnerTokenInfo]:
        context: RequestContext = info.context
        require(context, Resource.TOKEN, Action.READ, "partnerTokens")
        async with context.db.lock:
            tokens = await list_partner_tokens(context.db.session)
        # listing tokens is a read of them like any other, for the trail
        context.reads.note(Resource.TOKEN.value, (t.id for t in tokens), ["partnerTokens"])
        return [
            types.PartnerTokenInfo(
                id=strawberry.ID(str(t.id)),
                partner_name=t.partner_name,
                scopes=list(t.scopes),
                customer_ids=None
                if t.customer_ids is None
                else [strawberry.ID(to_global_id("Customer", c)) for c in t.customer_ids],
                issued_by=t.issued_by,
                issued_at=t.issued_at,
                expires_at=t.expires_at,
                revoked_at=t.revoked_at,
            )
            for t in tokens
        ]

    @strawberry.field(description="Why a user may or may not do something. Needs READ on policy.")
    async def explain_access(
        self,
        info: strawberry.Info,
        username: str,
        resource: str,
        action: types.Action,
        field: str | None = None,
    ) -> types.AccessExplanation:
        context: RequestContext = info.context
        require(context, Resource.POLICY, Action.READ, "explainAccess")
        try:
            kind = Resource(resource)
        except ValueError:
            raise BadUserInputError("unknown resource", argument="resource") from None
        row = (
            await context.db.execute(select(UserRow).where(UserRow.username == username))
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError("user")
        snapshot = context.decisions.snapshot
        principal = Principal(PrincipalKind.USER, row.username, row.id, row.department_id)
        decisions = AccessDecisions(principal, snapshot)
        verb = Action(action.value)
        obj = f"{kind.value}.{field}" if field else kind.value
        reach = decisions.field(kind, field, verb) if field else decisions.rows(kind, verb)
        tree = snapshot.departments
        matched = []
        for domain, line in decisions.matching_rules(obj, verb) + (
            decisions.matching_rules(kind.value, verb) if field else []
        ):
            path = tree.path(int(domain)) if domain.isdigit() else []
            matched.append(
                types.MatchedRule(
                    rule=_rule_type(policy_admin.Rule.from_line(line)),
                    via_role=line[1],
                    held_in_department=tree.names.get(int(domain), domain)
                    if domain.isdigit()
                    else domain,
                    department_path=[tree.names.get(d, str(d)) for d in path],
                )
            )
        note = (
            "rows come from rules on the resource; a field with no ALLOW rule naming it follows "
            "the resource, except sensitive fields which need a rule naming them; DENY wins"
        )
        state = "NONE" if reach.is_never else ("ALL" if reach.is_always else "SOME")
        if not row.is_active:
            state, note = "NONE", "the user is deactivated"
        return types.AccessExplanation(
            allowed=state != "NONE", reach=state, matched=matched, note=note
        )


@strawberry.type
class AdminMutation:
    @strawberry.mutation
    async def create_department(
        self, info: strawberry.Info, input: types.CreateDepartmentInput
    ) -> Department:
        context: RequestContext = info.context
        require(context, Resource.DEPARTMENT, Action.CREATE, "createDepartment")
        name = input.name.strip()
        if not name or len(name) > 200:
            raise BadUserInputError("name must be 1 to 200 characters", field="name")
        parent = pk_of(input.parent_id, "Department", "input.parentId") if input.parent_id else None
        async with write(context) as session:
            if parent is not None and await session.get(DepartmentRow, parent) is None:
                raise BadUserInputError("no such parent department", field="parentId")
            taken = await session.execute(
                select(DepartmentRow.id).where(DepartmentRow.name == name)
            )
            if taken.first() is not None:
                raise ConflictError(f"a department named {name!r} exists already")
            row = DepartmentRow(name=name, parent_id=parent)
            session.add(row)
            await session.flush()
            await announce_change(session)
            await record(context, session, AuditAction.DEPARTMENT_CHANGE, "department", [row.id],
                         changes={"name": {"old": None, "new": name},
                                  "parentId": {"old": None, "new": parent}})  # fmt: skip
        _policy_changed(context)
        return _department_type(row)

    @strawberry.mutation
    async def create_user(self, info: strawberry.Info, input: types.CreateUserInput) -> User:
        context: RequestContext = info.context
        require(context, Resource.USER, Action.CREATE, "createUser")
        department = pk_of(input.department_id, "Department", "input.departmentId")
        if not context.decisions.rows(Resource.USER, Action.CREATE).holds_for(None, department, 0):
            raise ForbiddenError("Mutation.createUser", "Not allowed to create users there")
        async with write(context) as session:
            try:
                row = await create_user(
                    session,
                    username=input.username,
                    password=input.password,
                    display_name=input.display_name,
                    department_id=department,
                )
            except IdentityInputError as error:
                raise _bad_input(error) from None
            await record(context, session, AuditAction.USER_CHANGE, "user", [row.id],
                         changes={"username": {"old": None, "new": row.username},
                                  "departmentId": {"old": None, "new": department},
                                  "password": {"old": None, "new": "****"}})  # fmt: skip
        return _user_type(row)

    @strawberry.mutation(
        description="Every token of the user stops working at once. With `successorId`, what "
        "the user owns moves to the successor in the same transaction; the answer's "
        "`stillOwned` lists what is left."
    )
    async def deactivate_user(
        self, info: strawberry.Info, id: strawberry.ID, successor_id: strawberry.ID | None = None
    ) -> User:
        context: RequestContext = info.context
        require(context, Resource.USER, Action.UPDATE, "deactivateUser")
        pk = pk_of(id, "User", "id")
        async with write(context) as session:
            existing = await session.get(UserRow, pk)
            if existing is None or not _user_in_scope(context, Action.UPDATE, existing):
                raise NotFoundError("user")
            successor = None
            if successor_id is not None:
                successor = await _successor(context, session, successor_id, pk)
            try:
                row = await deactivate_user(session, pk)
            except UserNotFoundError:
                raise NotFoundError("user") from None
            await session.flush()
            try:
                await policy_admin.ensure_policy_editable(
                    session, await policy_admin.current_lines(session)
                )
            except policy_admin.LockoutError as error:
                raise ConflictError(str(error)) from None
            changes: dict[str, Any] = {"active": {"old": True, "new": False}}
            if successor is not None:
                changes["successorId"] = {"old": None, "new": successor}
            await record(context, session, AuditAction.USER_CHANGE, "user", [pk],
                         changes=changes)  # fmt: skip
            if successor is not None:
                moved = await handover.move_ownership(session, pk, successor, None)
                await handover.audit_moves(context, session, pk, successor, moved)
            left = await handover.still_owned(session, pk)
        answer = _user_type(row)
        answer.still_owned = OwnedRecords(**left)
        return answer

    @strawberry.mutation
    async def assign_role(
        self, info: strawberry.Info, user_id: strawberry.ID, role: str, department_id: strawberry.ID
    ) -> bool:
        return await _change_role(info.context, user_id, role, department_id, assign=True)

    @strawberry.mutation(description="The user's existing tokens stop working at once.")
    async def unassign_role(
        self, info: strawberry.Info, user_id: strawberry.ID, role: str, department_id: strawberry.ID
    ) -> bool:
        return await _change_role(info.context, user_id, role, department_id, assign=False)

    @strawberry.mutation
    async def add_policy(
        self, info: strawberry.Info, rule: types.PolicyRuleInput
    ) -> types.PolicyRule:
        context: RequestContext = info.context
        require(context, Resource.POLICY, Action.CREATE, "addPolicy")
        parsed = _rule_of(rule)
        async with write(context) as session:
            try:
                added = await policy_admin.add_rule(session, parsed)
            except policy_admin.PolicyInputError as error:
                raise _bad_input(error) from None
            except policy_admin.LockoutError as error:
                raise ConflictError(str(error)) from None
            if added:
                await record(context, session, AuditAction.POLICY_CHANGE, "policy",
                             changes={"added": list(parsed.line())})  # fmt: skip
        _policy_changed(context)
        return _rule_type(parsed)

    @strawberry.mutation
    async def remove_policy(self, info: strawberry.Info, rule: types.PolicyRuleInput) -> bool:
        context: RequestContext = info.context
        require(context, Resource.POLICY, Action.DELETE, "removePolicy")
        parsed = _rule_of(rule)
        async with write(context) as session:
            try:
                removed = await policy_admin.remove_rule(session, parsed)
            except policy_admin.LockoutError as error:
                raise ConflictError(str(error)) from None
            if removed:
                await record(context, session, AuditAction.POLICY_CHANGE, "policy",
                             changes={"removed": list(parsed.line())})  # fmt: skip
        _policy_changed(context)
        return removed

    @strawberry.mutation(description="The secret is in the answer once; store it safely.")
    async def issue_partner_token(
        self, info: strawberry.Info, input: types.IssuePartnerTokenInput
    ) -> types.IssuedToken:
        context: RequestContext = info.context
        require(context, Resource.TOKEN, Action.CREATE, "issuePartnerToken")
        customers = None
        if input.customer_ids is not None:
            customers = [pk_of(c, "Customer", "input.customerIds") for c in input.customer_ids]
        async with write(context) as session:
            try:
                issued = await issue_partner_token(
                    session,
                    partner_name=input.partner_name,
                    scopes=input.scopes,
                    customer_ids=customers,
                    expires_in_days=input.expires_in_days,
                    issued_by=context.principal.name,
                    actor_kind=context.principal.kind.value,
                    ip=context.meta.ip,
                )
            except IdentityInputError as error:
                raise _bad_input(error) from None
        return types.IssuedToken(
            id=strawberry.ID(str(issued.id)), token=issued.token, expires_at=issued.expires_at
        )

    @strawberry.mutation
    async def revoke_token(self, info: strawberry.Info, id: strawberry.ID) -> bool:
        context: RequestContext = info.context
        require(context, Resource.TOKEN, Action.DELETE, "revokeToken")
        try:
            token_id = uuid.UUID(str(id))
        except ValueError:
            raise BadUserInputError("not a token id", argument="id") from None
        async with write(context) as session:
            return await revoke_partner_token(
                session,
                token_id,
                revoked_by=context.principal.name,
                actor_kind=context.principal.kind.value,
                ip=context.meta.ip,
            )


async def _change_role(
    context: RequestContext, user_id: Any, role: str, department_id: Any, *, assign: bool
) -> bool:
    operation = "assignRole" if assign else "unassignRole"
    require(context, Resource.POLICY, Action.UPDATE, operation)
    user_pk = pk_of(user_id, "User", "userId")
    department = pk_of(department_id, "Department", "departmentId")
    async with write(context) as session:
        user = await session.get(UserRow, user_pk)
        if user is None or not _user_in_scope(context, Action.READ, user):
            raise NotFoundError("user")
        try:
            if assign:
                changed = await policy_admin.assign_role(session, user.username, role, department)
            else:
                changed = await policy_admin.unassign_role(session, user.username, role, department)
                if changed:
                    await revoke_user_tokens(session, user_pk)
        except policy_admin.PolicyInputError as error:
            raise _bad_input(error) from None
        except policy_admin.LockoutError as error:
            raise ConflictError(str(error)) from None
        if changed:
            await record(context, session, AuditAction.ROLE_CHANGE, "user", [user_pk],
                         changes={"role": {"old": None if assign else role,
                                           "new": role if assign else None},
                                  "departmentId": department})  # fmt: skip
    _policy_changed(context)
    return changed
