"""What a failed validation tells the caller.

    ValidationFailed            one input was rejected; `.errors` holds every bad field
    └── errors: FieldError      one field broke one rule (itself raisable by single-value checks)

Single-value normalisers (`normalise_phone`, `normalise_credit_code`, …) raise one `FieldError`;
record validators (`validate_customer_input`, …) collect them and raise one `ValidationFailed`,
so a form or an import row reports all its problems at once. The GraphQL layer maps each
`FieldError` to an error with `extensions.code = "BAD_USER_INPUT"` via `as_extensions()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")


class Rule(StrEnum):
    """The rule a field broke; stable strings that clients may switch on."""

    REQUIRED = "required"
    REQUIRED_ONE_OF = "required_one_of"
    TYPE = "type"
    LENGTH = "length"
    FORMAT = "format"
    CHECKSUM = "checksum"
    STRUCTURE = "structure"
    VOCABULARY = "vocabulary"
    ENUM = "enum"
    RANGE = "range"
    PRECISION = "precision"
    NOT_ALLOWED = "not_allowed"
    UNKNOWN_FIELD = "unknown_field"
    TRANSITION = "transition"
    CONFLICT = "conflict"


class FieldError(ValueError):
    """One field of one input broke one rule; `suggestions` lists values the caller may mean."""

    def __init__(
        self, field: str, rule: str, message: str, suggestions: Iterable[str] = ()
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = str(rule)
        self.message = message
        self.suggestions: tuple[str, ...] = tuple(suggestions)

    def __repr__(self) -> str:
        return (
            f"FieldError(field={self.field!r}, rule={self.rule!r}, message={self.message!r}, "
            f"suggestions={self.suggestions!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldError):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[str, str, str, tuple[str, ...]]:
        return (self.field, self.rule, self.message, self.suggestions)

    def renamed(self, field: str) -> FieldError:
        """The same error reported on another field name (e.g. `phone` inside `contacts[2]`)."""
        return FieldError(field, self.rule, self.message, self.suggestions)

    def as_extensions(self) -> dict[str, Any]:
        """GraphQL `extensions` for this error, per docs/api.md's BAD_USER_INPUT."""
        extensions: dict[str, Any] = {
            "code": "BAD_USER_INPUT",
            "field": self.field,
            "rule": self.rule,
        }
        if self.suggestions:
            extensions["suggestions"] = list(self.suggestions)
        return extensions


# named by issue 6's brief, not `...Error`: it is the verdict on a whole input, not a fault
class ValidationFailed(Exception):
    """An input was rejected; nothing may be written. Carries every `FieldError` found."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        if not self.errors:
            raise ValueError("ValidationFailed needs at least one FieldError")
        super().__init__("; ".join(str(error) for error in self.errors))

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the bad fields, in the order they were found, each once."""
        return tuple(dict.fromkeys(error.field for error in self.errors))


class ErrorCollector:
    """Runs checks and gathers their `FieldError`s so that one input reports all of them."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, error: FieldError) -> None:
        self.errors.append(error)

    def run(self, check: Callable[[], T]) -> T | None:
        """The check's result, or None after recording the `FieldError` it raised."""
        try:
            return check()
        except FieldError as error:
            self.errors.append(error)
            return None
        except ValidationFailed as failed:
            self.errors.extend(failed.errors)
            return None

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)
