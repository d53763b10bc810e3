"""What a GraphQL request asks for, decided once from its parsed document.

Everything the endpoint decides about an operation — whether it can write (and so must commit,
must authenticate against the user row first, and must audit a refusal as DENIED), which of the
document's operations runs, what name the audit trail gives it — comes from here, never from
the query text. A regular expression over the text was fooled by a leading comma, a byte-order
mark, a comment or two operations on one line: the mutation ran, nothing committed it, and the
answer said it had succeeded.

The facts depend only on the query text and the operation name the client sent, so they are
cached under the query's hash: a repeated read is not parsed here again (Strawberry's own
parser cache still serves the execution).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

from api.hardening.limits import too_many_tokens


class RequestErrorCode(enum.StrEnum):
    """Why a document cannot run at all (Apollo's codes, as clients know them)."""

    PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    OPERATION_NOT_FOUND = "OPERATION_RESOLUTION_FAILURE"


@dataclass(frozen=True, slots=True)
class RequestError:
    """A GraphQL request error: nothing runs, the answer is one error and no `data`."""

    message: str
    extensions: dict[str, Any]
    locations: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class OperationFacts:
    """The selected operation of a document: its type and name, or why there is none."""

    kind: OperationType | None
    name: str | None
    error: RequestError | None = None

    @property
    def can_write(self) -> bool:
        """Anything but a query may change state, so it is treated as a write."""
        return self.kind is not OperationType.QUERY

    @property
    def is_mutation(self) -> bool:
        return self.kind is OperationType.MUTATION


def _refused(
    code: RequestErrorCode, message: str, error: GraphQLError | None = None
) -> OperationFacts:
    locations = tuple((loc.line, loc.column) for loc in (error.locations or ())) if error else ()
    return OperationFacts(None, None, RequestError(message, {"code": code.value}, locations))


def _select(query: str, operation_name: str | None, max_tokens: int) -> OperationFacts:
    try:
        document = parse(
            query, no_location=False, max_lexical_tokens=max_tokens, max_comments=max_tokens
        )
    except GraphQLError as error:
        refusal = too_many_tokens(error, max_tokens)
        if refusal is not None:
            return OperationFacts(None, None, RequestError(str(refusal), refusal.extensions))
        return _refused(RequestErrorCode.PARSE_FAILED, error.message, error)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        chosen = [o for o in operations if o.name is not None and o.name.value == operation_name]
        if not chosen:
            return _refused(
                RequestErrorCode.OPERATION_NOT_FOUND, f"Unknown operation named '{operation_name}'."
            )
    elif len(operations) > 1:
        return _refused(
            RequestErrorCode.OPERATION_NOT_FOUND,
            "Must provide operation name if query contains multiple operations.",
        )
    else:
        chosen = operations
    if not chosen:
        return _refused(RequestErrorCode.VALIDATION_FAILED, "Must provide an operation.")
    operation = chosen[0]
    return OperationFacts(operation.operation, operation.name.value if operation.name else None)


class OperationFactsCache:
    """Facts by (query hash, operation name), the least recently used dropped first.

    Keyed by the hash the endpoint computes anyway, not the text: a cache of 1 024 texts of up
    to the body limit each could hold a gigabyte.
    """

    def __init__(self, max_tokens: int, maxsize: int = 1024) -> None:
        self.max_tokens = max_tokens
        self.maxsize = maxsize
        self._facts: OrderedDict[tuple[str, str | None], OperationFacts] = OrderedDict()

    def facts(self, query: str, query_hash: str, operation_name: str | None) -> OperationFacts:
        key = (query_hash, operation_name)
        found = self._facts.get(key)
        if found is not None:
            self._facts.move_to_end(key)
            return found
        found = self._facts[key] = _select(query, operation_name, self.max_tokens)
        if len(self._facts) > self.maxsize:
            self._facts.popitem(last=False)
        return found
