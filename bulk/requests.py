"""A bulk request as JSON, so a worker on any host decides exactly as the request did.

A job runs later and elsewhere, but it must run as the requester at the time of the request:
the same principal, the same field masks and row scopes, the same audit metadata. So the job
carries the principal, the policy rules and department tree of the decisions the request was
answered with (a policy changed since does not widen or narrow a running export), and the
request's filter. `requester_from` rebuilds them; the Casbin enforcer is rebuilt from the same
rule lines, which is all a `PolicySnapshot` is made of.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import types
import typing
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any

from policy.custom_fields import FieldCatalog
from policy.decisions import AccessDecisions
from policy.principal import Principal, PrincipalKind
from policy.store import DepartmentTree, PolicySnapshot, new_enforcer
from resolvers.context import RequestMeta


@dataclass(frozen=True)
class Requester:
    """Who asked, with the decisions they were answered with, and the request's metadata."""

    principal: Principal
    decisions: AccessDecisions
    meta: RequestMeta


def requester_json(requester: Requester) -> dict[str, Any]:
    principal, snapshot, meta = requester.principal, requester.decisions.snapshot, requester.meta
    return {
        "principal": {
            "kind": principal.kind.value,
            "name": principal.name,
            "userId": principal.user_id,
            "departmentId": principal.department_id,
            "tokenId": None if principal.token_id is None else str(principal.token_id),
            "scopes": None if principal.scopes is None else sorted(principal.scopes),
            "sharedCustomerIds": None
            if principal.shared_customer_ids is None
            else sorted(principal.shared_customer_ids),
        },
        "policy": {
            "version": snapshot.version,
            "lines": [list(line) for line in snapshot.lines],
            "departments": [
                [department, parent, snapshot.departments.names.get(department, "")]
                for department, parent in sorted(snapshot.departments.parents.items())
            ],
        },
        "meta": {
            "ip": meta.ip,
            "userAgent": meta.user_agent,
            "requestId": meta.request_id,
            "operation": meta.operation,
            "queryHash": meta.query_hash,
        },
    }


async def requester_from(data: dict[str, Any], catalog: FieldCatalog) -> Requester:
    """The requester a job was queued by, decided with the policy of its request and the
    custom-field catalog as the worker reads it (definitions are only ever added or retired)."""
    p = data["principal"]
    principal = Principal(
        kind=PrincipalKind(p["kind"]),
        name=p["name"],
        user_id=p["userId"],
        department_id=p["departmentId"],
        token_id=None if p["tokenId"] is None else uuid.UUID(p["tokenId"]),
        scopes=None if p["scopes"] is None else frozenset(p["scopes"]),
        shared_customer_ids=None
        if p["sharedCustomerIds"] is None
        else frozenset(p["sharedCustomerIds"]),
    )
    policy = data["policy"]
    lines = tuple(tuple(line) for line in policy["lines"])
    enforcer = await asyncio.to_thread(new_enforcer, lines)
    tree = DepartmentTree(
        parents={row[0]: row[1] for row in policy["departments"]},
        names={row[0]: row[2] for row in policy["departments"]},
    )
    # a version of its own: these decisions are never cached beside a live process's
    snapshot = PolicySnapshot(
        version=-int(policy["version"]),
        enforcer=enforcer,
        departments=tree,
        lines=lines,
        catalog=catalog,
    )
    m = data["meta"]
    meta = RequestMeta(
        ip=m["ip"],
        user_agent=m["userAgent"],
        request_id=m["requestId"],
        operation=m["operation"],
        query_hash=m["queryHash"],
    )
    return Requester(principal, AccessDecisions(principal, snapshot), meta)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return filter_json(value)
    return value


def filter_json(values: object | None) -> dict[str, Any] | None:
    """A filter input (a Strawberry input dataclass) as JSON: the set fields only."""
    if values is None:
        return None
    return {name: _plain(value) for name, value in vars(values).items() if value is not None}


def _unwrap(annotation: Any) -> Any:
    """`X | None` → X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return options[0] if len(options) == 1 else annotation
    return annotation


def _typed(annotation: Any, value: Any) -> Any:
    kind = _unwrap(annotation)
    if value is None:
        return None
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind) or (Any,)
        return [_typed(item, element) for element in value]
    if isinstance(kind, type):
        if issubclass(kind, Enum):
            return kind(value)
        if issubclass(kind, dt.datetime):
            return dt.datetime.fromisoformat(value)
        if issubclass(kind, dt.date):
            return dt.date.fromisoformat(value)
        if hasattr(kind, "__dataclass_fields__") and isinstance(value, dict):
            return filter_from(kind, value)
    return value


def filter_from(cls: type[Any], data: dict[str, Any] | None) -> Any:
    """The filter input `filter_json` wrote, rebuilt with its field types."""
    if data is None:
        return None
    hints = typing.get_type_hints(cls)
    return cls(**{name: _typed(hints.get(name, Any), value) for name, value in data.items()})
