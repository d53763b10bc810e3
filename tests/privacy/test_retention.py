"""Exports are kept for the download TTL; their expiry is an event of the trail."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graphql.conftest import GraphQLClient
from tests.privacy.test_consents import EXPORT


async def test_an_expired_export_is_swept_and_the_sweep_is_audited(
    gql: GraphQLClient, demo_engine: AsyncEngine
) -> None:
    first = await gql.query("bob", EXPORT, {})
    assert "errors" not in first, first
    async with demo_engine.begin() as connection:
        export_id = (
            await connection.execute(
                text(
                    "UPDATE export_files SET expires_at = now() - interval '1 hour'"
                    " WHERE id = (SELECT id FROM export_files ORDER BY created_at DESC LIMIT 1)"
                    " RETURNING id::text"
                )
            )
        ).scalar_one()
    second = await gql.query("bob", EXPORT, {})  # the next export sweeps
    assert "errors" not in second, second
    async with demo_engine.connect() as connection:
        gone = await connection.execute(
            text("SELECT 1 FROM export_files WHERE id::text = :id"), {"id": export_id}
        )
        assert gone.first() is None
        event = (
            await connection.execute(
                text(
                    "SELECT actor_kind, changes FROM audit_events WHERE action = 'DELETE'"
                    " AND resource_type = 'export' AND resource_ids @> ARRAY[:id]"
                ),
                {"id": export_id},
            )
        ).one()
    assert event.actor_kind == "SYSTEM"
    assert {"principal", "sha256", "downloaded"} <= set(event.changes["expired"][0])
