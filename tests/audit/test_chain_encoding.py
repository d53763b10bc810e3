"""What an append binds before the lock: the rows `prepare_row` makes and the text[] literals."""

from __future__ import annotations

import enum
import json
import random

import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.types import Text

from audit.canonical import CanonicalTemplate
from audit.chain import _UNNESTED, AuditWriteError, _array_literal, _bound, prepare_row
from audit.events import AuditRecord

# the characters a literal's quoting and orjson's escaping care about, and a few others
ALPHABET = list('\\"{},; \t\n\r\x01\x1f\x7f\u2028\u2029\x85\ufeff') + [
    "NULL",
    "北",
    "\U0001f600",
    "a",
    "7",
]


def random_items(rng: random.Random) -> list[str]:
    return [
        "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(6)))
        for _ in range(rng.randrange(8))
    ]


async def test_array_literals_read_back_as_their_items_whatever_the_text(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rng = random.Random(20261123)
    lists = [random_items(rng) for _ in range(2000)]
    lists += [[], [""], ["plain", "ids", "1", "22"], ['say "hi"'], ["back\\slash"], ["\n"]]
    statement = text(
        "SELECT ordinality, CAST(literal AS text[]) AS items "
        "FROM unnest(:literals) WITH ORDINALITY AS t(literal, ordinality) ORDER BY ordinality"
    ).bindparams(bindparam("literals", type_=ARRAY(Text())))
    async with sessions() as session:
        result = await session.execute(
            statement, {"literals": [_array_literal(items) for items in lists]}
        )
        assert [row.items for row in result] == lists


class Colour(str, enum.Enum):  # noqa: UP042  # the mixin whose str() is not its value
    RED = "red"  # str() of it is "Colour.RED", which is what an append always recorded


class Shouting(str):
    def __str__(self) -> str:
        return self.upper()


@pytest.mark.parametrize(
    ("ids", "stored"),
    [
        (["1", "2"], ["1", "2"]),
        (("1", "2"), ["1", "2"]),
        ([1, 2], ["1", "2"]),
        (range(3), ["0", "1", "2"]),
        ([Colour.RED], [str(Colour.RED)]),
        ([Shouting("a"), "b"], ["A", "b"]),
        ([], []),
    ],
)
def test_ids_and_fields_are_stored_as_str_of_each(ids: object, stored: list[str]) -> None:
    record = AuditRecord(actor="a", actor_kind="USER", action="READ", resource_ids=ids, fields=ids)  # type: ignore[arg-type]
    row = prepare_row(record)
    assert row["resource_ids"] == stored and row["fields"] == stored
    assert all(type(item) is str for item in row["resource_ids"] + row["fields"])


def test_the_callers_list_is_not_what_is_stored() -> None:
    ids = ["1", "2"]
    row = prepare_row(AuditRecord(actor="a", actor_kind="USER", action="READ", resource_ids=ids))
    ids.append("3")
    assert row["resource_ids"] == ["1", "2"]


@pytest.mark.parametrize(
    "record",
    [
        AuditRecord(actor="a", actor_kind="USER", action="READ", resource_ids="12"),
        AuditRecord(actor="a", actor_kind="USER", action="READ", fields="name"),
        AuditRecord(actor="a", actor_kind="USER", action="READ", resource_ids=["1", "2\x003"]),
        AuditRecord(actor="a", actor_kind="USER", action="READ", fields=["a\x00"]),
        AuditRecord(actor="a\x00", actor_kind="USER", action="READ"),
        AuditRecord(actor="a", actor_kind="USER", action="READ", user_agent="x\x00"),
        AuditRecord(actor="", actor_kind="USER", action="READ"),
    ],
)
def test_what_cannot_be_recorded_is_refused(record: AuditRecord) -> None:
    with pytest.raises(AuditWriteError):
        prepare_row(record)


def test_bound_arrays_hold_every_column_but_the_chained_ones_event_by_event() -> None:
    rows = [
        prepare_row(
            AuditRecord(
                actor=f"user{n}",
                actor_kind="USER",
                action="READ",
                resource_type="customer",
                resource_ids=[str(n), "x"],
                fields=["name"],
                changes={"level": {"old": "A", "new": "B"}} if n == 2 else None,
                request_id=f"r{n}",
            )
        )
        for n in range(3)
    ]
    templates = [CanonicalTemplate(row) for row in rows]
    columns = dict(zip(_UNNESTED, _bound(rows, templates), strict=True))
    assert columns["actor"] == ["user0", "user1", "user2"]
    assert columns["request_id"] == ["r0", "r1", "r2"]
    assert columns["resource_ids"] == ['{"0","x"}', '{"1","x"}', '{"2","x"}']
    assert columns["fields"] == ['{"name"}'] * 3 and columns["token_id"] == [None] * 3
    assert columns["changes"][:2] == [None, None]
    assert json.loads(columns["changes"][2]) == {"level": {"new": "B", "old": "A"}}
    assert not {"seq", "at", "prev_hash", "hash"} & columns.keys()
    # the canonical bytes around `at` and `prev_hash`, as the statement splices and hashes them
    for template, before, between, after in zip(
        templates, columns["before"], columns["between"], columns["after"], strict=True
    ):
        spliced = before + b'"AT"' + between + b'"PREV"' + after
        assert spliced == template.encode("AT", "PREV")


def test_a_literal_of_what_orjson_refuses_is_still_made() -> None:
    assert _array_literal(["a", "\ud800"]) == '{"a","\ud800"}'
