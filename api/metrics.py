"""`GET /metrics`: what the server is doing, in Prometheus text format, without personal data.

Series (all prefixed `dossier_`):

    graphql_requests_total{operation,outcome}            counter
    graphql_request_duration_seconds{operation,outcome}  histogram
    graphql_sql_statements{operation}                    histogram, statements per request
    graphql_forbidden_total{type,field}                  counter, one per denied field a response
    policy_decision_sets_total{cache}                    counter, per request: hit or miss
    policy_loads_total                                   counter, snapshots loaded (start + reloads)
    audit_events_written_total{action}                   counter, events committed by /graphql
    audit_chain_length                                   gauge, chain head `seq` (every writer)
    auth_login_failures_total / auth_login_throttled_total
    db_pool_size / db_pool_max_overflow / db_pool_checked_out / db_pool_overflow   gauges

Every label value comes from a closed set: operation names are the client's `operationName`
only when it looks like a name (no long digit runs, so no ids) and while a process has seen
fewer than `MAX_OPERATION_NAMES` of them; everything else is "anonymous". Denied fields are
labelled only when they are guarded fields of `policy.vocabulary.FIELDS` or root fields of the
schema, else "other". The audit chain is sealed in the writing transaction, so there is no
sealing lag to report.

With several server processes set `PROMETHEUS_MULTIPROC_DIR` to an empty directory before
they start (`dossier serve --workers N` makes a temporary one): each process writes its values
there and any process answers `/metrics` with the sum over all of them.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import re
import shutil
import tempfile
import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from policy.vocabulary import FIELDS

if TYPE_CHECKING:
    from graphql import GraphQLError

    from audit.events import AuditRecord
    from policy.store import PolicyStore
    from resolvers.context import RequestContext

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ANONYMOUS = "anonymous"
OTHER = "other"
MAX_OPERATION_NAMES = 200
# a GraphQL name, short, and without a run of 4+ digits: `customer123456` is an id, not a name
OPERATION_NAME = re.compile(r"^(?!.*\d{4})[A-Za-z_][A-Za-z0-9_]{0,63}$")
OBSERVATION_KEY = "dossier_graphql_observation"
CHAIN_QUERY_TIMEOUT_SECONDS = 2.0


class Outcome(StrEnum):
    """How a POST /graphql ended; closed, so it can be a label."""

    OK = "ok"
    DENIED = "denied"  # answered, with at least one FORBIDDEN field or operation
    ERROR = "error"  # answered with client errors: bad input, not found, conflict
    INTERNAL = "internal"  # an unexpected error was masked as INTERNAL
    UNAUTHENTICATED = "unauthenticated"  # no valid token: 401 before execution
    REJECTED = "rejected"  # wrong method, content type or body: refused before execution
    UNAUDITED = "unaudited"  # the audit write failed, so the answer was withheld (503)
    TIMEOUT = "timeout"  # execution ran past its deadline (503, code TIMEOUT)
    RATE_LIMITED = "rate_limited"  # the caller's request budget was spent (429)


def is_multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


REQUESTS = Counter(
    "dossier_graphql_requests",
    "POST /graphql requests by operation name and outcome.",
    ["operation", "outcome"],
)
LATENCY = Histogram(
    "dossier_graphql_request_duration_seconds",
    "Time from receiving a POST /graphql to its response being ready.",
    ["operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
STATEMENTS = Histogram(
    "dossier_graphql_sql_statements",
    "SQL statements sent for one executed GraphQL request (audit write included).",
    ["operation"],
    buckets=(1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100),
)
FORBIDDEN = Counter(
    "dossier_graphql_forbidden",
    "FORBIDDEN errors by denied field (one per field per response).",
    ["type", "field"],
)
DECISION_SETS = Counter(
    "dossier_policy_decision_sets",
    "Requests whose field and row decisions were reused (hit) or computed anew (miss).",
    ["cache"],
)
POLICY_LOADS = Counter(
    "dossier_policy_loads",
    "Policy snapshots loaded by a process: one at start, one per change heard over NOTIFY.",
)
AUDIT_EVENTS = Counter(
    "dossier_audit_events_written",
    "Audit events committed by GraphQL requests, by action.",
    ["action"],
)
CHAIN_LENGTH = Gauge(
    "dossier_audit_chain_length",
    "Sequence number of the audit chain head: every event ever written, by any writer.",
    multiprocess_mode="mostrecent",
)
LOGIN_FAILURES = Counter(
    "dossier_auth_login_failures", "Password logins refused for wrong credentials."
)
LOGIN_THROTTLED = Counter(
    "dossier_auth_login_throttled", "Password logins refused with 429 by the login throttle."
)
SHARED_STORE_FALLBACKS = Counter(
    "dossier_shared_store_fallbacks",
    "Limit checks kept in-process because Redis (DOSSIER_REDIS_URL) did not answer.",
)
POOL_SIZE = Gauge(
    "dossier_db_pool_size",
    "Configured connections per pool, summed over live processes.",
    multiprocess_mode="livesum",
)
POOL_MAX_OVERFLOW = Gauge(
    "dossier_db_pool_max_overflow",
    "Configured overflow connections per pool, summed over live processes.",
    multiprocess_mode="livesum",
)
POOL_CHECKED_OUT = Gauge(
    "dossier_db_pool_checked_out",
    "Connections in use, summed over live processes.",
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "dossier_db_pool_overflow",
    "Connections in use beyond the pool size (overflow), summed over live processes.",
    multiprocess_mode="livesum",
)

if is_multiprocess():
    # live gauges of a process that exited must stop counting; uvicorn workers exit normally
    atexit.register(multiprocess.mark_process_dead, os.getpid())


def prepare_multiprocess_directory(workers: int) -> str | None:
    """Make an empty temporary `PROMETHEUS_MULTIPROC_DIR` for N > 1 workers, removed at exit.

    Call before the workers start: prometheus-client reads the variable when it is imported.
    A directory the operator set is kept as given (it must be emptied between runs).
    """
    if workers < 2 or is_multiprocess():
        return os.environ.get(MULTIPROC_ENV)
    directory = tempfile.mkdtemp(prefix="dossier-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


# -- label bounding ----------------------------------------------------------------------------


class OperationNames:
    """The operation label: a client's name while it looks like one and the set is small."""

    def __init__(self, limit: int = MAX_OPERATION_NAMES) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def label(self, name: str | None) -> str:
        if not name or not OPERATION_NAME.match(name) or name == ANONYMOUS:
            return ANONYMOUS
        if name not in self._seen:
            if len(self._seen) >= self._limit:
                return ANONYMOUS
            self._seen.add(name)
        return name


def guarded_fields(root_fields: Iterable[str] = ()) -> frozenset[str]:
    """`Type.field` names a FORBIDDEN error may carry: the policy vocabulary and root fields."""
    names = {f"{resource.value.capitalize()}.{name}" for resource, fields in FIELDS.items()
             for name in fields}  # fmt: skip
    return frozenset(names | set(root_fields))


def root_fields_of(schema: Any) -> list[str]:
    """`Query.x` and `Mutation.x` for every root field of a Strawberry schema."""
    graphql_schema = getattr(schema, "_schema", None)  # strawberry keeps the graphql-core one
    found: list[str] = []
    for root in (graphql_schema.query_type, graphql_schema.mutation_type) if graphql_schema else ():
        if root is not None:
            found.extend(f"{root.name}.{name}" for name in root.fields)
    return found


class ForbiddenLabels:
    """Maps a denied `Type.field` to (type, field) labels from a closed set."""

    def __init__(self) -> None:
        self._known: frozenset[str] | None = None

    def labels(self, denied: str, schema: Any) -> tuple[str, str]:
        if self._known is None:
            self._known = guarded_fields(root_fields_of(schema))
        if denied not in self._known:
            return OTHER, OTHER
        type_name, _, field_name = denied.partition(".")
        return type_name, field_name


_operations = OperationNames()
_forbidden = ForbiddenLabels()
# the decision sets seen by this process; the DecisionCache keeps them alive while they count
_decision_sets: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
_policy_versions: dict[int, int] = {}  # id(PolicyStore) → last snapshot version counted


# -- recording ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """What /graphql knew about an executed request; the route wrapper records its timing."""

    operation: str
    outcome: Outcome


def outcome_of(errors: Collection[GraphQLError], denied: Collection[str]) -> Outcome:
    codes = set()
    for error in errors:
        extensions = getattr(error.original_error, "extensions", None)
        codes.add(extensions.get("code") if isinstance(extensions, dict) else None)
    if "INTERNAL" in codes or any(
        e.original_error is not None and not hasattr(e.original_error, "extensions") for e in errors
    ):
        return Outcome.INTERNAL
    if denied or "FORBIDDEN" in codes:
        return Outcome.DENIED
    return Outcome.ERROR if errors else Outcome.OK


def observe_operation(
    request: Request,
    context: RequestContext,
    errors: Collection[GraphQLError] | None,
    denied: Collection[str],
    audit_events: Collection[AuditRecord],
    statements: int,
) -> None:
    """Record an executed GraphQL request whose audit events were committed.

    Called once at the end of `graphql_endpoint`; the latency and the request count are added
    by `timed` around the route, which sees every request, including refused ones.
    """
    state = request.app.state.dossier
    operation = _operations.label(context.meta.operation)
    outcome = outcome_of(errors or (), denied)
    setattr(request.state, OBSERVATION_KEY, Observation(operation, outcome))
    STATEMENTS.labels(operation).observe(statements)
    for denied_field in sorted(denied):
        FORBIDDEN.labels(*_forbidden.labels(denied_field, state.extras.get("schema"))).inc()
    for record in audit_events:
        AUDIT_EVENTS.labels(str(record.action)).inc()
    decisions = context.decisions
    if _decision_sets.get(id(decisions)) is decisions:
        DECISION_SETS.labels("hit").inc()
    else:
        _decision_sets[id(decisions)] = decisions
        DECISION_SETS.labels("miss").inc()
    count_policy_loads(context.policy_store)


def count_policy_loads(store: PolicyStore) -> None:
    """Bring `policy_loads_total` up to the store's snapshot version (one per load).

    The store numbers its snapshots 1, 2, …; counting the difference here keeps the policy
    package free of metrics while losing no reload (it shows at the next request or scrape).
    """
    snapshot = store.snapshot
    if snapshot is None:
        return
    counted = _policy_versions.get(id(store), 0)
    if snapshot.version > counted:
        POLICY_LOADS.inc(snapshot.version - counted)
        _policy_versions[id(store)] = snapshot.version


def _error_code(response: Response) -> str | None:
    try:
        code = json.loads(bytes(response.body))["errors"][0]["extensions"]["code"]
    except (ValueError, LookupError, TypeError, AttributeError):
        return None
    return code if isinstance(code, str) else None


def outcome_of_refusal(response: Response) -> Outcome:
    """The outcome of a request answered before (or instead of) a GraphQL result."""
    status = response.status_code
    if status == 401:
        return Outcome.UNAUTHENTICATED
    if status == 429:
        return Outcome.RATE_LIMITED
    if status == 503:
        return Outcome.TIMEOUT if _error_code(response) == "TIMEOUT" else Outcome.UNAUDITED
    if status >= 500:
        return Outcome.INTERNAL
    return Outcome.REJECTED if status >= 400 else Outcome.OK


Endpoint = Callable[[Request], Awaitable[Response]]


def timed(endpoint: Endpoint) -> Endpoint:
    """Wrap the /graphql endpoint: count every POST and time it, labelled by its observation."""

    async def timed_endpoint(request: Request) -> Response:
        if request.method != "POST":
            return await endpoint(request)  # GraphiQL pages are not operations
        started = time.perf_counter()
        try:
            response = await endpoint(request)
        except BaseException:
            _record(ANONYMOUS, Outcome.INTERNAL, started)
            raise
        observation: Observation | None = getattr(request.state, OBSERVATION_KEY, None)
        if observation is None:
            _record(ANONYMOUS, outcome_of_refusal(response), started)
        else:
            _record(observation.operation, observation.outcome, started)
        return response

    return timed_endpoint


def _record(operation: str, outcome: Outcome, started: float) -> None:
    REQUESTS.labels(operation, outcome.value).inc()
    LATENCY.labels(operation, outcome.value).observe(time.perf_counter() - started)


def count_login_failure() -> None:
    LOGIN_FAILURES.inc()


def count_login_throttled() -> None:
    LOGIN_THROTTLED.inc()


def count_shared_store_fallback() -> None:
    SHARED_STORE_FALLBACKS.inc()


# -- database pool -----------------------------------------------------------------------------


def watch_pool(engine: AsyncEngine) -> None:
    """Keep the pool gauges current from the pool's own checkout and checkin events."""
    pool = engine.sync_engine.pool
    size = pool.size() if hasattr(pool, "size") else 0
    max_overflow = getattr(pool, "_max_overflow", 0)
    POOL_SIZE.inc(size)
    POOL_MAX_OVERFLOW.inc(max(0, max_overflow))
    in_use = [0]
    disposed = [False]

    def moved(delta: int) -> None:
        if disposed[0]:
            # a connection of a disposed pool, finalised late (a dead one the garbage collector
            # found): its engine's share was taken off the gauges already
            return
        before = max(0, in_use[0] - size)
        in_use[0] += delta
        POOL_CHECKED_OUT.inc(delta)
        POOL_OVERFLOW.inc(max(0, in_use[0] - size) - before)

    event.listen(engine.sync_engine, "checkout", lambda *_: moved(+1))
    event.listen(engine.sync_engine, "checkin", lambda *_: moved(-1))

    def forget() -> None:
        POOL_SIZE.dec(size)
        POOL_MAX_OVERFLOW.dec(max(0, max_overflow))
        POOL_CHECKED_OUT.dec(in_use[0])
        POOL_OVERFLOW.dec(max(0, in_use[0] - size))
        disposed[0] = True

    # a disposed engine (end of lifespan) no longer holds a pool
    event.listen(engine.sync_engine, "engine_disposed", lambda *_: forget())


# -- the endpoint ------------------------------------------------------------------------------


async def sample_chain_length(engine: AsyncEngine) -> None:
    """Read the audit chain length into its gauge (in the background: `api.ops_routes`)."""
    try:
        async with asyncio.timeout(CHAIN_QUERY_TIMEOUT_SECONDS), engine.connect() as connection:
            seq = await connection.scalar(text("SELECT seq FROM audit_chain_head WHERE id = 1"))
    except Exception:  # the scrape still answers; readiness reports the database
        log.warning("audit chain length not sampled", exc_info=True)
        return
    if seq is not None:
        CHAIN_LENGTH.set(seq)


def exposition() -> bytes:
    """The text format over this process, or over every process in multiprocess mode."""
    if is_multiprocess():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped
        return generate_latest(registry)
    return generate_latest(REGISTRY)
