"""Money amounts: non-negative, at most two decimals, `Decimal` in and out."""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

from validation.errors import FieldError, Rule

CENT = Decimal("0.01")
# Numeric(14, 2), the width of customers.total_spend and opportunities.amount
MAX_AMOUNT = Decimal("999999999999.99")
_DECORATION = re.compile(r"[\s,¥]")  # thousands separators and the yuan sign, after NFKC


def normalise_amount(
    value: Any, *, field: str = "amount", maximum: Decimal = MAX_AMOUNT
) -> Decimal:
    """The amount quantised to cents; refuses negatives, fractions of a cent and overflow.

    Accepts `Decimal`, `int`, text ("1,234.50", "¥1234.5") and finite floats (spreadsheet cells,
    read through their shortest repr so 0.1 stays 0.1). Never rounds: "1.005" is an error.
    """
    amount = _to_decimal(value, field)
    if amount < 0:
        raise FieldError(field, Rule.RANGE, "must not be negative")
    if amount > maximum:
        raise FieldError(field, Rule.RANGE, f"must be at most {maximum}")
    quantised = amount.quantize(CENT)
    if quantised != amount:
        raise FieldError(field, Rule.PRECISION, "must have at most two decimal places")
    return quantised + 0  # + 0 turns -0.00 into 0.00


def _to_decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool):
        raise FieldError(field, Rule.TYPE, "expected an amount, got a boolean")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise FieldError(field, Rule.FORMAT, "must be a finite number")
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        text = _DECORATION.sub("", unicodedata.normalize("NFKC", value))
        if not text:
            raise FieldError(field, Rule.REQUIRED, "must not be blank")
        if len(text) > 40:
            raise FieldError(field, Rule.LENGTH, "is too long for an amount")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise FieldError(field, Rule.FORMAT, f"{value!r} is not a number") from None
    else:
        raise FieldError(field, Rule.TYPE, f"expected an amount, got {type(value).__name__}")
    if not amount.is_finite():
        raise FieldError(field, Rule.FORMAT, "must be a finite number")
    return amount
