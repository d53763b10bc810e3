"""The HTTP edge: body size, JSON, content types, GET, batching, headers, CORS, timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from api.hardening.settings import HardeningSettings
from api.settings import Settings
from tests.security.conftest import LEAKS, GraphQLClient, assert_clean, running, settings_with

LIMIT = HardeningSettings().max_body_bytes
ME = "{ me { user { username } } }"


def body_of_size(size: int) -> bytes:
    """A valid GraphQL request body of exactly `size` bytes (padded in an ignored key)."""
    head = orjson.dumps({"query": ME, "pad": ""})
    return head[:-2] + b"x" * (size - len(head)) + b'"}'


async def auth_headers(sec: GraphQLClient, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await sec.token('alice')}", **extra}


async def test_a_body_at_the_limit_runs_and_one_byte_more_is_413(sec: GraphQLClient) -> None:
    headers = await auth_headers(sec, **{"Content-Type": "application/json"})
    at = await sec.http.post("/graphql", content=body_of_size(LIMIT), headers=headers)
    assert at.status_code == 200 and at.json()["data"]["me"]["user"]["username"] == "alice"
    over = await sec.http.post("/graphql", content=body_of_size(LIMIT + 1), headers=headers)
    assert over.status_code == 413
    assert over.json()["errors"][0]["extensions"] == {
        "code": "PAYLOAD_TOO_LARGE",
        "maximum": LIMIT,
    }
    assert_clean(over)


async def test_an_oversized_body_is_refused_before_authentication(sec: GraphQLClient) -> None:
    response = await sec.http.post(
        "/graphql",
        content=body_of_size(LIMIT + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


async def test_a_chunked_body_without_length_is_cut_off_at_the_limit(sec: GraphQLClient) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"query": "{ __typename }", "pad": "'
        while sent < 10 * LIMIT:
            sent += 16384
            yield b"x" * 16384

    headers = await auth_headers(sec, **{"Content-Type": "application/json"})
    response = await sec.http.post("/graphql", content=endless(), headers=headers)
    assert response.status_code == 413
    assert sent < 2 * LIMIT  # refused while reading, not after buffering everything


async def test_an_upload_has_its_own_larger_limit(sec: GraphQLClient) -> None:
    headers = await auth_headers(sec, **{"Content-Type": "multipart/form-data; boundary=b"})
    response = await sec.http.post("/graphql", content=b"x" * (LIMIT + 1), headers=headers)
    # past the JSON body limit, refused by the endpoint (no upload header, or no upload support)
    assert response.status_code in (400, 415) and "data" not in response.json()
    huge = HardeningSettings().max_upload_bytes + 1
    response = await sec.http.post(
        "/graphql", headers={**headers, "Content-Length": str(huge)}, content=b""
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "raw",
    [b"{", b"", b"nul", b'{"query": "{ me }",}', b"\xff\xfe", b'"just a string"', b"42",
     b"null", b'{"query": 42}', b'{"query": "{ __typename }", "variables": [1]}',
     b'{"query": "{ __typename }", "operationName": 7}'],
)  # fmt: skip
async def test_malformed_json_is_a_400_without_details(sec: GraphQLClient, raw: bytes) -> None:
    headers = await auth_headers(sec, **{"Content-Type": "application/json"})
    response = await sec.http.post("/graphql", content=raw, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert_clean(response)


async def test_a_batch_is_refused_with_400(sec: GraphQLClient) -> None:
    headers = await auth_headers(sec)
    for batch in ([{"query": ME}, {"query": ME}], [{"query": ME}], []):
        response = await sec.http.post("/graphql", json=batch, headers=headers)
        assert response.status_code == 400
        assert "Batched operations are not supported" in response.text


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/graphql", "application/jsonx", "text/json", ""],
)  # fmt: skip
async def test_only_application_json_is_accepted(sec: GraphQLClient, content_type: str) -> None:
    headers = await auth_headers(sec)
    if content_type:
        headers["Content-Type"] = content_type
    response = await sec.http.post("/graphql", content=orjson.dumps({"query": ME}), headers=headers)
    # multipart is for uploads and needs a custom header no cross-site form can send
    assert response.status_code in ((400, 415) if content_type.startswith("multipart") else (415,))
    assert "data" not in response.json()
    assert_clean(response)


async def test_json_with_a_charset_parameter_is_accepted(sec: GraphQLClient) -> None:
    headers = await auth_headers(sec, **{"Content-Type": "application/json; charset=utf-8"})
    response = await sec.http.post("/graphql", content=orjson.dumps({"query": ME}), headers=headers)
    assert response.status_code == 200


async def test_get_never_executes_anything(sec: GraphQLClient, seeded_settings: Settings) -> None:
    mutation = 'mutation { revokeToken(id: "x") }'
    headers = await auth_headers(sec)
    for query in (mutation, ME):
        response = await sec.http.get("/graphql", params={"query": query}, headers=headers)
        assert response.status_code == 405 and "data" not in response.json()
    async with running(settings_with(seeded_settings, env="dev")) as dev:
        response = await dev.http.get("/graphql", params={"query": mutation}, headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")  # GraphiQL, not a result


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


async def test_every_response_carries_the_security_headers(sec: GraphQLClient) -> None:
    headers = await auth_headers(sec)
    responses = [
        await sec.http.post("/graphql", json={"query": ME}, headers=headers),
        await sec.http.post("/graphql", json={"query": ME}),
        await sec.http.post("/graphql", content=b"{}", headers={"Content-Type": "text/plain"}),
        await sec.http.post("/graphql", content=body_of_size(LIMIT + 1), headers=headers),
        await sec.http.get("/healthz"),
        await sec.http.post("/auth/token", data={"username": "alice", "password": "wrong"}),
        await sec.http.get("/no-such-route"),
    ]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.request.url, name)
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers  # test mode: no HSTS


async def test_graphql_and_auth_responses_are_never_cached(sec: GraphQLClient) -> None:
    headers = await auth_headers(sec)
    for response in (
        await sec.http.post("/graphql", json={"query": ME}, headers=headers),
        await sec.http.post("/graphql", json={"query": ME}),
        await sec.http.post("/auth/token", data={"username": "alice", "password": "dossier-demo"}),
        await sec.http.post("/auth/refresh", data={"refresh_token": "nope"}),
    ):
        assert response.headers["cache-control"] == "no-store", response.request.url


async def test_production_adds_hsts(seeded_settings: Settings) -> None:
    async with running(settings_with(seeded_settings, env="prod")) as prod:
        response = await prod.http.get("/healthz")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_cors_answers_only_listed_origins(seeded_settings: Settings) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    settings = settings_with(seeded_settings, cors_origins=("https://crm.example.com",))
    async with running(settings) as client:
        ok = await client.http.options(
            "/graphql", headers={"Origin": "https://crm.example.com", **preflight}
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://crm.example.com"
        assert "access-control-allow-credentials" not in ok.headers
        evil = await client.http.options(
            "/graphql", headers={"Origin": "https://evil.example", **preflight}
        )
        assert evil.status_code == 400
        assert "access-control-allow-origin" not in evil.headers
        simple = await client.http.post(
            "/graphql", json={"query": ME}, headers={"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in simple.headers
    async with running(settings_with(seeded_settings)) as closed:
        response = await closed.http.options(
            "/graphql", headers={"Origin": "https://crm.example.com", **preflight}
        )
        assert "access-control-allow-origin" not in response.headers


async def test_an_execution_over_its_time_is_stopped_with_a_clean_error(
    seeded_settings: Settings,
) -> None:
    query = "{ customers(first: 500) { nodes { name contacts { nodes { name } } } } }"
    async with running(settings_with(seeded_settings, execution_timeout_seconds=1e-6)) as slow:
        response = await slow.post("alice", query)
        assert response.status_code == 503
        assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
        assert not LEAKS.search(response.text)
    async with running(settings_with(seeded_settings, execution_timeout_seconds=30.0)) as fine:
        response = await fine.post("alice", query)
        assert response.status_code == 200 and response.json()["data"]["customers"]["nodes"]


async def test_the_request_id_comes_back_and_a_forged_one_is_replaced(sec: GraphQLClient) -> None:
    headers = await auth_headers(sec)
    good = await sec.http.post(
        "/graphql", json={"query": ME}, headers={**headers, "X-Request-ID": "trace-12345678"}
    )
    assert good.headers["x-request-id"] == "trace-12345678"
    forged = await sec.http.post(
        "/graphql", json={"query": ME}, headers={**headers, "X-Request-ID": 'a"<script>' * 3}
    )
    assert "<" not in forged.headers["x-request-id"]
