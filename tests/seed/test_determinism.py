"""The same N and seed give the same data; another seed gives other data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from api.seed import seed_demo
from api.seed.customers import TABLES, CustomerGenerator, SalesForce
from api.settings import Settings
from db.engine import create_engine
from db.migrate import upgrade_to_head
from tests.conftest import fresh_database, settings_for

NOW = datetime(2025, 1, 15, tzinfo=UTC)
CLEAR_CUSTOMER_COLUMNS = (
    "id, name, kind, industry, region, level, source, tags, credit_code, "
    "total_spend, owner_id, department_id, created_at, updated_at, last_interaction_at"
)


@pytest.fixture(scope="module")
def twin_urls() -> Iterator[tuple[str, str, str]]:
    with (
        fresh_database("dossier_twin") as first,
        fresh_database("dossier_twin") as second,
        fresh_database("dossier_twin") as other,
    ):
        yield first, second, other


async def _seed_and_read(
    url: str, data_dir: Path, seed: int
) -> dict[str, list[tuple[object, ...]]]:
    settings: Settings = settings_for(url, data_dir)
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
        await seed_demo(engine, settings.field_cipher, customers=300, seed=seed, now=NOW)
    finally:
        await engine.dispose()
    connection = await asyncpg.connect(url)
    try:
        customers = await connection.fetch(
            f"SELECT {CLEAR_CUSTOMER_COLUMNS}, email_enc, address_enc, phone_enc, data_key"  # noqa: S608  # fixed columns
            " FROM customers ORDER BY id"
        )
        contacts = await connection.fetch(
            "SELECT customer_id, name, title, email_enc, phone_enc, data_key FROM contacts"
            " ORDER BY id"
        )
        tickets = await connection.fetch("SELECT * FROM tickets ORDER BY id")
    finally:
        await connection.close()
    cipher = settings.field_cipher
    return {
        "customers": [
            (
                *row[:-4],
                *(
                    cipher.decrypt(f"customer.{name}", row[f"{name}_enc"], row["data_key"])
                    for name in ("email", "address", "phone")
                ),
            )
            for row in customers
        ],
        "contacts": [
            (
                *row[:-3],
                *(
                    cipher.decrypt(f"contact.{name}", row[f"{name}_enc"], row["data_key"])
                    for name in ("email", "phone")
                ),
            )
            for row in contacts
        ],
        "tickets": [tuple(row) for row in tickets],
    }


async def test_same_seed_gives_the_same_data_in_another_database(
    twin_urls: tuple[str, str, str], data_dir: Path
) -> None:
    first_url, second_url, other_url = twin_urls
    # separate data dirs: separate generated keys, so only the clear text can agree
    first = await _seed_and_read(first_url, data_dir / "twin-1", seed=11)
    second = await _seed_and_read(second_url, data_dir / "twin-2", seed=11)
    assert first == second
    other = await _seed_and_read(other_url, data_dir / "twin-3", seed=12)
    assert other["customers"] != first["customers"]
    assert len(other["customers"]) == len(first["customers"]) == 300


def test_blocks_do_not_depend_on_how_many_customers_follow(seed_settings: Settings) -> None:
    """Customer k is the same whether 2 500 or 4 500 are generated: N only adds blocks."""
    force = SalesForce(
        sales_department=2,
        east_department=3,
        north_department=4,
        key_account_owner=3,
        east_reps=(2,),
        north_reps=(7,),
        service_agents=(4,),
        usernames={2: "alice", 3: "bob", 4: "carol", 7: "frank"},
    )
    generator = CustomerGenerator(cipher=seed_settings.field_cipher, force=force, seed=5, now=NOW)

    def names(count: int) -> list[tuple[object, ...]]:
        start = dict.fromkeys(TABLES, 1)
        return [
            row[:9] for block in generator.blocks(count, start) for row in block.rows["customers"]
        ]

    shorter, longer = names(2_500), names(4_500)
    assert longer[: len(shorter)] == shorter
    assert len(set(row[1] for row in longer)) > 0.9 * len(longer)  # names rarely repeat
