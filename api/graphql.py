"""POST /graphql: authenticate, execute with a per-request context, audit, answer.

The order matters for the audit promise: the response is built only after the request's read
events are committed with it, so a read that cannot be audited is never served.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.types import ExecutionResult

from api.auth.backend import authenticate, authenticate_read, known_users
from api.auth.errors import AuthenticationError, unauthorized_response
from api.auth.known_users import StalePrincipal, UserFacts, confirm_users
from api.exports import UploadRefusedError, bulk_runtime, close_uploads, upload_payload
from api.hardening.rate_limit import too_many_requests
from api.metrics import observe_operation
from api.state import AppState
from audit.batch import ReadAuditBatcher
from audit.chain import append_events
from audit.events import AuditAction, AuditRecord
from db.statements import statement_counter
from events.outbox import enqueue
from policy.principal import Principal
from resolvers.context import RequestContext, RequestDatabase, RequestMeta
from resolvers.errors import DossierError, ForbiddenError, NotFoundError
from resolvers.sqljson import RawJSON, answer_again, request_key

log = logging.getLogger("dossier.graphql")
T = TypeVar("T")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
OPERATION = re.compile(r"\b(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]{0,99})")


def is_mutation(query: str) -> bool:
    return OPERATION_KIND.search(query) is not None


OPERATION_KIND = re.compile(r"^\s*mutation\b", re.MULTILINE)


def operation_name_of(query: str, given: str | None) -> str | None:
    """The name the client chose, or the document's only named operation."""
    if given:
        return given[:100]
    names = OPERATION.findall(query)
    return names[0] if len(names) == 1 else None


NO_STORE = {"Cache-Control": "no-store"}


JSON_TYPE = "application/json"


class JSONBody(Response):
    media_type = JSON_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def spliced(data: RawJSON, errors: list[dict[str, Any]]) -> bytes:
    """The response body around `data` that PostgreSQL already wrote as JSON."""
    if not errors:
        return b'{"data":' + data.text + b"}"
    return b'{"data":' + data.text + b',"errors":' + orjson.dumps(errors) + b"}"


async def _counted(work: Awaitable[T]) -> tuple[int, T]:
    """The statements `work` ran, which each request of a read-audit batch counts as its own,
    and what it returned."""
    counter = [0]
    token = statement_counter.set(counter)
    try:
        result = await work
    finally:
        statement_counter.reset(token)
    return counter[0], result


async def _append(connection: Any, records: Any) -> int:
    """Append a batch of read events (`append_events` is looked up when called: tests and bench
    variants replace it)."""
    statements, _ = await _counted(append_events(connection, records))
    return statements


def read_audit(state: AppState) -> ReadAuditBatcher:
    """This process's group committer of read events, made on first use. It also confirms the
    user rows that reads were authenticated with (`authenticate_read`)."""
    batcher: ReadAuditBatcher | None = state.extras.get("read_audit")
    if batcher is None:
        known = known_users(state)

        async def confirm(connection: Any, claims: Any) -> tuple[int, list[Exception | None]]:
            return await _counted(confirm_users(connection, claims, known))

        batcher = ReadAuditBatcher(state.engine, _append, confirm)
        state.extras["read_audit"] = batcher
    return batcher


def changes_nothing(query: str, is_upload: bool) -> bool:
    """Whether the request can only read: GraphQL keywords are case-sensitive, so a document
    that can run a mutation (or a subscription) spells the word, wherever it stands."""
    return not is_upload and "mutation" not in query and "subscription" not in query


def request_id_of(request: Request) -> str:
    offered = request.headers.get("x-request-id", "")
    return offered if REQUEST_ID.match(offered) else uuid.uuid4().hex


def error_response(message: str, code: str, status: int, request_id: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code, "requestId": request_id}}]}
    return JSONBody(body, status_code=status, headers={**NO_STORE, "X-Request-ID": request_id})


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """Known errors keep their message and code; anything else is masked as INTERNAL."""
    original = error.original_error
    formatted: dict[str, Any] = {"message": error.message}
    if error.path is not None:
        formatted["path"] = error.path
    if (
        original is None
        or isinstance(original, GraphQLError)
        or (error.path is None and not isinstance(original, DossierError))
    ):
        # parse and validation errors, variable coercion (no path: nothing ran yet): the
        # request itself is wrong
        formatted["extensions"] = {"code": "BAD_USER_INPUT"}
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


def audit_ids(ids: set[int | str]) -> list[str]:
    """The ids of a read event as text, in numeric order for numeric ids.

    Bigint keys are sorted as integers, in C: sorting their text by (length, text) gave the
    same order at ~0.15 ms per 550-id view (measured), 8 % of the request. Text ids (or a mix,
    where `5` and `"5"` name the same record once) keep that (length, text) order.
    """
    try:
        ordered = sorted(ids)
    except TypeError:  # ints beside texts
        ordered = sorted({str(i) for i in ids}, key=lambda i: (len(i), i))
    else:
        if ordered and isinstance(ordered[0], str):
            ordered.sort(key=lambda i: (len(i), i))
    return list(map(str, ordered))


def audit_records(
    context: RequestContext, principal: Principal, meta: RequestMeta, denied: set[str]
) -> list[AuditRecord]:
    common: dict[str, Any] = {
        "actor": principal.name,
        "actor_kind": principal.kind.value,
        "operation": meta.operation,
        "query_hash": meta.query_hash,
        "ip": meta.ip,
        "user_agent": meta.user_agent,
        "request_id": meta.request_id,
        "token_id": principal.token_id,
    }
    records = [
        AuditRecord(
            action=AuditAction.READ,
            resource_type=resource,
            resource_ids=audit_ids(ids),
            fields=sorted(fields),
            **common,
        )
        for resource, (ids, fields) in sorted(context.reads.entries.items())
    ]
    if denied:
        records.append(AuditRecord(action=AuditAction.DENIED, fields=sorted(denied), **common))
    return records


@dataclass(frozen=True, slots=True)
class Operation:
    """What the client asked for, checked for shape."""

    query: str
    variables: dict[str, Any]
    name: str | None
    meta: RequestMeta


async def graphql_endpoint(request: Request) -> Response:
    state: AppState = request.app.state.dossier
    request_id = request_id_of(request)
    if request.method == "GET":
        if state.settings.is_dev:
            return HTMLResponse(state.extras["graphiql_html"])
        return error_response("Use POST with application/json", "BAD_REQUEST", 405, request_id)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_upload = content_type == "multipart/form-data"  # GraphQL multipart request: imports
    if content_type != "application/json" and not is_upload:
        return error_response(
            "Content-Type must be application/json", "BAD_REQUEST", 415, request_id
        )
    try:
        principal, unconfirmed = await authenticate_read(request)
    except AuthenticationError as error:
        return unauthorized_response(error)
    wait = await state.extras["rate_limiter"].spend(principal)
    if wait is not None:
        return too_many_requests(wait, request_id)
    try:
        if is_upload:
            payload = await upload_payload(request, state.settings.bulk.max_upload_bytes)
        else:
            payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return error_response("Body is not valid JSON", "BAD_REQUEST", 400, request_id)
    except UploadRefusedError as refused:
        await close_uploads(request)
        return error_response(refused.message, refused.code, refused.status, request_id)
    if isinstance(payload, list):
        # batching is off: one operation per request keeps every limit per operation
        return error_response(
            "Batched operations are not supported; send one operation per request",
            "BAD_REQUEST",
            400,
            request_id,
        )
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return error_response(
            "Body must be an object with a `query` string", "BAD_REQUEST", 400, request_id
        )
    variables = payload.get("variables") or {}
    operation_name = payload.get("operationName")
    if not isinstance(variables, dict) or not (
        operation_name is None or isinstance(operation_name, str)
    ):
        return error_response("`variables` must be an object", "BAD_REQUEST", 400, request_id)

    query: str = payload["query"]
    meta = RequestMeta(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request_id,
        operation=operation_name_of(query, operation_name),
        query_hash=hashlib.sha256(query.encode()).hexdigest(),
    )
    if unconfirmed is not None and not changes_nothing(query, is_upload):
        unconfirmed = None  # a write must not run at all for a revoked token: check first
        try:
            principal = await authenticate(request)
        except AuthenticationError as error:
            await close_uploads(request)
            return unauthorized_response(error)
    operation = Operation(query, variables, operation_name, meta)
    try:
        try:
            return await _serve(request, state, principal, unconfirmed, operation)
        except StalePrincipal:
            # renamed or moved while the read ran: answer as who they are now
            try:
                principal = await authenticate(request)
            except AuthenticationError as error:
                return unauthorized_response(error)
            return await _serve(request, state, principal, None, operation)
    finally:
        await close_uploads(request)


async def _execute(schema: Any, context: RequestContext, operation: Operation) -> Any:
    """The operation's result: a read these decisions compiled before runs its statement
    straight away (`resolvers.sqljson.answer_again`), anything else goes through Strawberry."""
    try:
        data = await answer_again(context)
    except Exception as exc:  # whatever it was, the full path answers and reports it
        log.debug("repeated read not answered directly: %r", exc)
        context.reset_reads()
        data = None
    if data is not None:
        context.extras["executor"] = "sql"
        return ExecutionResult(data=data, errors=None)
    return await schema.execute(
        operation.query,
        variable_values=operation.variables,
        context_value=context,
        operation_name=operation.name,
    )


async def _serve(
    request: Request,
    state: AppState,
    principal: Principal,
    unconfirmed: UserFacts | None,
    operation: Operation,
) -> Response:
    """Execute, audit and answer; `unconfirmed`: the user facts that must still hold when the
    read's events commit (raises StalePrincipal when they changed but the token is valid)."""
    query, variables, operation_name, meta = (
        operation.query,
        operation.variables,
        operation.name,
        operation.meta,
    )
    request_id = meta.request_id or ""
    store = state.extras["policy_store"]
    decisions = state.extras["decision_cache"].for_principal(principal, store.current())
    db = RequestDatabase(state.sessions)
    context = RequestContext(
        principal=principal,
        decisions=decisions,
        db=db,
        cipher=state.settings.field_cipher,
        policy_store=store,
        meta=meta,
        extras={
            "bulk": bulk_runtime(state),
            "insight_settings": state.settings.insights,
            "raw_json": True,  # `data` may come back as JSON text (resolvers.sqljson)
            "request_key": request_key(meta.query_hash, operation_name, variables),
        },
    )
    counter = [0]
    token = statement_counter.set(counter)
    try:
        deadline = asyncio.timeout(state.settings.hardening.execution_timeout_seconds)
        try:
            async with deadline:
                result = await _execute(state.extras["schema"], context, operation)
        except TimeoutError:
            if not deadline.expired():
                raise
            log.warning("execution timed out", extra={"request_id": request_id})
            return error_response("The request took too long", "TIMEOUT", 503, request_id)
        errors = [format_error(e, request_id) for e in result.errors or ()]
        errors.extend(
            {
                "message": f"Not allowed to read {field}",
                "extensions": {"code": "FORBIDDEN", "field": field},
            }
            for field in sorted(context.denials)
        )
        refused = {
            e.original_error.extensions["field"]
            for e in result.errors or ()
            if isinstance(e.original_error, ForbiddenError)
        } | {
            # a write aimed outside the caller's scope is answered NOT_FOUND, like a missing
            # id, but the attempt is still a denied one for the trail
            f"Mutation.{e.path[0]}"
            for e in result.errors or ()
            if isinstance(e.original_error, NotFoundError) and e.path and is_mutation(query)
        }
        # only a failed field leaves a transaction to recover; an answer without errors had
        # every statement succeed (the check went through SQLAlchemy's session on every request)
        if result.errors and await db.recover():
            # whatever the lost transaction wrote is gone, and so are the events describing it
            context.pending_events.clear()
        records = context.pending_events + audit_records(
            context, principal, meta, context.denials | refused
        )
        try:
            if context.pending_events or is_mutation(query) or context.extras.get("policy_changed"):
                if unconfirmed is not None:  # cannot happen (`changes_nothing`); never commit it
                    raise StalePrincipal
                # a write and its events share one transaction
                if records:
                    await append_events(db.session, records)
                    await enqueue(db.session, records)
                await db.commit()
            else:
                await db.close()  # a read commits nothing of its own: only its events
                if records or unconfirmed is not None:
                    counter[0] += await read_audit(state).append(records, unconfirmed)
        except AuthenticationError as refused_caller:
            return unauthorized_response(refused_caller)
        except StalePrincipal:
            raise
        except Exception:
            log.exception("audit write failed; response withheld", extra={"request_id": request_id})
            return error_response("The request could not be audited", "INTERNAL", 503, request_id)
    finally:
        await db.close()
        statement_counter.reset(token)
    if context.extras.get("policy_changed"):
        # this process answers its next request under the new rules; the others hear NOTIFY
        await store.reload()
    observe_operation(
        request, context, result.errors, context.denials | refused, records, counter[0]
    )
    headers = {**NO_STORE, "X-Request-ID": request_id}
    if not state.settings.is_production:
        headers["X-SQL-Statements"] = str(counter[0])
        headers["X-Executor"] = context.extras.get("executor", "general")
    if isinstance(result.data, RawJSON):
        return Response(spliced(result.data, errors), headers=headers, media_type=JSON_TYPE)
    body: dict[str, Any] = {"data": result.data}
    if errors:
        body["errors"] = errors
    return JSONBody(body, headers=headers)
