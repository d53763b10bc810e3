"""Writing `customFields` of a record: policy names, validation, encryption, the trail's view.

Every key an input sets is a policy field `cf.<key>` checked with the built-in ones
(`require_writable`), so one refused key refuses the whole write. A sensitive value is stored
encrypted under the label `<resource>.cf.<key>`; the trail gets it masked (`change_set`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry

from db.crypto import FieldCipher
from db.data_keys import own_data_key
from policy.custom_fields import CUSTOM_PREFIX, FieldCatalog, FieldDefinition
from policy.vocabulary import Resource
from resolvers.context import RequestContext
from resolvers.mutations.common import bad_input
from validation.custom_fields import validate_custom_values
from validation.errors import FieldError, Rule, ValidationFailed

INPUT_NAME = "customFields"


def take_custom(data: dict[str, Any]) -> dict[str, Any] | None:
    """Remove `customFields` from an input's given values; None when it was not given."""
    custom = data.pop(INPUT_NAME, None)
    if custom is None or custom is strawberry.UNSET:
        return None
    if not isinstance(custom, Mapping):
        error = FieldError(INPUT_NAME, Rule.TYPE, "expected an object")
        raise bad_input(ValidationFailed([error]))
    return dict(custom)


def policy_names(custom: Mapping[str, Any] | None) -> list[str]:
    """The policy fields a `customFields` input writes."""
    return [f"{CUSTOM_PREFIX}{key}" for key in (custom or {})]


def definitions_of(catalog: FieldCatalog, resource: Resource) -> dict[str, FieldDefinition]:
    return {d.key: d for d in catalog.definitions if d.resource is resource}


def stored_custom(
    definitions: Mapping[str, FieldDefinition],
    stored: Mapping[str, Any],
    cipher: FieldCipher,
    data_key: str | None = None,
) -> dict[str, Any]:
    """A record's custom values by policy name `cf.<key>`, decrypted (for the masked audit);
    `data_key` is the record's wrapped key (customers and contacts)."""
    found: dict[str, Any] = {}
    for key, value in stored.items():
        definition = definitions.get(key)
        if definition is not None and definition.sensitive and isinstance(value, str):
            value = cipher.decrypt(definition.cipher_label, value, data_key)
        found[f"{CUSTOM_PREFIX}{key}"] = value
    return found


def write_custom(
    context: RequestContext,
    resource: Resource,
    row: Any,
    custom: Mapping[str, Any] | None,
    *,
    creating: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate and apply `custom` to `row.custom_fields`; (before, after) by policy name.

    Runs on create even when no `customFields` were given: a required field must be there.
    """
    catalog = context.decisions.snapshot.catalog
    definitions = definitions_of(catalog, resource)
    stored = dict(row.custom_fields or {})
    try:
        changes = validate_custom_values(definitions, custom, stored, creating=creating)
    except ValidationFailed as failed:
        raise bad_input(failed) from None
    if not changes:
        return {}, {}
    data_key = getattr(row, "data_key", None)
    before = stored_custom(
        definitions, {k: stored.get(k) for k in changes}, context.cipher, data_key
    )
    if resource is Resource.CUSTOMER and any(
        definitions[k].sensitive and v is not None for k, v in changes.items()
    ):
        data_key = own_data_key(row, context.cipher)  # sensitive values are personal data
    after: dict[str, Any] = {}
    for key, value in changes.items():
        after[f"{CUSTOM_PREFIX}{key}"] = value
        if value is None:
            stored.pop(key, None)
            continue
        definition = definitions[key]
        stored[key] = (
            context.cipher.encrypt(definition.cipher_label, value, data_key)
            if definition.sensitive
            else value
        )
    row.custom_fields = stored  # a new dict: the ORM sees the change
    return before, after
