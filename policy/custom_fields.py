"""Custom fields and sensitive fields as policy data, loaded with every policy snapshot.

Both change what a decision is (a custom field is a guarded field `<resource>.cf.<key>`; a
sensitive field needs a rule naming it), so both are read with the rules, versioned with them
and reloaded on the same `NOTIFY dossier_policy`: a definition made in one process is in force
in every process on its next request, and cached decisions of the old version are never reused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import CustomFieldDefinition, SensitiveField
from policy.vocabulary import Resource

CUSTOM_PREFIX = "cf."
# a key is written into SQL as a JSON key and into policy patterns: letters, digits, `_`
KEY_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
MAX_FIELDS_PER_RESOURCE = 40  # json_build_object takes 100 arguments: one object holds them all


class CustomFieldType(StrEnum):
    TEXT = "TEXT"
    NUMBER = "NUMBER"
    DATE = "DATE"
    BOOLEAN = "BOOLEAN"
    CHOICE = "CHOICE"
    MULTI_CHOICE = "MULTI_CHOICE"


CUSTOM_FIELD_RESOURCES = (
    Resource.CUSTOMER,
    Resource.CONTACT,
    Resource.OPPORTUNITY,
    Resource.TICKET,
)
# a sensitive value is encrypted as text: the types whose values are strings
ENCRYPTABLE = frozenset({CustomFieldType.TEXT, CustomFieldType.CHOICE, CustomFieldType.DATE})


@dataclass(frozen=True)
class FieldDefinition:
    resource: Resource
    key: str
    type: CustomFieldType
    label: str | None = None
    options: tuple[str, ...] = ()
    required: bool = False
    sensitive: bool = False
    unique: bool = False
    retired: bool = False

    @property
    def field(self) -> str:
        """The policy field name: a rule names it as `<resource>.cf.<key>`."""
        return f"{CUSTOM_PREFIX}{self.key}"

    @property
    def cipher_label(self) -> str:
        return f"{self.resource.value}.{self.field}"


@dataclass(frozen=True)
class FieldCatalog:
    """Every custom field definition and the sensitive-field set, at one policy version."""

    definitions: tuple[FieldDefinition, ...] = ()
    sensitive: frozenset[tuple[str, str]] = frozenset()
    _by_key: dict[tuple[Resource, str], FieldDefinition] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_key = {(d.resource, d.key): d for d in self.definitions}
        object.__setattr__(self, "_by_key", by_key)

    def active(self, resource: Resource) -> tuple[FieldDefinition, ...]:
        """The definitions of `resource` in force, by key."""
        return tuple(
            sorted(
                (d for d in self.definitions if d.resource is resource and not d.retired),
                key=lambda d: d.key,
            )
        )

    def definition(self, resource: Resource, key: str) -> FieldDefinition | None:
        """The definition of a key, retired ones included."""
        return self._by_key.get((resource, key))

    def is_sensitive(self, resource: Resource, name: str) -> bool:
        if name.startswith(CUSTOM_PREFIX):
            found = self._by_key.get((resource, name[len(CUSTOM_PREFIX) :]))
            return found is not None and found.sensitive
        return (resource.value, name) in self.sensitive

    def sensitive_names(self, resource: Resource) -> frozenset[str]:
        built_in = {name for kind, name in self.sensitive if kind == resource.value}
        custom = {d.field for d in self.definitions if d.resource is resource and d.sensitive}
        return frozenset(built_in | custom)


def built_in_catalog() -> FieldCatalog:
    """The catalog of a database migrated with nothing defined: the seeded sensitive set."""
    return FieldCatalog(sensitive=frozenset(BUILT_IN_SENSITIVE))


BUILT_IN_SENSITIVE: tuple[tuple[str, str], ...] = (
    ("customer", "phone"),
    ("customer", "email"),
    ("customer", "idNumber"),
    ("customer", "totalSpend"),
    ("customer", "creditCode"),
    ("contact", "phone"),
    ("contact", "email"),
    # finance fields, like `customer.totalSpend` (migration 0011)
    ("contract", "amount"),
    ("payment", "amount"),
)


def definition_of(row: CustomFieldDefinition) -> FieldDefinition:
    return FieldDefinition(
        resource=Resource(row.resource),
        key=row.key,
        type=CustomFieldType(row.type),
        label=row.label,
        options=tuple(row.options or ()),
        required=row.required,
        sensitive=row.sensitive,
        unique=row.is_unique,
        retired=row.retired_at is not None,
    )


async def read_catalog(session: AsyncSession) -> FieldCatalog:
    rows = (
        await session.execute(select(CustomFieldDefinition).order_by(CustomFieldDefinition.id))
    ).scalars()
    sensitive = (await session.execute(select(SensitiveField.resource, SensitiveField.field))).all()
    return FieldCatalog(
        definitions=tuple(definition_of(row) for row in rows),
        sensitive=frozenset((r, f) for r, f in sensitive),
    )


def custom_key(name: str) -> str | None:
    """The key of a policy field name `cf.<key>`, or None for a built-in field."""
    return name[len(CUSTOM_PREFIX) :] if name.startswith(CUSTOM_PREFIX) else None


def keys_of(names: Iterable[str]) -> list[str]:
    return [key for name in names if (key := custom_key(name)) is not None]
