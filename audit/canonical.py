"""The canonical serialisation that the audit chain hashes — the one documented encoding.

An event's hash is `SHA-256(canonical_bytes(event))` written as 64 lowercase hex digits, where
`canonical_bytes` is the UTF-8 encoding of a JSON object with exactly these keys:

    action, actor, actor_kind, at, changes, fields, ip, operation, prev_hash, query_hash,
    request_id, resource_ids, resource_type, token_id, user_agent

serialised with keys sorted by code point at every depth, no insignificant whitespace
(separators "," and ":"), non-ASCII characters written as themselves (not \\u escapes), and:

- `at` as UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fraction digits);
- `token_id` as the lowercase hyphenated UUID, or null;
- `resource_ids` and `fields` as arrays of strings in the order recorded;
- `changes` as stored: objects, arrays, strings, booleans, null and integers only. Decimals,
  floats, dates and UUIDs are turned into strings *before* storing (`normalise_changes`), because
  a float does not survive a JSONB round trip byte for byte (1e20 comes back as
  100000000000000000000) and the hash must be recomputable from what the database returns;
- absent optional values as null.

`seq` is not hashed: the order of the chain is fixed by `prev_hash`, and `seq` is the locator
`verify` uses to name an entry and to tell a swap (reordered) from a removal (missing).
The first event of a chain links to `GENESIS_HASH`; after an archive, to the anchor's hash.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson

if TYPE_CHECKING:
    from sqlalchemy import RowMapping

GENESIS_HASH = "0" * 64
CANONICAL_KEYS = (
    "action",
    "actor",
    "actor_kind",
    "at",
    "changes",
    "fields",
    "ip",
    "operation",
    "prev_hash",
    "query_hash",
    "request_id",
    "resource_ids",
    "resource_type",
    "token_id",
    "user_agent",
)


class CanonicalEncodingError(ValueError):
    """A value cannot be represented stably (NUL characters, NaN, unknown types)."""


def format_at(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise CanonicalEncodingError("audit timestamps must be timezone-aware")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_text(value: str) -> str:
    if "\x00" in value:
        raise CanonicalEncodingError("NUL characters cannot be stored in PostgreSQL text")
    return value


def normalise_changes(value: Any) -> Any:
    """Turn `changes` into the JSON subset that survives JSONB unchanged (see module doc)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return _check_text(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CanonicalEncodingError("NaN and infinity have no stable encoding")
        return repr(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise CanonicalEncodingError("NaN and infinity have no stable encoding")
        return str(value)
    if isinstance(value, dt.datetime):
        return format_at(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {_check_text(str(key)): normalise_changes(item) for key, item in value.items()}
    if isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes | bytearray):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [normalise_changes(item) for item in items]
    raise CanonicalEncodingError(f"cannot record a {type(value).__name__} in audit changes")


def _stdlib_dumps(value: Any) -> bytes:
    """The reference encoder: every chain in production was hashed with it."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


# exact types orjson writes byte for byte as `_stdlib_dumps` does (tests/audit/
# test_canonical_orjson.py compares them over generated values): strings with the same escapes
# (`\"`, `\\`, \b \f \n \r \t, other controls as lowercase \u00xx; DEL, U+2028/2029 and
# non-BMP as plain UTF-8) and keys sorted by code point. Floats are not among them (1e-05 is
# "0.00001" in orjson, 1e-07 "1e-7"; NaN is null), nor are the types orjson writes and json
# refuses (UUID, datetime, dataclasses, enums and other subclasses)
_PLAIN = frozenset({str, int, bool, type(None)})
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _plain(value: Any) -> bool:
    """Whether `value` holds only types on which orjson and the stdlib agree (see _PLAIN)."""
    kind = type(value)
    if kind is dict:
        items = value.values()  # keys: orjson refuses all but str, and falls back
    elif kind is list or kind is tuple:
        try:
            "".join(value)  # all strings, checked in C (the passthrough refuses subclasses)
        except TypeError:
            items = value
        else:
            return True
    else:
        return kind in _PLAIN
    return all(type(item) in _PLAIN or _plain(item) for item in items)


def _dumps_runs(document: dict[str, Any], runs: Sequence[Sequence[str]]) -> list[bytes]:
    """The documented encoding of each run of `document`'s keys, as UTF-8.

    By orjson where it gives the stdlib's bytes: the stdlib encoder was ~2.3 % of the server's
    CPU under load, 62 µs of an append's 132 µs (4 read events, 550 ids in all), and orjson
    writes the same bytes in ~1/10 of the time. Falls back to the stdlib, and so to its errors,
    on whatever orjson would write differently (`_plain`) and whatever it refuses: integers
    beyond 64 bits, lone surrogates (which the stdlib then refuses too, encoding to UTF-8),
    subclasses, non-string keys, nesting deeper than 254.
    """
    if _plain(document):
        try:
            return [
                orjson.dumps({key: document[key] for key in run}, option=_OPTIONS) for run in runs
            ]
        except orjson.JSONEncodeError:
            pass
    return [_stdlib_dumps({key: document[key] for key in run}) for run in runs]


def _dumps(value: Any) -> bytes:
    """`value` in the documented encoding, as UTF-8 (orjson where it agrees, see _dumps_runs)."""
    if _plain(value):
        try:
            return orjson.dumps(value, option=_OPTIONS)
        except orjson.JSONEncodeError:
            pass
    return _stdlib_dumps(value)


def _document(fields: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    document = {key: fields.get(key) for key in keys}
    if "token_id" in document:
        token_id = document["token_id"]
        document["token_id"] = str(token_id) if token_id is not None else None
    if "resource_ids" in document:
        document["resource_ids"] = list(document["resource_ids"] or ())
    if "fields" in document:
        document["fields"] = list(document["fields"] or ())
    return document


def canonical_bytes(fields: Mapping[str, Any]) -> bytes:
    """Encode an event (a mapping with CANONICAL_KEYS, `at` a datetime) as documented above."""
    document = _document(fields, CANONICAL_KEYS)
    document["at"] = format_at(fields["at"])
    return _dumps(document)


def event_hash(fields: Mapping[str, Any] | RowMapping) -> str:
    """The event's hash; `fields` may be a result row's mapping (its keys are the names)."""
    return hashlib.sha256(canonical_bytes(cast("Mapping[str, Any]", fields))).hexdigest()


# CANONICAL_KEYS around the two that an append learns only once it holds the chain head
_BEFORE_AT = CANONICAL_KEYS[: CANONICAL_KEYS.index("at")]
_BETWEEN = CANONICAL_KEYS[CANONICAL_KEYS.index("at") + 1 : CANONICAL_KEYS.index("prev_hash")]
_AFTER_PREV = CANONICAL_KEYS[CANONICAL_KEYS.index("prev_hash") + 1 :]
_RUNS = (_BEFORE_AT, _BETWEEN, _AFTER_PREV)
_TEMPLATED = _BEFORE_AT + _BETWEEN + _AFTER_PREV


class CanonicalTemplate:
    """`canonical_bytes` of an event whose `at` and `prev_hash` are filled in later.

    An append knows everything about its events but those two before it takes the chain head,
    so it encodes the rest here, outside the lock, and under the lock only splices in two
    JSON strings and hashes. The bytes are those of `canonical_bytes`: the keys are sorted, so
    the encoding is the three runs of keys around `at` and `prev_hash`, each encoded like the
    whole (`tests/audit/test_canonical.py` and `test_canonical_orjson.py` check the two agree).
    """

    __slots__ = ("_after", "_before", "_between")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        before, between, after = _dumps_runs(_document(fields, _TEMPLATED), _RUNS)
        self._before = before[:-1] + b',"at":'
        self._between = b"," + between[1:-1] + b',"prev_hash":'
        self._after = b"," + after[1:]

    def encode(self, at: str, prev_hash: str) -> bytes:
        """The canonical bytes with `at` (already `format_at`-ed) and `prev_hash`."""
        return b"".join(
            (
                self._before,
                _dumps(at),
                self._between,
                _dumps(prev_hash),
                self._after,
            )
        )

    def hash(self, at: str, prev_hash: str) -> str:
        return hashlib.sha256(self.encode(at, prev_hash)).hexdigest()

    @property
    def parts(self) -> tuple[bytes, bytes, bytes]:
        """(before, between, after): the bytes are before + `at` + between + `prev_hash` +
        after, each of the two a JSON string (`at` and a hex hash need no escaping), which is
        how `audit.chain` hashes the events in the statement that inserts them."""
        return self._before, self._between, self._after
