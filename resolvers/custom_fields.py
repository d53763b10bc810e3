"""Administration of custom fields, vocabularies and the sensitive-field set.

Definitions and sensitive fields are policy data: each change is written with its audit event
and announced on the policy channel, so every process reloads them with the rules before its
next request (`policy.custom_fields`). Vocabulary terms are validated data: each process
notices a new term by the table's revision (`validation.vocabulary.VocabularyCache`).
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from audit.events import AuditAction
from db.models import CustomFieldDefinition as DefinitionRow
from db.models import SensitiveField as SensitiveRow
from policy.custom_fields import (
    CUSTOM_FIELD_RESOURCES,
    CUSTOM_PREFIX,
    ENCRYPTABLE,
    KEY_PATTERN,
    MAX_FIELDS_PER_RESOURCE,
    CustomFieldType,
    FieldDefinition,
    definition_of,
)
from policy.store import announce_change
from policy.vocabulary import FIELDS, Action, Resource
from resolvers.context import RequestContext
from resolvers.errors import BadUserInputError, NotFoundError
from resolvers.mutations.common import VOCABULARIES, bad_input
from resolvers.writes import record, require, write
from schema import custom_fields as types
from validation.custom_fields import options_of
from validation.errors import FieldError, ValidationFailed
from validation.vocabulary import VocabularyName, add_term

CHOICES = frozenset({CustomFieldType.CHOICE, CustomFieldType.MULTI_CHOICE})


def _resource(name: str, argument: str = "resource") -> Resource:
    try:
        resource = Resource(name)
    except ValueError:
        resource = None
    if resource not in CUSTOM_FIELD_RESOURCES:
        known = ", ".join(r.value for r in CUSTOM_FIELD_RESOURCES)
        raise BadUserInputError(f"{argument}: one of {known}", field=argument)
    assert resource is not None
    return resource


def _definition_type(definition: FieldDefinition) -> types.CustomFieldDefinition:
    return types.CustomFieldDefinition(
        resource=definition.resource.value,
        key=definition.key,
        label=definition.label,
        type=types.CustomFieldType(definition.type.value),
        options=list(definition.options) if definition.type in CHOICES else None,
        required=definition.required,
        sensitive=definition.sensitive,
        unique=definition.unique,
    )


def _as_audit(definition: FieldDefinition) -> dict[str, Any]:
    return {
        "resource": definition.resource.value,
        "key": definition.key,
        "label": definition.label,
        "type": definition.type.value,
        "options": list(definition.options),
        "required": definition.required,
        "sensitive": definition.sensitive,
        "unique": definition.unique,
        "retired": definition.retired,
    }


def _checked(input: types.CustomFieldInput) -> FieldDefinition:
    resource = _resource(input.resource, "resource")
    if not KEY_PATTERN.match(input.key):
        raise BadUserInputError(
            "key: a letter, then letters, digits or _ (at most 40)", field="key"
        )
    kind = CustomFieldType(input.type.value)
    options = options_of(input.options)
    if kind in CHOICES and not options:
        raise BadUserInputError("options: a choice field needs options", field="options")
    if kind not in CHOICES and options:
        raise BadUserInputError("options: only choice fields have options", field="options")
    if input.sensitive and kind not in ENCRYPTABLE:
        allowed = ", ".join(sorted(t.value for t in ENCRYPTABLE))
        raise BadUserInputError(f"sensitive: only {allowed} fields", field="sensitive")
    if input.unique and input.sensitive:
        raise BadUserInputError(
            "unique: a sensitive field is encrypted and cannot be compared", field="unique"
        )
    label = input.label.strip()[:200] if input.label else None
    return FieldDefinition(
        resource=resource, key=input.key, type=kind, label=label or None, options=options,
        required=input.required, sensitive=input.sensitive, unique=input.unique,
    )  # fmt: skip


def _changed(context: RequestContext) -> None:
    context.extras["policy_changed"] = True  # this process reloads after the commit


@strawberry.type
class CustomFieldQuery:
    @strawberry.field(description="Custom fields in force, of one resource or all of them.")
    async def custom_field_definitions(
        self, info: strawberry.Info, resource: str | None = None
    ) -> list[types.CustomFieldDefinition]:
        context: RequestContext = info.context
        require(context, Resource.CUSTOM_FIELD, Action.READ, "customFieldDefinitions")
        catalog = context.decisions.snapshot.catalog
        kinds = [_resource(resource)] if resource is not None else list(CUSTOM_FIELD_RESOURCES)
        found = [d for kind in kinds for d in catalog.active(kind)]
        context.reads.note(Resource.CUSTOM_FIELD.value,
                           (f"{d.resource.value}.{d.key}" for d in found),
                           ["customFieldDefinitions"])  # fmt: skip
        return [_definition_type(d) for d in found]

    @strawberry.field(description="Regions, industries, sources and tags, with their aliases.")
    async def vocabularies(self, info: strawberry.Info) -> list[types.Vocabulary]:
        context: RequestContext = info.context
        require(context, Resource.VOCABULARY, Action.READ, "vocabularies")
        async with context.db.lock:
            current = await VOCABULARIES.current(context.db.session)
        context.reads.note(Resource.VOCABULARY.value, [n.value for n in VocabularyName],
                           ["vocabularies"])  # fmt: skip
        return [_vocabulary(current[name]) for name in VocabularyName]

    @strawberry.field(description="Fields hidden until a rule names them. Needs READ on policy.")
    async def sensitive_fields(self, info: strawberry.Info) -> list[types.SensitiveField]:
        context: RequestContext = info.context
        require(context, Resource.POLICY, Action.READ, "sensitiveFields")
        catalog = context.decisions.snapshot.catalog
        names = sorted(
            (resource.value, name)
            for resource in Resource
            for name in catalog.sensitive_names(resource)
        )
        context.reads.note(Resource.POLICY.value, (), ["sensitiveFields"])
        return [types.SensitiveField(resource=r, field=f) for r, f in names]


def _vocabulary(vocabulary: Any) -> types.Vocabulary:
    return types.Vocabulary(
        name=vocabulary.name.value,
        terms=[
            types.VocabularyTerm(term=term.canonical, aliases=list(term.aliases))
            for term in vocabulary.terms
        ],
    )


@strawberry.type
class CustomFieldMutation:
    @strawberry.mutation(
        description="Defines a field, or changes its label, options or required flag; "
        "in force in every process on the next request."
    )
    async def define_custom_field(
        self, info: strawberry.Info, input: types.CustomFieldInput
    ) -> types.CustomFieldDefinition:
        context: RequestContext = info.context
        require(context, Resource.CUSTOM_FIELD, Action.CREATE, "defineCustomField")
        wanted = _checked(input)
        async with write(context) as session:
            row = (
                await session.execute(
                    select(DefinitionRow)
                    .where(
                        DefinitionRow.resource == wanted.resource.value,
                        DefinitionRow.key == wanted.key,
                    )
                    .with_for_update()
                )
            ).scalar_one_or_none()
            before: dict[str, Any] | None = None
            if row is None:
                count = (
                    await session.execute(
                        select(func.count()).where(
                            DefinitionRow.resource == wanted.resource.value,
                            DefinitionRow.retired_at.is_(None),
                        )
                    )
                ).scalar_one()
                if count >= MAX_FIELDS_PER_RESOURCE:
                    raise BadUserInputError(
                        f"key: at most {MAX_FIELDS_PER_RESOURCE} custom fields per resource",
                        field="key",
                    )
                row = DefinitionRow(
                    resource=wanted.resource.value,
                    key=wanted.key,
                    created_by=context.principal.name,
                )
                session.add(row)
            else:
                require(context, Resource.CUSTOM_FIELD, Action.UPDATE, "defineCustomField")
                existing = definition_of(row)
                before = _as_audit(existing)
                # stored values were validated and encrypted under these: they cannot change
                for name in ("type", "sensitive"):
                    if getattr(existing, name) != getattr(wanted, name):
                        raise BadUserInputError(
                            f"{name}: cannot change on an existing field; define a new key",
                            field=name,
                        )
            row.label, row.type = wanted.label, wanted.type.value
            row.options, row.required = list(wanted.options), wanted.required
            row.sensitive, row.is_unique = wanted.sensitive, wanted.unique
            row.retired_at = None
            await session.flush()
            await announce_change(session)
            after = _as_audit(wanted)
            changes = {k: {"old": (before or {}).get(k), "new": v} for k, v in after.items()
                       if before is None or before.get(k) != v}  # fmt: skip
            await record(
                context, session, AuditAction.CREATE if before is None else AuditAction.UPDATE,
                Resource.CUSTOM_FIELD.value, [f"{wanted.resource.value}.{wanted.key}"],
                changes=changes, fields=changes,
            )  # fmt: skip
        _changed(context)
        return _definition_type(wanted)

    @strawberry.mutation(
        description="Retires a field: hidden from every read, refused on every write; its "
        "values stay, and defining the key again brings them back."
    )
    async def retire_custom_field(self, info: strawberry.Info, resource: str, key: str) -> bool:
        context: RequestContext = info.context
        require(context, Resource.CUSTOM_FIELD, Action.DELETE, "retireCustomField")
        kind = _resource(resource)
        async with write(context) as session:
            row = (
                await session.execute(
                    select(DefinitionRow)
                    .where(DefinitionRow.resource == kind.value, DefinitionRow.key == key)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if row is None:
                raise NotFoundError("custom_field")
            if row.retired_at is not None:
                return False
            row.retired_at = func.now()
            await session.flush()
            await announce_change(session)
            await record(context, session, AuditAction.DELETE, Resource.CUSTOM_FIELD.value,
                         [f"{kind.value}.{key}"],
                         changes={"retired": {"old": False, "new": True}})  # fmt: skip
        _changed(context)
        return True

    @strawberry.mutation(description="Adds a term, or aliases to a term; aliases normalise input.")
    async def add_vocabulary_term(
        self,
        info: strawberry.Info,
        vocabulary: str,
        term: str,
        aliases: list[str] | None = None,
    ) -> types.Vocabulary:
        context: RequestContext = info.context
        require(context, Resource.VOCABULARY, Action.CREATE, "addVocabularyTerm")
        async with write(context) as session:
            try:
                added = await add_term(
                    session, vocabulary, term, aliases or (), actor=context.principal.name
                )
            except FieldError as error:
                raise bad_input(ValidationFailed([error])) from None
            changes = {
                "term": {"old": None, "new": added.canonical},
                "aliases": {"old": None, "new": list(added.aliases)},
            }
            await record(context, session, AuditAction.UPDATE, Resource.VOCABULARY.value,
                         [vocabulary], changes=changes)  # fmt: skip
            current = await VOCABULARIES.current(session)
        return _vocabulary(current[VocabularyName(vocabulary)])

    @strawberry.mutation(
        description="Marks a built-in field sensitive (hidden until a rule names it, masked in "
        "the trail) or not. A custom field's sensitivity is part of its definition."
    )
    async def set_field_sensitivity(
        self, info: strawberry.Info, resource: str, field: str, sensitive: bool
    ) -> bool:
        context: RequestContext = info.context
        require(context, Resource.POLICY, Action.UPDATE, "setFieldSensitivity")
        try:
            kind = Resource(resource)
        except ValueError:
            raise BadUserInputError("resource: unknown resource", field="resource") from None
        if field.startswith(CUSTOM_PREFIX):
            raise BadUserInputError(
                "field: a custom field's sensitivity is set by defineCustomField", field="field"
            )
        if field not in FIELDS.get(kind, ()):
            raise BadUserInputError(f"field: {kind.value} has no field {field!r}", field="field")
        was = context.decisions.snapshot.catalog.is_sensitive(kind, field)
        if was == sensitive:
            return False
        async with write(context) as session:
            if sensitive:
                await session.execute(
                    insert(SensitiveRow)
                    .values(resource=kind.value, field=field)
                    .on_conflict_do_nothing()
                )
            else:
                await session.execute(
                    delete(SensitiveRow).where(
                        SensitiveRow.resource == kind.value, SensitiveRow.field == field
                    )
                )
            await announce_change(session)
            await record(context, session, AuditAction.POLICY_CHANGE, Resource.POLICY.value,
                         changes={"sensitive": {"field": f"{kind.value}.{field}",
                                                "old": was, "new": sensitive}})  # fmt: skip
        _changed(context)
        return True
