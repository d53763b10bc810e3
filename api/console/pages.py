"""The console's pages: sign-in, policies, access explainer, people and audit.

Every handler opens the session, refuses a POST without the session's CSRF token, runs its
GraphQL operations through `Gateway` as the signed-in user and renders what came back. What the
API refuses (FORBIDDEN on the root field) is shown as a refusal with 403, never worked around.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from graphql import get_named_type
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

import api.console.queries as queries
from api.console.gateway import Gateway, Result, SignedOutError
from api.console.session import CSRF_FIELD, ConsoleSession, SessionCookie
from policy.vocabulary import FIELDS, Action, Resource, Scope
from schema.node import InvalidGlobalIdError, from_global_id

HERE = Path(__file__).parent
ACTIONS = [a.value for a in Action]
SCOPES = [s.value for s in Scope]
RESOURCES = [r.value for r in Resource]
RULE_FIELDS = ("role", "department", "resource", "action", "scope", "effect")
AUDIT_FILTERS = ("actor", "action", "resourceType", "resourceId", "from", "to")
AUDIT_PAGE = 100
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

templates = Jinja2Templates(directory=str(HERE / "templates"))

Page = Callable[[Request, ConsoleSession, Gateway], Awaitable[Response]]


class CsrfRefusedError(Exception):
    """A POST whose form does not repeat the session's CSRF token."""


class Console:
    """Builds the handlers around one `SessionCookie`."""

    def __init__(self, cookie: SessionCookie) -> None:
        self.cookie = cookie

    def page(
        self, handler: Page, *, signed_in: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self.cookie.open(request)
            gateway = Gateway(request, session)
            try:
                if request.method == "POST":
                    form = await request.form(max_fields=50, max_files=0)
                    if not session.accepts(_text(form, CSRF_FIELD)):
                        raise CsrfRefusedError
                    request.state.form = form
                if signed_in and not session.is_signed_in:
                    response: Response = RedirectResponse("/console", status_code=303)
                else:
                    response = await handler(request, session, gateway)
            except CsrfRefusedError:
                response = render(request, session, "refused.html", status=403, reason="csrf")
            except SignedOutError:
                response = RedirectResponse("/console?expired=1", status_code=303)
            response.headers["Cache-Control"] = "no-store"
            response.headers["Content-Security-Policy"] = CSP
            return self.cookie.seal(session, response)

        return endpoint


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def form_of(request: Request) -> FormData:
    form: FormData = request.state.form
    return form


def render(
    request: Request, session: ConsoleSession, template: str, *, status: int = 200, **values: Any
) -> Response:
    context = {
        "request": request,
        "csrf": session.csrf,
        "username": session.username,
        "path": request.url.path,
        **values,
    }
    return templates.TemplateResponse(request, template, context, status_code=status)


def refused(request: Request, session: ConsoleSession, result: Result, section: str) -> Response:
    return render(
        request,
        session,
        "refused.html",
        status=403,
        reason="policy",
        section=section,
        messages=result.messages(),
    )


# -- sign-in ------------------------------------------------------------------------------------


async def home(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    if not session.is_signed_in:
        return render(request, session, "login.html", expired="expired" in request.query_params)
    result = await gateway.run(queries.HOME)
    me = (result.data or {}).get("me") or {}
    return render(request, session, "home.html", me=me, section="home")


async def sign_in(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    form = form_of(request)
    username = (_text(form, "username") or "").strip()
    answer = await gateway.token(username, _text(form, "password") or "")
    if answer.status != 200:
        error = "throttled" if answer.status == 429 else "invalid"
        return render(
            request,
            session,
            "login.html",
            status=answer.status if answer.status in (401, 429) else 400,
            error=error,
            typed=username,
        )
    pair = answer.json()
    session.sign_in(username, pair["access_token"], pair.get("refresh_token"))
    return RedirectResponse("/console", status_code=303)


async def sign_out(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    session.sign_out()
    return RedirectResponse("/console", status_code=303)


# -- policies -----------------------------------------------------------------------------------


def rule_from(form: FormData | Any) -> dict[str, str]:
    """The rule of the change form, or of the matrix button that was pressed (`rule`: JSON)."""
    values: Any = form
    pressed = _text(form, "rule")
    if pressed:
        try:
            values = orjson.loads(pressed)
        except orjson.JSONDecodeError:
            values = {}
        if not isinstance(values, dict):
            values = {}
    rule = {name: str(values.get(name) or "").strip() for name in RULE_FIELDS}
    rule["effect"] = rule["effect"].upper() or "ALLOW"
    rule["department"] = rule["department"] or "*"
    return rule


def _matrix(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of role × resource; per action the rules (scope, department, effect) in the cell."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for rule in rules:
        key = (rule["role"], rule["resource"])
        row = rows.setdefault(
            key,
            {"role": rule["role"], "resource": rule["resource"], "cells": {a: [] for a in ACTIONS}},
        )
        row["cells"][rule["action"]].append(rule)
    return [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1].split(".")[0], k[1]))]


async def _policies_page(
    request: Request,
    session: ConsoleSession,
    gateway: Gateway,
    *,
    status: int = 200,
    **values: Any,
) -> Response:
    result = await gateway.run(queries.POLICIES)
    if result.is_refused or result.data is None:
        return refused(request, session, result, "policies")
    departments = await gateway.run(queries.DEPARTMENTS)
    names = {"*": "*"}
    for d in (departments.data or {}).get("departments") or []:
        names[_pk(d["id"])] = d["name"]
    rules = result.data["policies"]
    return render(
        request,
        session,
        "policies.html",
        status=status,
        section="policies",
        matrix=_matrix(rules),
        rule_count=len(rules),
        roles=result.data["roles"],
        department_names=names,
        actions=ACTIONS,
        scopes=SCOPES,
        resource_names=_resource_names(),
        applied=request.query_params.get("applied"),
        **values,
    )


def _pk(global_id: str) -> str:
    """The department's number, as rules name it (`policy_rules` keep ids, not global ids)."""
    try:
        return from_global_id(global_id)[1]
    except InvalidGlobalIdError:
        return global_id


def _resource_names() -> list[str]:
    names = []
    for resource in Resource:
        names += [resource.value, f"{resource.value}.*"]
        names += [f"{resource.value}.{f}" for f in FIELDS.get(resource, ())]
    return names


async def policies(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    return await _policies_page(request, session, gateway)


async def preview(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    form = form_of(request)
    change = _text(form, "change") or "add"
    rule = rule_from(form)
    variables = {"add": [rule]} if change == "add" else {"remove": [rule]}
    result = await gateway.run(queries.PREVIEW, variables)
    if result.is_refused:
        return refused(request, session, result, "policies")
    # 200 even when the rule is refused as bad input: htmx swaps only 2xx answers, and the
    # errors are shown where the preview would be
    return await _policies_page(
        request,
        session,
        gateway,
        change=change,
        candidate=rule,
        preview=(result.data or {}).get("previewPolicyChange"),
        errors=result.messages(),
    )


async def apply(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    form = form_of(request)
    change = _text(form, "change") or "add"
    rule = rule_from(form)
    operation = queries.ADD_POLICY if change == "add" else queries.REMOVE_POLICY
    result = await gateway.run(operation, {"rule": rule})
    if result.is_refused:
        return refused(request, session, result, "policies")
    if result.errors:
        return await _policies_page(
            request,
            session,
            gateway,
            status=400,
            change=change,
            candidate=rule,
            errors=result.messages(),
        )
    return RedirectResponse(f"/console/policies?applied={change}", status_code=303)


# -- access -------------------------------------------------------------------------------------


async def access(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    users = await gateway.run(queries.ACCESS_USERS)
    params = request.query_params
    chosen = {
        "username": params.get("username", ""),
        "resource": params.get("resource", "customer"),
        "field": params.get("field", ""),
        "action": params.get("action", "READ"),
        "record": params.get("record", "").strip(),
    }
    explanation = record = None
    errors: list[str] = []
    if chosen["username"]:
        variables = {
            "username": chosen["username"],
            "resource": chosen["resource"],
            "action": chosen["action"],
            "field": chosen["field"] or None,
        }
        result = await gateway.run(queries.EXPLAIN, variables)
        if result.is_refused:
            return refused(request, session, result, "access")
        explanation = (result.data or {}).get("explainAccess")
        errors += result.messages()
        if chosen["record"]:
            variables = {k: v for k, v in variables.items() if k != "resource"}
            found = await gateway.run(
                queries.EXPLAIN_RECORD, {**variables, "recordId": chosen["record"]}
            )
            record = (found.data or {}).get("explainRecordAccess")
            errors += found.messages()
    elif users.is_refused:
        return refused(request, session, users, "access")
    return render(
        request,
        session,
        "access.html",
        section="access",
        chosen=chosen,
        actions=ACTIONS,
        users=(users.data or {}).get("users") or [],
        resources=RESOURCES,
        fields=FIELDS,
        explanation=explanation,
        record=record,
        errors=errors,
    )


# -- people -------------------------------------------------------------------------------------


def _tree(departments: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(depth, department) in tree order, for an indented list."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    known = {d["id"] for d in departments}
    for d in departments:
        parent = (d.get("parent") or {}).get("id")
        children.setdefault(parent if parent in known else None, []).append(d)
    ordered: list[tuple[int, dict[str, Any]]] = []

    def walk(parent: str | None, depth: int) -> None:
        for d in children.get(parent, []):
            ordered.append((depth, d))
            walk(d["id"], depth + 1)

    walk(None, 0)
    return ordered


@dataclass(frozen=True)
class DeactivateShape:
    """How this server's `deactivateUser` is called: the workflow branch adds `successorId`
    (and may answer with a payload around the user), so the console reads the schema the
    endpoint executes, once, instead of assuming either."""

    takes_successor: bool
    selection: str


def deactivate_shape(request: Request) -> DeactivateShape:
    extras = request.app.state.dossier.extras
    if "console_deactivate" not in extras:
        schema = extras["schema"]._schema  # graphql-core's schema behind Strawberry's
        field = schema.mutation_type.fields["deactivateUser"]
        answer = get_named_type(field.type)
        fields = getattr(answer, "fields", {})
        if "username" in fields:
            selection = "username active"
        elif "user" in fields:
            selection = "user { username active }"
        else:
            selection = "__typename"
        extras["console_deactivate"] = DeactivateShape("successorId" in field.args, selection)
    shape: DeactivateShape = extras["console_deactivate"]
    return shape


async def _users_page(
    request: Request, session: ConsoleSession, gateway: Gateway, *, status: int = 200, **values: Any
) -> Response:
    result = await gateway.run(queries.USERS)
    if result.is_refused or result.data is None:
        return refused(request, session, result, "users")
    data = result.data
    roles: dict[str, list[dict[str, Any]]] = {}
    for assignment in data.get("roleAssignments") or []:
        roles.setdefault(assignment["username"], []).append(assignment)
    return render(
        request,
        session,
        "users.html",
        status=status,
        section="users",
        tree=_tree(data.get("departments") or []),
        users=data.get("users") or [],
        roles=roles,
        successor=deactivate_shape(request).takes_successor,
        done=request.query_params.get("deactivated"),
        **values,
    )


async def users(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    return await _users_page(request, session, gateway)


async def deactivate(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    form = form_of(request)
    user_id = _text(form, "user") or ""
    successor = _text(form, "successor") or None
    shape = deactivate_shape(request)
    if shape.takes_successor:
        operation = (
            "mutation ConsoleDeactivateUser($id: ID!, $successorId: ID) {"
            f" deactivateUser(id: $id, successorId: $successorId) {{ {shape.selection} }} }}"
        )
        variables: dict[str, Any] = {"id": user_id, "successorId": successor}
    else:
        operation = (
            "mutation ConsoleDeactivateUser($id: ID!) {"
            f" deactivateUser(id: $id) {{ {shape.selection} }} }}"
        )
        variables = {"id": user_id}
    result = await gateway.run(operation, variables)
    if result.is_refused:
        return refused(request, session, result, "users")
    if result.errors:
        return await _users_page(request, session, gateway, status=400, errors=result.messages())
    answer = (result.data or {}).get("deactivateUser") or {}
    name = (answer.get("user") or answer).get("username", "")
    return RedirectResponse(f"/console/users?{urlencode({'deactivated': name})}", status_code=303)


# -- audit --------------------------------------------------------------------------------------


def _audit_filter(values: Any) -> dict[str, str]:
    chosen = {name: (values.get(name) or "").strip() for name in AUDIT_FILTERS}
    filter: dict[str, str] = {}
    for name in ("actor", "action", "resourceType", "resourceId"):
        if chosen[name]:
            filter[name] = chosen[name]
    for name in ("from", "to"):
        if chosen[name]:
            filter[name] = _utc(chosen[name])
    return filter


def _utc(local: str) -> str:
    """A `datetime-local` value, read as UTC (the page says so)."""
    try:
        return datetime.fromisoformat(local).replace(tzinfo=None).isoformat() + "+00:00"
    except ValueError:
        return local  # the API says what is wrong with it


async def _audit_page(
    request: Request,
    session: ConsoleSession,
    gateway: Gateway,
    values: Any,
    *,
    verify: bool = False,
    **extra: Any,
) -> Response:
    chosen = {name: (values.get(name) or "").strip() for name in AUDIT_FILTERS}
    filter = _audit_filter(values)
    events = await gateway.run(queries.AUDIT, {"filter": filter, "first": AUDIT_PAGE})
    if events.is_refused or events.data is None:
        return refused(request, session, events, "audit")
    integrity = await gateway.run(queries.INTEGRITY, {"verify": verify})
    return render(
        request,
        session,
        "audit.html",
        section="audit",
        chosen=chosen,
        events=events.data["auditEvents"],
        errors=events.messages() + integrity.messages(),
        integrity=(integrity.data or {}).get("auditIntegrity"),
        verified=verify,
        history=bool(chosen["resourceId"]),
        **extra,
    )


async def audit(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    return await _audit_page(request, session, gateway, request.query_params)


async def verify_now(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    return await _audit_page(request, session, gateway, form_of(request), verify=True)


async def export(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    form = form_of(request)
    format = "CSV" if _text(form, "format") == "CSV" else "JSONL"
    result = await gateway.run(queries.EXPORT, {"filter": _audit_filter(form), "format": format})
    if result.is_refused:
        return refused(request, session, result, "audit")
    exported = (result.data or {}).get("exportAuditEvents")
    if exported and exported.get("url"):
        exported["consoleUrl"] = "/console" + exported["url"][exported["url"].index("/exports/") :]
    return await _audit_page(
        request, session, gateway, form, exported=exported, export_errors=result.messages()
    )


async def download(request: Request, session: ConsoleSession, gateway: Gateway) -> Response:
    token = request.path_params["token"]
    answer = await gateway.authorized("GET", f"/exports/{token}")
    headers = {
        k: v for k, v in answer.headers.items() if k in ("content-disposition", "x-content-sha256")
    }
    return Response(
        answer.body,
        status_code=answer.status,
        headers=headers,
        media_type=answer.headers.get("content-type"),
    )
