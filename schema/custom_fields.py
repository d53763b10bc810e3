"""Types of custom field definitions, vocabularies and the sensitive-field set."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum
class CustomFieldType(Enum):
    TEXT = "TEXT"
    NUMBER = "NUMBER"
    DATE = "DATE"
    BOOLEAN = "BOOLEAN"
    CHOICE = "CHOICE"
    MULTI_CHOICE = "MULTI_CHOICE"


@strawberry.type(
    description="A field an administrator added to customer, contact, opportunity or ticket; "
    "its policy resource is `<resource>.cf.<key>`."
)
class CustomFieldDefinition:
    resource: str
    key: str
    label: str | None
    type: CustomFieldType
    options: list[str] | None
    required: bool
    sensitive: bool = strawberry.field(
        description="Hidden until a rule names it, encrypted at rest, masked in the trail."
    )
    unique: bool = strawberry.field(description="A shared value makes a likely duplicate.")


@strawberry.input
class CustomFieldInput:
    resource: str
    key: str
    type: CustomFieldType
    label: str | None = None
    options: list[str] | None = None
    required: bool = False
    sensitive: bool = False
    unique: bool = False


@strawberry.type(description="One allowed value and the other spellings that mean it.")
class VocabularyTerm:
    term: str
    aliases: list[str]


@strawberry.type(description="A controlled vocabulary: region, industry, source or tag.")
class Vocabulary:
    name: str
    terms: list[VocabularyTerm]


@strawberry.type(description="A field hidden until a rule names it and masked in the trail.")
class SensitiveField:
    resource: str
    field: str
