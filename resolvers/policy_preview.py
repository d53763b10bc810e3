"""`previewPolicyChange`: the effect of adding and removing rules, before anything is written.

A dry run of the code the API decides with: the candidate rule set is built in memory as a
`PolicySnapshot` (`policy.store`), each user's `AccessDecisions` (`policy.decisions`) are taken
under the current and the candidate snapshot, and wherever a row scope or a field mask differs,
the records it reaches are counted with the same predicates and the same live-row clauses the
readers compile (`resolvers.records`). Nothing is stored; the preview is audited as a read of
`policy`, and it needs what `addPolicy` needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import strawberry
from casbin.util.builtin_operators import glob_match
from sqlalchemy import ColumnElement, and_, false, func, not_, select

from db.models import User as UserRow
from policy import admin as policy_admin
from policy.decisions import AccessDecisions
from policy.predicates import Predicate, all_of
from policy.principal import Principal, PrincipalKind
from policy.store import PolicySnapshot, new_enforcer
from policy.vocabulary import FIELDS, Action, Resource
from resolvers.admin import _rule_of
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError
from resolvers.records import SPECS, RecordSpec
from resolvers.writes import require
from schema import admin as admin_types
from schema.policy_preview import AccessChange, PolicyPreview

OPERATION = "previewPolicyChange"
MAX_RULES = 50  # one screen of edits; a whole import goes through `dossier policy import`
SPEC_OF: dict[Resource, RecordSpec] = {spec.resource: spec for spec in SPECS.values()}


def _reach(predicate: Predicate) -> str:
    return "NONE" if predicate.is_never else ("ALL" if predicate.is_always else "SOME")


def _touched(rules: Iterable[policy_admin.Rule]) -> set[tuple[Resource, Action]]:
    """(resource, action) pairs a changed rule can reach; a wildcard root reaches them all."""
    touched: set[tuple[Resource, Action]] = set()
    for rule in rules:
        root = rule.resource.partition(".")[0]
        kinds = [k for k in Resource if glob_match(k.value, root)]
        touched.update((kind, rule.action) for kind in kinds)
    return touched


def _candidate_lines(
    lines: tuple[tuple[str, ...], ...],
    added: list[policy_admin.Rule],
    removed: list[policy_admin.Rule],
) -> tuple[tuple[str, ...], ...]:
    gone = {rule.line() for rule in removed}
    kept = [line for line in lines if tuple(line[:7]) not in gone]
    present = {tuple(line[:7]) for line in kept}
    kept.extend(rule.line() for rule in added if rule.line() not in present)
    return tuple(kept)


class RecordCounter:
    """Counts live records where one predicate holds and another does not, once per pair."""

    def __init__(self, context: RequestContext) -> None:
        self._context = context
        self._known: dict[tuple[Resource, Predicate, Predicate], int] = {}

    async def count(self, resource: Resource, holds: Predicate, fails: Predicate) -> int | None:
        spec = SPEC_OF.get(resource)
        if spec is None:
            return None  # policy, audit, token: a permission, not rows
        if holds.is_never:
            return 0
        key = (resource, holds, fails)
        if key not in self._known:
            columns = spec.scope_columns()
            # a NULL fact (no owner, no department) makes the predicate unknown, not true
            where: list[ColumnElement[bool]] = [
                *spec.live(),
                func.coalesce(holds.sql(columns), false()),
            ]
            if not fails.is_never:
                where.append(not_(func.coalesce(fails.sql(columns), false())))
            statement = select(func.count()).select_from(spec.from_clause()).where(and_(*where))
            self._known[key] = int((await self._context.db.execute(statement)).scalar_one())
        return self._known[key]


async def _changes_for(
    counter: RecordCounter,
    username: str,
    before: AccessDecisions,
    after: AccessDecisions,
    touched: set[tuple[Resource, Action]],
) -> list[AccessChange]:
    found: list[AccessChange] = []
    for resource, action in sorted(touched):
        rows_before, rows_after = before.rows(resource, action), after.rows(resource, action)
        targets: list[tuple[str | None, Predicate, Predicate]] = [(None, rows_before, rows_after)]
        for name in FIELDS.get(resource, ()):
            targets.append(
                (
                    name,
                    all_of([rows_before, before.field(resource, name, action)]),
                    all_of([rows_after, after.field(resource, name, action)]),
                )
            )
        for field_name, was, will in targets:
            if was == will:
                continue
            gained = await counter.count(resource, will, was)
            lost = await counter.count(resource, was, will)
            if gained == 0 and lost == 0:
                continue  # a different expression reaching the same records
            found.append(
                AccessChange(
                    username=username,
                    resource=resource.value,
                    field=field_name,
                    action=admin_types.Action(action.value),
                    before=_reach(was),
                    after=_reach(will),
                    gained=gained,
                    lost=lost,
                )
            )
    return found


async def preview_policy_change(
    context: RequestContext,
    add: list[admin_types.PolicyRuleInput],
    remove: list[admin_types.PolicyRuleInput],
) -> PolicyPreview:
    require(context, Resource.POLICY, Action.CREATE, OPERATION)
    if remove:
        require(context, Resource.POLICY, Action.DELETE, OPERATION)
    if len(add) + len(remove) > MAX_RULES:
        raise BadUserInputError(f"at most {MAX_RULES} rules per preview", argument="add")
    added = [_rule_of(rule) for rule in add]
    removed = [_rule_of(rule) for rule in remove]
    async with context.db.lock:
        session = context.db.session
        for rule in added:
            try:
                await policy_admin.validate_rule(session, rule)
            except policy_admin.PolicyInputError as error:
                reason = f"{error.field}: {error.reason}"
                raise BadUserInputError(reason, field=error.field) from None
        current = context.decisions.snapshot
        lines = _candidate_lines(current.lines, added, removed)
        try:
            await policy_admin.ensure_policy_editable(session, lines)
            locks_out = False
        except policy_admin.LockoutError:
            locks_out = True
        users = (
            await session.execute(
                select(UserRow.id, UserRow.username, UserRow.department_id)
                .where(UserRow.is_active)
                .order_by(UserRow.username)
            )
        ).all()
    enforcer = await asyncio.to_thread(new_enforcer, lines)
    candidate = PolicySnapshot(
        version=-1, enforcer=enforcer, departments=current.departments, lines=lines
    )
    touched = _touched([*added, *removed])
    counter = RecordCounter(context)
    changes: list[AccessChange] = []
    for user in users:
        principal = Principal(PrincipalKind.USER, user.username, user.id, user.department_id)
        changes.extend(
            await _changes_for(
                counter,
                user.username,
                AccessDecisions(principal, current),
                AccessDecisions(principal, candidate),
                touched,
            )
        )
    context.reads.note(Resource.POLICY.value, (), [OPERATION])
    return PolicyPreview(
        changes=changes,
        affected_users=sorted({c.username for c in changes}),
        locks_out=locks_out,
    )


@strawberry.type
class PolicyPreviewQuery:
    @strawberry.field(
        description="What adding and removing these rules would change for each user: rows "
        "and fields gained or lost, counted in records. Writes nothing. Needs what addPolicy "
        "(and, to remove, removePolicy) needs; audited as a read of `policy`."
    )
    async def preview_policy_change(
        self,
        info: strawberry.Info,
        add: list[admin_types.PolicyRuleInput] | None = None,
        remove: list[admin_types.PolicyRuleInput] | None = None,
    ) -> PolicyPreview:
        return await preview_policy_change(info.context, add or [], remove or [])
