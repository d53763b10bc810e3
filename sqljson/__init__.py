"""Record reads compiled into one SQL statement that returns the response's JSON.

graphql-core spends ~4.5 µs per field and the direct executor still builds ~550 Python objects
for a 50-customer 360° view; PostgreSQL builds the same JSON with `json_build_object` and
`json_agg` in a fraction of that. This package compiles a direct-eligible operation — for one
principal's decisions — into a single statement: every level's rows come from the same
`plan_columns` masks and `Predicate.sql` scopes as `RecordReader`, and the statement also
returns what the audit trail and FORBIDDEN reporting need (each level's ids, the withheld
fields). The compiled statement is cached with the principal's decisions, so a repeated query
costs one round trip and no SQLAlchemy work.

The direct executor stays the reference: `tests/graphql/test_sqljson.py` compares responses,
read logs and denials of both on every demo role.
"""

from sqljson.compiler import NotCompilableError
from sqljson.executor import RawJSON, answer, answer_again, request_key

__all__ = ["NotCompilableError", "RawJSON", "answer", "answer_again", "request_key"]
