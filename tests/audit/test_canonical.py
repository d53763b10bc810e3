"""The canonical encoding is a published format: these vectors must never change silently."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest

from audit.canonical import (
    CANONICAL_KEYS,
    CanonicalEncodingError,
    CanonicalTemplate,
    canonical_bytes,
    event_hash,
    format_at,
    normalise_changes,
)
from audit.masking import mask_value

VECTOR = {
    "action": "UPDATE",
    "actor": "alice",
    "actor_kind": "USER",
    "at": dt.datetime(2025, 1, 2, 3, 4, 5, 6000, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    "changes": normalise_changes(
        {
            "phone": {"old": "138****5678", "new": "139****0000"},
            "totalSpend": {"old": decimal.Decimal("10.50"), "new": 1e20},
            "名称": {"old": "甲", "new": "乙"},
        }
    ),
    "fields": ["phone", "totalSpend"],
    "ip": "10.0.0.1",
    "operation": "UpdateCustomer",
    "prev_hash": "0" * 64,
    "query_hash": None,
    "request_id": "r-1",
    "resource_ids": ["42"],
    "resource_type": "customer",
    "token_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "user_agent": "ua",
}
VECTOR_BYTES = (
    '{"action":"UPDATE","actor":"alice","actor_kind":"USER","at":"2025-01-01T19:04:05.006000Z",'
    '"changes":{"phone":{"new":"139****0000","old":"138****5678"},'
    '"totalSpend":{"new":"1e+20","old":"10.50"},"名称":{"new":"乙","old":"甲"}},'
    '"fields":["phone","totalSpend"],"ip":"10.0.0.1","operation":"UpdateCustomer",'
    '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"query_hash":null,"request_id":"r-1","resource_ids":["42"],"resource_type":"customer",'
    '"token_id":"12345678-1234-5678-1234-567812345678","user_agent":"ua"}'
).encode()
VECTOR_HASH = "b001c55c547fe00c6db1fcd42a15dd2c96b4b87d45c844e7ee0b48dc54962dd4"


def test_canonical_bytes_sort_keys_use_utc_and_plain_utf8() -> None:
    assert canonical_bytes(VECTOR) == VECTOR_BYTES
    assert event_hash(VECTOR) == VECTOR_HASH


def test_hash_changes_when_any_hashed_field_changes() -> None:
    for key, value in [("actor", "mallory"), ("prev_hash", "1" * 64), ("resource_ids", ["43"])]:
        assert event_hash({**VECTOR, key: value}) != VECTOR_HASH
    later = VECTOR["at"] + dt.timedelta(microseconds=1)
    assert event_hash({**VECTOR, "at": later}) != VECTOR_HASH


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"query_hash": "q", "token_id": None, "changes": None, "ip": None, "user_agent": None},
        {"resource_ids": [], "fields": (), "resource_type": None},
        {"resource_ids": ['{a,"b"}', "back\\slash", "NULL", "", "北京", "\u2028"]},
        {"actor": 'say "hi"\n', "operation": "\t=cmd", "prev_hash": '"quoted"\\'},
        {"changes": {"z": [1, {"b": None, "a": True}], "é": "ü"}},
    ],
)
def test_the_template_an_append_hashes_under_the_lock_is_canonical_bytes(
    change: dict[str, object],
) -> None:
    fields = {**VECTOR, **change}
    template = CanonicalTemplate(fields)
    at, prev_hash = format_at(fields["at"]), str(fields["prev_hash"])  # type: ignore[arg-type]
    assert template.encode(at, prev_hash) == canonical_bytes(fields)
    assert template.hash(at, prev_hash) == event_hash(fields)
    assert list(CANONICAL_KEYS) == sorted(CANONICAL_KEYS)  # what the template's split relies on


def test_numbers_that_jsonb_would_rewrite_are_stored_as_strings() -> None:
    assert normalise_changes({"a": 1.0, "b": decimal.Decimal("2.50"), "c": 7}) == {
        "a": "1.0",
        "b": "2.50",
        "c": 7,
    }


@pytest.mark.parametrize("value", [float("nan"), "a\x00b", object()])
def test_values_without_a_stable_encoding_are_refused(value: object) -> None:
    with pytest.raises(CanonicalEncodingError):
        normalise_changes({"x": value})


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(CanonicalEncodingError):
        canonical_bytes({**VECTOR, "at": dt.datetime(2025, 1, 1)})  # the point


@pytest.mark.parametrize(
    ("clear", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+86 138-1234-5678", "138****5678"),
        ("alice@example.com", "a***@example.com"),
        ("11010519491231002X", "110***********002X"),
        ("123", "***"),
        (None, None),
    ],
)
def test_mask_value_hides_the_identifying_middle(clear: str | None, masked: str | None) -> None:
    assert mask_value(clear) == masked
