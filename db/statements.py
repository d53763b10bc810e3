"""Counting the SQL statements a request sends, for `X-SQL-Statements` and the metrics.

Statements through SQLAlchemy are counted by an engine hook (`api.app`); code that sends a
statement straight to asyncpg calls `count_statement` itself.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# statements sent during the current request; None outside one
statement_counter: ContextVar[list[int] | None] = ContextVar("statement_counter", default=None)


def count_statement(*_: Any) -> None:
    counter = statement_counter.get()
    if counter is not None:
        counter[0] += 1
