"""orjson writes the canonical encoding byte for byte as the stdlib encoder did.

Every chain in production was hashed with `json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`; `audit.canonical` now encodes with orjson where it
agrees and falls back to the stdlib where it would not. These compare the two over generated
values (control characters, non-BMP, lone surrogates, huge integers, floats, odd types) and the
edges named one by one.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import canonical
from audit.canonical import CANONICAL_KEYS, CanonicalTemplate, canonical_bytes, format_at


def reference(value: Any) -> bytes:
    """The encoding the chains in production were hashed with."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def outcome(encode: Any, value: Any) -> bytes | type[BaseException]:
    try:
        return encode(value)
    except (TypeError, ValueError, RecursionError) as error:  # UnicodeEncodeError is a ValueError
        return type(error)


# every code point, lone surrogates included, weighted towards the ones escaping concerns
CHARACTERS = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x7F),
    st.sampled_from("\x7f\x80\x85\xa0\u2028\u2029\ufeff\ufffe\uffff\ue000\ud7ff"),
    st.characters(blacklist_categories=()),  # surrogates too
    st.characters(min_codepoint=0x10000),
)
TEXT = st.text(CHARACTERS, max_size=12)
INTEGERS = st.one_of(
    st.integers(min_value=-(2**63) - 2, max_value=2**64 + 1),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]),
    st.integers(min_value=-(2**200), max_value=2**200),
)
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, TEXT)
VALUES = st.recursive(
    st.one_of(SCALARS, st.floats()),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(TEXT, children, max_size=5),
    ),
    max_leaves=30,
)
# what an append hashes: strings and nulls, arrays of strings, `changes` as normalised
EVENTS = st.fixed_dictionaries(
    {
        **{key: st.one_of(st.none(), TEXT) for key in CANONICAL_KEYS},
        "resource_ids": st.lists(TEXT, max_size=20),
        "fields": st.lists(TEXT, max_size=8),
        "changes": st.one_of(
            st.none(), st.dictionaries(TEXT, st.recursive(SCALARS, st.lists, max_leaves=8))
        ),
        "token_id": st.one_of(st.none(), st.uuids()),
        "at": st.datetimes(timezones=st.just(dt.UTC)),
    }
)


@settings(max_examples=1500)
@given(VALUES)
def test_generated_values_encode_as_the_stdlib_does(value: Any) -> None:
    assert outcome(canonical._dumps, value) == outcome(reference, value)


@settings(max_examples=300)
@given(EVENTS)
def test_generated_events_and_their_templates_encode_as_the_stdlib_does(
    fields: dict[str, Any],
) -> None:
    document = {key: fields[key] for key in CANONICAL_KEYS}
    document["at"] = format_at(fields["at"])
    document["token_id"] = None if fields["token_id"] is None else str(fields["token_id"])
    expected = outcome(reference, document)
    assert outcome(canonical_bytes, fields) == expected
    template = outcome(CanonicalTemplate, fields)
    prev_hash = document["prev_hash"]
    if isinstance(template, CanonicalTemplate):
        spliced = outcome(lambda at: template.encode(at, prev_hash), document["at"])
        assert spliced == expected
    else:  # a lone surrogate: refused as the whole is
        assert template == expected


class Colour(enum.Enum):
    RED = "red"


class Kind(enum.StrEnum):
    USER = "USER"


class Level(enum.IntEnum):
    HIGH = 3


class Shouting(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        "".join(map(chr, range(0x80))),
        "\x7f \u2028 \u2029 \x85 \ufeff \U0001f600 \U0010ffff 名称",
        {"\ue000": 1, "\U0001f600": 2, "z": 3, "é": 4, "": 5, "A": 6, "a": 7},
        {"b": {"d": [1, {"f": None, "e": True}], "c": "x"}, "a": []},
        [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**40, -(10**40)],
        {"big": 2**64, "small": "x"},
        [1e16, 1e20, 0.1, -0.0, 1.0, 5e-324, 1e-05, 1e-07],
        float("nan"),
        [float("inf")],
        "\ud800",
        ["ok", "\udfff"],
        {"k\ud800": 1},
        uuid.UUID(int=1),
        dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        [Colour.RED],
        Kind.USER,
        [Kind.USER, "x"],
        {Kind.USER: 1},
        Level.HIGH,
        [Level.HIGH, True, False],
        Shouting("hi"),
        {"x": Shouting("hi")},
        {1: "a", "b": 2},
        {1: "a", 2: "b"},
        {None: 1},
        {True: 1},
        (1, "two", None),
        b"bytes",
        {"s": {1, 2}},
        [[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]],
    ],
    ids=repr,
)
def test_the_edges_encode_as_the_stdlib_does(value: Any) -> None:
    assert outcome(canonical._dumps, value) == outcome(reference, value)


def test_nesting_beyond_orjsons_limit_falls_back() -> None:
    value: Any = "leaf"
    for _ in range(300):
        value = [value]
    assert canonical._dumps(value) == reference(value)


def test_a_read_event_is_encoded_by_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(value: Any) -> bytes:
        raise AssertionError("fell back to the stdlib encoder")

    monkeypatch.setattr(canonical, "_stdlib_dumps", refuse)
    fields = {key: None for key in CANONICAL_KEYS}
    fields.update(
        action="READ",
        actor="alice",
        actor_kind="USER",
        at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        resource_ids=[str(n) for n in range(550)],
        fields=["email", "名称"],
        token_id=uuid.UUID(int=7),
        prev_hash="0" * 64,
    )
    template = CanonicalTemplate(fields)
    assert template.encode(format_at(fields["at"]), "0" * 64) == canonical_bytes(fields)
