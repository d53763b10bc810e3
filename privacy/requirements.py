"""Administration of consent requirements (`policy.consent`): policy data, managed like rules.

Same permissions as `addPolicy`/`removePolicy`/`policies` (CREATE, DELETE, READ on `policy`),
same trail (a POLICY_CHANGE event naming the line), same reload in every process.
"""

from __future__ import annotations

from audit.events import AuditAction
from policy import admin as policy_admin
from policy.consent import ConsentRequirement, requirements_of
from policy.vocabulary import Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError
from resolvers.writes import record, require, write
from schema import privacy as types


def _requirement_of(given: types.ConsentRequirementInput) -> ConsentRequirement:
    try:
        action = Action(given.action.strip().upper())
    except ValueError:
        raise BadUserInputError("action: READ or EXPORT", field="action") from None
    return ConsentRequirement(given.resource.strip(), action, given.purpose.strip().lower())


def _type(requirement: ConsentRequirement) -> types.ConsentRequirement:
    return types.ConsentRequirement(
        resource=requirement.resource,
        action=requirement.action.value,
        purpose=requirement.purpose,
    )


async def require_consent(
    context: RequestContext, given: types.ConsentRequirementInput
) -> types.ConsentRequirement:
    require(context, Resource.POLICY, Action.CREATE, "requireConsent")
    requirement = _requirement_of(given)
    async with write(context) as session:
        try:
            added = await policy_admin.add_requirement(session, requirement)
        except policy_admin.PolicyInputError as error:
            raise BadUserInputError(f"{error.field}: {error.reason}", field=error.field) from None
        if added:
            await record(context, session, AuditAction.POLICY_CHANGE, "policy",
                         changes={"added": list(requirement.line())})  # fmt: skip
    context.extras["policy_changed"] = True
    return _type(requirement)


async def remove_consent_requirement(
    context: RequestContext, given: types.ConsentRequirementInput
) -> bool:
    require(context, Resource.POLICY, Action.DELETE, "removeConsentRequirement")
    requirement = _requirement_of(given)
    async with write(context) as session:
        removed = await policy_admin.remove_requirement(session, requirement)
        if removed:
            await record(context, session, AuditAction.POLICY_CHANGE, "policy",
                         changes={"removed": list(requirement.line())})  # fmt: skip
    context.extras["policy_changed"] = True
    return removed


def consent_requirements(context: RequestContext) -> list[types.ConsentRequirement]:
    require(context, Resource.POLICY, Action.READ, "consentRequirements")
    context.reads.note(Resource.POLICY.value, (), ["consentRequirements"])
    return [_type(r) for r in requirements_of(context.decisions.snapshot.lines)]
