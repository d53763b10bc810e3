"""Bulk tests run on the shared demo database of tests/graphql, through HTTP as demo users."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graphql.conftest import (  # noqa: F401  # fixtures, registered by being imported
    GraphQLClient,
    demo,
    demo_app,
    demo_database_url,
    demo_engine,
    demo_settings,
    gql,
)

EXPORT_CUSTOMERS = """
mutation($filter: CustomerFilter, $fields: [String!], $format: ExportFormat! = CSV) {
  exportCustomers(filter: $filter, fields: $fields, format: $format) {
    id rowCount url omittedFields fields sha256 expiresAt
  }
}"""

UPLOAD_MAP = '{"0": ["variables.upload"]}'

IMPORT_CUSTOMERS = """
mutation($upload: Upload!, $dryRun: Boolean!, $mapping: JSON) {
  importCustomers(upload: $upload, dryRun: $dryRun, mapping: $mapping) {
    id status dryRun totalRows processedRows acceptedRows rejectedRows duplicateRows writtenRows
    ignoredColumns error issues { row status field rule message duplicateOf }
  }
}"""


async def export(
    client: GraphQLClient, username: str, mutation: str, variables: dict[str, Any], name: str
) -> dict[str, Any]:
    body = await client.query(username, mutation, variables)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][name]
    return result


async def download(client: GraphQLClient, username: str | None, url: str) -> httpx.Response:
    headers = {}
    if username is not None:
        headers["Authorization"] = f"Bearer {await client.token(username)}"
    return await client.http.get(url, headers=headers)


def csv_rows(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf"), "CSV exports start with a UTF-8 BOM"
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


async def upload(
    client: GraphQLClient,
    username: str,
    content: bytes,
    file_name: str,
    *,
    dry_run: bool = True,
    mapping: dict[str, str | None] | None = None,
    marked: bool = True,
) -> httpx.Response:
    """POST a GraphQL multipart request carrying one file to importCustomers."""
    operations = {
        "query": IMPORT_CUSTOMERS,
        "variables": {"upload": None, "dryRun": dry_run, "mapping": mapping},
    }
    headers = {"Authorization": f"Bearer {await client.token(username)}"}
    if marked:
        headers["X-Dossier-Upload"] = "1"
    return await client.http.post(
        "/graphql",
        data={"operations": orjson.dumps(operations).decode(), "map": UPLOAD_MAP},
        files={"0": (file_name, content, "application/octet-stream")},
        headers=headers,
    )


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


async def count_customers(engine: AsyncEngine, name_prefix: str) -> int:
    async with engine.connect() as connection:
        found = await connection.execute(
            text("SELECT count(*) FROM customers WHERE name LIKE :p"), {"p": f"{name_prefix}%"}
        )
        return int(found.scalar_one())
