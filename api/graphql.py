"""GET and POST /graphql: one request, top to bottom, as a pipeline of named steps.

    negotiate → authenticate → limits → read the operation → decide what it is
              → execute → audit (and commit) → respond

The order matters for two promises. The audit promise: the response is built only after the
request's events are durable — a write's in its own transaction, a read's in the read-audit
batch — so a read that cannot be audited is never served and a write is never reported done
before it committed. The write promise: whether an operation can change anything is decided
once, from its parsed document (`api.operation`), and that one decision chooses the
authentication (a write is checked against the user row before it runs), the transaction
(a write commits or rolls back explicitly) and the audit of a refused write (DENIED).
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
from graphql import OperationType
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.types import ExecutionResult

from api.auth.backend import authenticate, authenticate_read, known_users
from api.auth.errors import AuthenticationError, unauthorized_response
from api.auth.known_users import (
    KnownUsers,
    StalePrincipal,
    UserFacts,
    claims_guard,
    confirm_users,
)
from api.exports import UploadRefusedError, bulk_runtime, close_uploads, upload_payload
from api.hardening.cost_budget import answer_again_within_budget
from api.hardening.failures import RETRY_AFTER_SECONDS, is_database_unavailable
from api.hardening.introspection import may_introspect
from api.hardening.rate_limit import RateKey, too_many_requests
from api.metrics import observe_operation
from api.operation import OperationFacts
from api.request_audit import audit_records
from api.responses import (
    JSON_TYPE,
    Answer,
    accepted_media_type,
    bad_values,
    error_response,
    format_error,
    spliced,
)
from api.state import AppState
from audit.batch import ReadAuditBatcher
from audit.chain import append_events
from audit.events import AuditRecord
from db.statements import statement_counter
from events.outbox import enqueue
from policy.principal import Principal
from resolvers.context import RequestContext, RequestDatabase, RequestMeta
from resolvers.errors import ForbiddenError, NotFoundError
from sqljson import RawJSON, request_key

__all__ = ["error_response", "graphql_endpoint"]

log = logging.getLogger("dossier.graphql")
T = TypeVar("T")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
ALLOWED_METHODS = "GET, POST"


def request_id_of(request: Request) -> str:
    offered = request.headers.get("x-request-id", "")
    return offered if REQUEST_ID.match(offered) else uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Operation:
    """What the client asked for, checked for shape, and what its document is."""

    query: str
    variables: dict[str, Any]
    name: str | None
    facts: OperationFacts
    meta: RequestMeta
    is_upload: bool

    @property
    def can_write(self) -> bool:
        """Anything but a plain query may change state (an upload is an import)."""
        return self.facts.can_write or self.is_upload


class Refused(Exception):  # control flow: a step's answer ends the pipeline
    """A step answered the request itself; the pipeline returns `response`."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


# -- the pipeline ---------------------------------------------------------------------------


async def graphql_endpoint(request: Request) -> Response:
    state: AppState = request.app.state.dossier
    request_id = request_id_of(request)
    media_type = accepted_media_type(request)
    answer = Answer(media_type or JSON_TYPE, request_id)
    if request.method == "GET":
        # GET executes nothing (the spec makes it optional; a cross-site link cannot run a
        # query either): it is GraphiQL in dev mode, and otherwise points at POST
        if state.settings.is_dev:
            return HTMLResponse(state.extras["graphiql_html"])
        return answer.error(
            "Send operations with POST and application/json",
            "METHOD_NOT_ALLOWED",
            405,
            headers={"Allow": "POST"},
        )
    try:
        if media_type is None:
            raise Refused(
                answer.error(
                    f"Accept names no type this endpoint answers with "
                    f"(application/graphql-response+json, {JSON_TYPE})",
                    "NOT_ACCEPTABLE",
                    406,
                )
            )
        principal, unconfirmed = await _authenticate(request)
        await _spend_rate_budget(state, principal, answer)
        operation = await _read_operation(request, state, answer)
        if operation.can_write and unconfirmed is not None:
            # a write must not run at all for a revoked token: check the user row first
            principal, unconfirmed = await _authenticate_fully(request), None
        try:
            return await _serve(request, state, principal, unconfirmed, operation, answer)
        except StalePrincipal:
            # renamed or moved while the read ran: answer as who they are now
            principal = await _authenticate_fully(request)
            return await _serve(request, state, principal, None, operation, answer)
    except Refused as refused:
        return refused.response
    finally:
        await close_uploads(request)


async def _authenticate(request: Request) -> tuple[Principal, UserFacts | None]:
    try:
        return await authenticate_read(request)
    except AuthenticationError as error:
        raise Refused(unauthorized_response(error)) from None


async def _authenticate_fully(request: Request) -> Principal:
    try:
        return await authenticate(request)
    except AuthenticationError as error:
        raise Refused(unauthorized_response(error)) from None


async def _spend_rate_budget(state: AppState, principal: Principal, answer: Answer) -> None:
    wait = await state.extras["rate_limiter"].spend(principal)
    if wait is not None:
        raise Refused(too_many_requests(wait, answer.request_id))


async def _read_operation(request: Request, state: AppState, answer: Answer) -> Operation:
    """The operation of a JSON POST or a multipart upload, and the facts of its document;
    refuses what cannot run."""
    payload, is_upload = await _payload(request, state, answer)
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        raise Refused(
            answer.error("Body must be an object with a `query` string", "BAD_REQUEST", 400)
        )
    variables = payload.get("variables") or {}
    operation_name = payload.get("operationName") or None
    if not isinstance(variables, dict):
        raise Refused(answer.error("`variables` must be an object", "BAD_REQUEST", 400))
    if not (operation_name is None or isinstance(operation_name, str)):
        raise Refused(answer.error("`operationName` must be a string", "BAD_REQUEST", 400))
    query: str = payload["query"]
    query_hash = hashlib.sha256(query.encode()).hexdigest()
    facts = state.extras["operation_facts"].facts(query, query_hash, operation_name)
    if facts.error is not None:
        raise Refused(answer.request_error(facts.error))
    if facts.kind is OperationType.SUBSCRIPTION:
        raise Refused(answer.error("Subscriptions are served over WebSocket", "BAD_REQUEST", 400))
    meta = RequestMeta(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=answer.request_id,
        operation=(operation_name or facts.name or "")[:100] or None,
        query_hash=query_hash,
    )
    return Operation(query, variables, operation_name, facts, meta, is_upload)


async def _payload(request: Request, state: AppState, answer: Answer) -> tuple[Any, bool]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":  # GraphQL multipart request: imports
        try:
            return await upload_payload(request, state.settings.bulk.max_upload_bytes), True
        except UploadRefusedError as refused:
            raise Refused(answer.error(refused.message, refused.code, refused.status)) from None
    if content_type != JSON_TYPE:
        raise Refused(answer.error("Content-Type must be application/json", "BAD_REQUEST", 415))
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Refused(answer.error("Body is not valid JSON", "BAD_REQUEST", 400)) from None
    if isinstance(payload, list):
        # batching is off: one operation per request keeps every limit per operation
        raise Refused(
            answer.error(
                "Batched operations are not supported; send one operation per request",
                "BAD_REQUEST",
                400,
            )
        )
    return payload, False


async def _serve(
    request: Request,
    state: AppState,
    principal: Principal,
    unconfirmed: UserFacts | None,
    operation: Operation,
    answer: Answer,
) -> Response:
    """Execute, audit and answer; `unconfirmed`: the user facts that must still hold when the
    read's events commit (raises StalePrincipal when they changed but the token is valid)."""
    context = _request_context(state, principal, operation)
    db = context.db
    if not operation.can_write:
        await db.use_replica()  # when one is fresh enough and the caller wrote nothing lately
    counter = [0]
    token = statement_counter.set(counter)
    try:
        result = await _execute_in_time(state, context, operation, answer)
        if any(is_database_unavailable(e.original_error) for e in _unexpected(result)):
            # the database went away under the resolvers: nothing can be trusted or audited;
            # 503 tells the client to retry (a 200 with INTERNAL would not)
            raise Refused(unavailable(answer))
        refused = _refused_writes(result, operation.facts)
        records = await _audit(
            state, context, operation, unconfirmed, refused, counter, bool(result.errors), answer
        )
    finally:
        await db.close()
        statement_counter.reset(token)
    if context.extras.get("policy_changed"):
        # this process answers its next request under the new rules; the others hear NOTIFY
        await context.policy_store.reload()
    denied = context.denials | refused
    observe_operation(request, context, result.errors, denied, records, counter[0])
    return _respond(state, context, operation.query, result, answer, counter[0])


def _request_context(state: AppState, principal: Principal, operation: Operation) -> RequestContext:
    store = state.extras["policy_store"]
    return RequestContext(
        principal=principal,
        decisions=state.extras["decision_cache"].for_principal(principal, store.current()),
        db=RequestDatabase(
            state.sessions,
            replicas=state.extras.get("replicas"),
            writer=RateKey.of(principal).value,
        ),
        cipher=state.settings.field_cipher,
        policy_store=store,
        meta=operation.meta,
        extras={
            "bulk": bulk_runtime(state),
            "insight_settings": state.settings.insights,
            "raw_json": True,  # `data` may come back as JSON text (sqljson)
            "request_key": request_key(
                operation.meta.query_hash, operation.name, operation.variables
            ),
        },
    )


async def _execute_in_time(
    state: AppState, context: RequestContext, operation: Operation, answer: Answer
) -> Any:
    deadline = asyncio.timeout(state.settings.hardening.execution_timeout_seconds)
    try:
        async with deadline:
            return await _execute(state, context, operation)
    except TimeoutError:
        if not deadline.expired():
            raise
        log.warning("execution timed out", extra={"request_id": answer.request_id})
        raise Refused(answer.error("The request took too long", "TIMEOUT", 503)) from None


async def _execute(state: AppState, context: RequestContext, operation: Operation) -> Any:
    """The operation's result: a read these decisions compiled before runs its statement
    straight away (`sqljson.answer_again`), anything else goes through Strawberry."""
    if not operation.can_write:
        try:
            data = await answer_again_within_budget(context, state.extras.get("cost_budget"))
        except Exception as exc:  # whatever it was, the full path answers and reports it
            log.debug("repeated read not answered directly: %r", exc)
            context.reset_reads()
            data = None
        if data is not None:
            context.extras["executor"] = "sql"
            return ExecutionResult(data=data, errors=None)
    return await state.extras["schema"].execute(
        operation.query,
        variable_values=operation.variables,
        context_value=context,
        operation_name=operation.name,
    )


def _unexpected(result: Any) -> list[Any]:
    """The result's errors that came from an exception, not from GraphQL itself."""
    return [e for e in result.errors or () if e.original_error is not None]


def unavailable(answer: Answer) -> Response:
    return answer.error(
        "The service is unavailable; try again shortly",
        "UNAVAILABLE",
        503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _refused_writes(result: Any, facts: OperationFacts) -> set[str]:
    """Fields refused by a resolver, and mutations aimed outside the caller's scope: those are
    answered NOT_FOUND, like a missing id, but the attempt is still a denied one."""
    refused: set[str] = set()
    for error in result.errors or ():
        original = error.original_error
        if isinstance(original, ForbiddenError):
            refused.add(original.extensions["field"])
        elif isinstance(original, NotFoundError) and error.path and facts.is_mutation:
            refused.add(f"Mutation.{error.path[0]}")
    return refused


async def _audit(
    state: AppState,
    context: RequestContext,
    operation: Operation,
    unconfirmed: UserFacts | None,
    refused: set[str],
    counter: list[int],
    failed: bool,
    answer: Answer,
) -> list[AuditRecord]:
    """Make the request's events durable, with its writes when it has any; refuses to answer
    when they cannot be. `failed`: some field failed, which may have left the transaction
    unusable (only then is it checked: an answer without errors had every statement succeed)."""
    db = context.db
    if failed and await db.recover():
        # whatever the lost transaction wrote is gone, and so are the events describing it
        context.pending_events.clear()
    records = context.pending_events + audit_records(
        context, context.principal, operation.meta, refused
    )
    writes = (
        operation.can_write
        or bool(context.pending_events)
        or bool(context.extras.get("policy_changed"))
    )
    try:
        if writes:
            if unconfirmed is not None:  # a write authenticated against the row; never commit
                raise StalePrincipal
            # a write and its events share one transaction, committed before the answer
            if records:
                await append_events(db.session, records)
                await enqueue(db.session, records)  # the outbox: events out, same transaction
            await db.commit()
        else:
            await db.close()  # a read commits nothing of its own: only its events
            if records or unconfirmed is not None:
                counter[0] += await read_audit(state).append(records, unconfirmed)
    except AuthenticationError as refused_caller:
        raise Refused(unauthorized_response(refused_caller)) from None
    except StalePrincipal:
        raise
    except Exception as failure:
        log.exception(
            "audit write failed; response withheld", extra={"request_id": answer.request_id}
        )
        if is_database_unavailable(failure):
            raise Refused(unavailable(answer)) from None
        raise Refused(answer.error("The request could not be audited", "INTERNAL", 503)) from None
    return records


def _respond(
    state: AppState,
    context: RequestContext,
    query: str,
    result: Any,
    answer: Answer,
    statements: int,
) -> Response:
    executed = bool(context.extras.get("executed"))
    suggestions = state.settings.hardening.field_suggestions and may_introspect(
        context.principal, enabled=True
    )
    value_errors: frozenset[tuple[int, int] | str] = frozenset()
    if result.errors and not executed:
        value_errors = bad_values(state.extras["schema"]._schema, query)
    errors = [
        format_error(
            e,
            answer.request_id,
            executed=executed,
            suggestions=suggestions,
            value_errors=value_errors,
        )
        for e in result.errors or ()
    ]
    errors.extend(
        {
            "message": f"Not allowed to read {field}",
            "extensions": {"code": "FORBIDDEN", "field": field},
        }
        for field in sorted(context.denials)
    )
    headers = answer.headers
    if not state.settings.is_production:
        headers["X-SQL-Statements"] = str(statements)
        headers["X-Executor"] = context.extras.get("executor", "general")
    if isinstance(result.data, RawJSON):
        return answer.body(spliced(result.data.text, errors), headers)
    body: dict[str, Any] = {"data": result.data}
    if errors:
        body["errors"] = errors
    status = 200
    if result.data is None and not executed and answer.media_type != JSON_TYPE:
        status = 400  # the document failed validation: a request error
    return answer.json(body, headers, status)


# -- the read-audit batch -------------------------------------------------------------------


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


class _UserConfirmation:
    """The read-audit batch's confirmation of the user rows reads were authenticated with
    (`authenticate_read`): inside the events' append, explained by `confirm_users`."""

    def __init__(self, known: KnownUsers) -> None:
        self._known = known

    async def append_confirmed(
        self, connection: Any, records: Any, owners: Any, preconditions: Any
    ) -> tuple[int, frozenset[int]]:
        if not records:  # nothing to append (reads that disclosed nothing): just the check
            statements, verdicts = await _counted(
                confirm_users(connection, preconditions, self._known)
            )
            return statements, frozenset(
                number for number, verdict in enumerate(verdicts, start=1) if verdict is None
            )
        guard = claims_guard(preconditions, owners)
        return await _counted(append_events(connection, records, guard=guard))

    async def explain(
        self, connection: Any, preconditions: Any
    ) -> tuple[int, list[Exception | None]]:
        statements, verdicts = await _counted(confirm_users(connection, preconditions, self._known))
        # holding again now, after failing at the append: it changed meanwhile, so run again
        return statements, [verdict or StalePrincipal() for verdict in verdicts]


def read_audit(state: AppState) -> ReadAuditBatcher:
    """This process's group committer of read events, made on first use. It also confirms the
    user rows that reads were authenticated with (`authenticate_read`)."""
    batcher: ReadAuditBatcher | None = state.extras.get("read_audit")
    if batcher is None:
        confirmation = _UserConfirmation(known_users(state))
        batcher = ReadAuditBatcher(state.engine, _append, confirmation)
        state.extras["read_audit"] = batcher
    return batcher
