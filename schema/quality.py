"""The 3C data-quality score of a customer (complete, current, accurate)."""

from __future__ import annotations

import strawberry


@strawberry.type(description="0-100; `missing` lists empty fields the caller may read.")
class CustomerQuality:
    score: int | None = None
    missing: list[str] | None = None
    stale: bool | None = strawberry.field(
        default=None, description="Not updated for 90 days (30 for level A)."
    )
