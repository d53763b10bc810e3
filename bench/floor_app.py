"""The floor: the nested view as one hand-written SQL statement, behind a bare Starlette route.

This is the least work that still gives `bob` the answer Dossier gives him: the row scope (the
Sales subtree) and the phone/e-mail mask (his own department only) are written into the SQL,
`json_agg` builds the nested JSON in PostgreSQL, and Python only decrypts the few phones that
survive the mask and adds the FORBIDDEN entries. No token check, no GraphQL, no audit: what a
general server spends beyond this is the price of being general.

    uvicorn --factory bench.floor_app:create_floor_app   # DATABASE_URL and DOSSIER_* set
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.settings import Settings
from db.crypto import FieldCipher

MANAGER = "bob"

# $1: the departments whose customers the manager reads (his subtree); $2: the departments
# where he also reads phone and e-mail (his own); $3: the page size
VIEW_SQL = """
WITH page AS (
    SELECT c.id, c.name, c.kind, c.industry, c.region, c.level, c.updated_at,
           c.department_id = ANY($2::bigint[]) AS contact_details,
           c.phone_enc || coalesce('|' || c.data_key, '') AS phone_enc,
           c.email_enc || coalesce('|' || c.data_key, '') AS email_enc
    FROM customers c
    WHERE c.archived_at IS NULL AND c.department_id = ANY($1::bigint[])
    ORDER BY c.id
    LIMIT $3
)
SELECT coalesce(json_agg(json_build_object(
    'name', p.name, 'kind', p.kind, 'industry', p.industry, 'region', p.region,
    'level', p.level,
    'phone', CASE WHEN p.contact_details THEN p.phone_enc END,
    'email', CASE WHEN p.contact_details THEN p.email_enc END,
    -- Python's isoformat: six-digit microseconds, none at all when they are zero
    'updatedAt', to_char(p.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_part('microseconds', p.updated_at)::bigint % 1000000 = 0 THEN ''
                ELSE to_char(p.updated_at AT TIME ZONE 'UTC', '.US') END || '+00:00',
    'contacts', json_build_object('nodes', (
        SELECT coalesce(json_agg(json_build_object(
            'name', x.name, 'title', x.title, 'phone', NULL) ORDER BY x.id), '[]')
        FROM (SELECT id, name, title FROM contacts
              WHERE customer_id = p.id AND archived_at IS NULL ORDER BY id LIMIT 50) x)),
    'opportunities', json_build_object('nodes', (
        SELECT coalesce(json_agg(json_build_object(
            'name', o.name, 'stage', o.stage, 'amount', o.amount::text) ORDER BY o.id), '[]')
        FROM (SELECT id, name, stage, amount FROM opportunities
              WHERE customer_id = p.id AND archived_at IS NULL ORDER BY id LIMIT 50) o)),
    'tickets', json_build_object('nodes', (
        SELECT coalesce(json_agg(json_build_object(
            'title', t.title, 'status', t.status, 'priority', t.priority) ORDER BY t.id), '[]')
        FROM (SELECT id, title, status, priority FROM tickets
              WHERE customer_id = p.id AND archived_at IS NULL ORDER BY id LIMIT 50) t))
) ORDER BY p.id), '[]')::text AS nodes,
coalesce(bool_or(NOT p.contact_details), false) AS masked,
count(*) AS customers
FROM page p
"""

MANAGER_SCOPE_SQL = """
WITH RECURSIVE tree(id) AS (
    SELECT department_id FROM users WHERE username = $1
    UNION ALL
    SELECT d.id FROM departments d JOIN tree ON d.parent_id = tree.id
)
SELECT (SELECT department_id FROM users WHERE username = $1) AS own,
       array_agg(id) AS subtree
FROM tree
"""


@dataclass(frozen=True)
class ManagerScope:
    """Departments of the manager's row scope and of his phone/e-mail mask."""

    subtree: Sequence[int]
    own: Sequence[int]


async def manager_scope(connection: asyncpg.Connection, username: str = MANAGER) -> ManagerScope:
    row = await connection.fetchrow(MANAGER_SCOPE_SQL, username)
    if row is None or row["own"] is None:
        raise RuntimeError(f"no user {username!r}: is the database seeded?")
    return ManagerScope(subtree=list(row["subtree"]), own=[row["own"]])


async def connect(url: str) -> asyncpg.Connection:
    # UTC: timestamps in the JSON then read exactly as Dossier writes them
    return await asyncpg.connect(url, server_settings={"timezone": "UTC"})


async def view_answer(
    connection: asyncpg.Connection, scope: ManagerScope, cipher: FieldCipher, page: int = 50
) -> bytes:
    """The response body Dossier would send bob for the nested view, from one statement."""
    row = await connection.fetchrow(VIEW_SQL, scope.subtree, scope.own, page)
    assert row is not None  # an aggregate always returns one row
    nodes: list[dict[str, Any]] = orjson.loads(row["nodes"])
    for node in nodes:
        if node["phone"] is not None:
            node["phone"] = cipher.decrypt("customer.phone", node["phone"])
        if node["email"] is not None:  # under the customer's data key, which travels with it
            node["email"] = cipher.decrypt("customer.email", node["email"])
    body: dict[str, Any] = {"data": {"customers": {"nodes": nodes}}}
    denied = []
    if any(node["contacts"]["nodes"] for node in nodes):
        denied.append("Contact.phone")
    if row["masked"]:
        denied += ["Customer.email", "Customer.phone"]
    if denied:
        body["errors"] = [
            {"message": f"Not allowed to read {f}", "extensions": {"code": "FORBIDDEN", "field": f}}
            for f in denied
        ]
    return orjson.dumps(body)


def create_floor_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    url = (settings.database_url or os.environ["DATABASE_URL"]).replace("+asyncpg", "")
    pool_size = settings.pool.size

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            url, min_size=pool_size, max_size=pool_size, server_settings={"timezone": "UTC"}
        )
        async with pool.acquire() as connection:
            app.state.scope = await manager_scope(connection)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    async def view(request: Request) -> Response:
        await request.body()  # read like any endpoint would; the query is fixed
        async with request.app.state.pool.acquire() as connection:
            body = await view_answer(connection, request.app.state.scope, settings.field_cipher)
        return Response(body, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    routes = [Route("/graphql", view, methods=["POST"]), Route("/healthz", healthz)]
    return Starlette(routes=routes, lifespan=lifespan)
