"""Encryption at rest for sensitive columns, and keyed blind indexes to search them.

Two stored forms, both AES-256-GCM with the column label as associated data (a ciphertext
copied from `phone` into `id_number` fails to decrypt instead of leaking across fields):

- `<key id>:<base64url(nonce || ciphertext)>` — under a configured field key. Secrets that belong
  to no person (webhook secrets, export tokens) and values written before envelope encryption.
- `@<base64url(nonce || ciphertext)>` — under the record's own *data key* (envelope encryption,
  issue 23): a random AES-256 key per customer, stored only *wrapped* (itself in the first form,
  label `dossier.data_key`) in `customers.data_key` and copied to its contacts' rows. Erasure
  deletes the wrapped key, which makes every copy of the ciphertexts — backups, replicas, old
  exports of the table — unreadable (crypto-shredding). Rotating field keys re-wraps data keys
  only; the values themselves are never rewritten.

Readers hand the wrapped key in beside the value: `decrypt(label, value, data_key)`, or as one
string `value|wrapped` that SQL builds (`sealed_with_key`), so the read needs no extra statement.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
BLIND_INDEX_BYTES = 16
DATA_KEY_LABEL = "dossier.data_key"
ENVELOPE = "@"  # prefix of a value under a data key; no field key id may start with it
CLEAR = "="  # prefix reads give a value still in a clear column (written before encryption)
KEY_SEPARATOR = "|"  # `value|wrapped data key`, as reads select it; in neither alphabet
UNWRAPPED_CACHE = 4096  # unwrapped data keys kept per process (one AES object each)


class FieldKeyError(ValueError):
    """A stored value names a key this process does not have, or fails authentication."""


class DataKeyDestroyedError(FieldKeyError):
    """A value under a data key that no longer exists: its record was erased."""


@dataclass(frozen=True)
class FieldCipher:
    """Encrypts and decrypts sensitive column values with versioned AES-256-GCM keys."""

    keys: Mapping[str, bytes] = field(repr=False)
    active_key_id: str
    blind_index_key: bytes = field(repr=False)
    _aead: dict[str, AESGCM] = field(init=False, repr=False, compare=False)
    # wrapped data key → its AES object, so a data key is unwrapped once, not once per value
    _unwrapped: OrderedDict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.active_key_id not in self.keys:
            raise FieldKeyError(f"active field key {self.active_key_id!r} is not configured")
        for key_id, key in self.keys.items():
            if len(key) != 32:
                raise FieldKeyError(f"field key {key_id!r} must be 32 bytes")
            if ":" in key_id or KEY_SEPARATOR in key_id or key_id.startswith((ENVELOPE, CLEAR)):
                raise FieldKeyError(
                    f"field key id {key_id!r} must not contain ':' or '|' nor start with '@' or '='"
                )
        if len(self.blind_index_key) < 32:
            raise FieldKeyError("blind index key must be at least 32 bytes")
        aead = {key_id: AESGCM(key) for key_id, key in self.keys.items()}
        object.__setattr__(self, "_aead", aead)
        object.__setattr__(self, "_unwrapped", OrderedDict())

    def new_data_key(self) -> str:
        """A fresh random data key, wrapped under the active field key (what is stored)."""
        wrapped = self.encrypt(DATA_KEY_LABEL, base64.urlsafe_b64encode(os.urandom(32)).decode())
        assert wrapped is not None
        return wrapped

    def encrypt(
        self, column: str, plaintext: str | None, data_key: str | None = None
    ) -> str | None:
        """Seal `plaintext`: under the record's wrapped `data_key` when given, else under the
        active field key."""
        if plaintext is None:
            return None
        nonce = os.urandom(NONCE_BYTES)
        if data_key is not None:
            sealed = self._data_aead(data_key).encrypt(nonce, plaintext.encode(), column.encode())
            return f"{ENVELOPE}{base64.urlsafe_b64encode(nonce + sealed).decode()}"
        sealed = self._aead[self.active_key_id].encrypt(nonce, plaintext.encode(), column.encode())
        return f"{self.active_key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, column: str, stored: str | None, data_key: str | None = None) -> str | None:
        """The clear text of `stored`; `data_key` is the record's wrapped key (or travels in
        `stored` after a `|`). A value under a destroyed data key raises
        `DataKeyDestroyedError`."""
        if stored is None:
            return None
        if stored.startswith(CLEAR):
            return stored[len(CLEAR) :]
        if KEY_SEPARATOR in stored:
            stored, _, data_key = stored.partition(KEY_SEPARATOR)
        if stored.startswith(ENVELOPE):
            if not data_key:
                raise DataKeyDestroyedError(f"the data key of this {column} value is destroyed")
            raw = base64.urlsafe_b64decode(stored[len(ENVELOPE) :])
            try:
                clear = self._data_aead(data_key).decrypt(
                    raw[:NONCE_BYTES], raw[NONCE_BYTES:], column.encode()
                )
            except Exception as exc:
                raise FieldKeyError(f"value of {column} failed authentication") from exc
            return clear.decode()
        key_id, _, payload = stored.partition(":")
        aead = self._aead.get(key_id)
        if aead is None:
            raise FieldKeyError(f"no field key {key_id!r} for column {column}")
        raw = base64.urlsafe_b64decode(payload)
        try:
            clear = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], column.encode())
        except Exception as exc:  # cryptography raises InvalidTag without a message
            raise FieldKeyError(f"value of {column} failed authentication") from exc
        return clear.decode()

    def blind_index(self, column: str, normalised: str | None) -> bytes | None:
        """Deterministic keyed digest of an already normalised value, for equality search."""
        if normalised is None:
            return None
        mac = hmac.new(self.blind_index_key, f"{column}\x00{normalised}".encode(), hashlib.sha256)
        return mac.digest()[:BLIND_INDEX_BYTES]

    def needs_rotation(self, stored: str | None) -> bool:
        """True for a value under a field key other than the active one; values under a data
        key never need it (their data key is re-wrapped instead)."""
        return (
            stored is not None
            and not stored.startswith(ENVELOPE)
            and not stored.startswith(f"{self.active_key_id}:")
        )

    def forget_data_key(self, wrapped: str | None) -> None:
        """Drop an erased record's unwrapped key from this process's memory too."""
        if wrapped is not None:
            self._unwrapped.pop(wrapped, None)

    def _data_aead(self, wrapped: str) -> AESGCM:
        """The AES object of a wrapped data key, unwrapped once per process and key."""
        cache = self._unwrapped
        found = cache.get(wrapped)
        if found is None:
            clear = self.decrypt(DATA_KEY_LABEL, wrapped)
            assert clear is not None
            found = AESGCM(base64.urlsafe_b64decode(clear))
            cache[wrapped] = found
            while len(cache) > UNWRAPPED_CACHE:
                cache.popitem(last=False)
        return found


def parse_key_ring(spec: str) -> dict[str, bytes]:
    """Parse `id1:base64key,id2:base64key` (the DOSSIER_FIELD_KEYS format)."""
    ring: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise FieldKeyError("field keys are written as id:base64key, comma-separated")
        ring[key_id] = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    if not ring:
        raise FieldKeyError("no field key given")
    return ring


def new_key() -> str:
    """A fresh random 32-byte key, base64url-encoded, for configuration files."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
