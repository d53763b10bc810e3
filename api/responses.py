"""How /graphql answers: the media type a client accepts, error shapes and the JSON body.

GraphQL over HTTP (the GraphQL Foundation's draft spec) defines two response media types. With
`application/graphql-response+json` a request error (the document cannot run: it does not parse,
does not validate, or names no operation) is a 4xx; with the legacy `application/json` every
well-formed request answers 200 and the error is in the body. A client without an `Accept`
header is a legacy client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import GraphQLError, GraphQLSchema, ValuesOfCorrectTypeRule, parse, validate
from starlette.requests import Request
from starlette.responses import Response

from api.hardening.introspection import scrub_suggestions
from api.operation import RequestError
from resolvers.errors import DossierError

log = logging.getLogger("dossier.graphql")

JSON_TYPE = "application/json"
GRAPHQL_RESPONSE_TYPE = "application/graphql-response+json"
NO_STORE = {"Cache-Control": "no-store"}

# what each Accept entry selects; the legacy type for wildcards, so old clients keep 200s
_ACCEPTED = {
    GRAPHQL_RESPONSE_TYPE: GRAPHQL_RESPONSE_TYPE,
    JSON_TYPE: JSON_TYPE,
    "application/*": JSON_TYPE,
    "*/*": JSON_TYPE,
}


class JSONBody(Response):
    media_type = JSON_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def accepted_media_type(request: Request) -> str | None:
    """The response type to use, by the client's `Accept` and its q-values; None: none fits."""
    header = request.headers.get("accept")
    if not header:
        return JSON_TYPE
    # (quality, exact type over a wildcard, the client's order, the type it selects)
    candidates: list[tuple[float, bool, int, str]] = []
    for position, entry in enumerate(header.split(",")):
        kind, *params = (part.strip().lower() for part in entry.split(";"))
        chosen = _ACCEPTED.get(kind)
        if chosen is None:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            candidates.append((quality, chosen == kind, -position, chosen))
    return max(candidates)[3] if candidates else None


@dataclass(frozen=True, slots=True)
class Answer:
    """How this request's answers are written: media type and the request id they carry."""

    media_type: str
    request_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {**NO_STORE, "X-Request-ID": self.request_id}

    def error(
        self,
        message: str,
        code: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> Response:
        """One error, no `data`: the request was refused before anything ran."""
        error: dict[str, Any] = {
            "message": message,
            "extensions": {"code": code, **extensions, "requestId": self.request_id},
        }
        return JSONBody(
            {"errors": [error]},
            status_code=status,
            headers={**self.headers, **(headers or {})},
            media_type=self.media_type,
        )

    def request_error(self, refused: RequestError) -> Response:
        """A document that cannot run: 400 for the new media type, 200 for legacy JSON."""
        status = 400 if self.media_type == GRAPHQL_RESPONSE_TYPE else 200
        error: dict[str, Any] = {
            "message": refused.message,
            "extensions": {**refused.extensions, "requestId": self.request_id},
        }
        if refused.locations:
            error["locations"] = [{"line": line, "column": col} for line, col in refused.locations]
        return JSONBody(
            {"errors": [error]},
            status_code=status,
            headers=self.headers,
            media_type=self.media_type,
        )

    def body(self, content: bytes, headers: dict[str, str]) -> Response:
        return Response(content, headers=headers, media_type=self.media_type)

    def json(self, content: Any, headers: dict[str, str], status: int = 200) -> Response:
        return JSONBody(content, status_code=status, headers=headers, media_type=self.media_type)


def error_response(message: str, code: str, status: int, request_id: str) -> Response:
    """An error in legacy JSON, for callers that have not negotiated a type (kept for them)."""
    return Answer(JSON_TYPE, request_id).error(message, code, status)


def spliced(data: bytes, errors: list[dict[str, Any]]) -> bytes:
    """The response body around `data` that PostgreSQL already wrote as JSON."""
    if not errors:
        return b'{"data":' + data + b"}"
    return b'{"data":' + data + b',"errors":' + orjson.dumps(errors) + b"}"


def bad_values(schema: GraphQLSchema, query: str) -> frozenset[tuple[int, int] | str]:
    """Where the document's literal values do not fit their types (see `_places`).

    Those fail validation too, but to a client they are bad input like a bad variable
    (BAD_USER_INPUT, the contract's code for bad values), not a broken document. Asked only
    when validation failed, so a valid request never pays for this second pass.
    """
    try:
        errors = validate(schema, parse(query), [ValuesOfCorrectTypeRule])
    except GraphQLError:
        return frozenset()
    return frozenset(_places(error) for error in errors)


def _places(error: GraphQLError) -> tuple[int, int] | str:
    """What identifies an error across two validation passes: its first location (messages
    differ with suggestions on and off, places do not), or its message where it has none (a
    custom scalar refusing a literal reports no location)."""
    if not error.locations:
        return scrub_suggestions(error.message)
    first = error.locations[0]
    return (first.line, first.column)


def format_error(
    error: GraphQLError,
    request_id: str,
    *,
    executed: bool,
    suggestions: bool,
    value_errors: frozenset[tuple[int, int] | str] = frozenset(),
) -> dict[str, Any]:
    """Known errors keep their message and code; anything else is masked as INTERNAL.

    `executed`: whether execution had begun. An error without a path from before that is the
    document failing validation (GRAPHQL_VALIDATION_FAILED) unless it is one of the
    `value_errors` (`bad_values`); one from after it is a variable that did not coerce, a bad
    value (BAD_USER_INPUT). `suggestions`: whether "Did you mean …" may stay in messages —
    never for a caller who may not introspect.
    """
    original = error.original_error
    message = error.message if suggestions else scrub_suggestions(error.message)
    formatted: dict[str, Any] = {"message": message}
    if error.path is not None:
        formatted["path"] = error.path
    if (
        original is None
        or isinstance(original, GraphQLError)
        or (error.path is None and not isinstance(original, DossierError))
    ):
        bad_value = executed or _places(error) in value_errors
        code = "BAD_USER_INPUT" if bad_value else "GRAPHQL_VALIDATION_FAILED"
        formatted["extensions"] = {"code": code}
        if error.locations:
            formatted["locations"] = [
                {"line": loc.line, "column": loc.column} for loc in error.locations
            ]
    elif isinstance(original, DossierError):
        formatted["extensions"] = dict(original.extensions)
    else:
        log.error(
            "unexpected error in resolver",
            exc_info=original,
            extra={"request_id": request_id, "path": error.path},
        )
        formatted = {
            "message": "Internal error",
            "path": error.path,
            "extensions": {"code": "INTERNAL", "requestId": request_id},
        }
    return formatted
