"""Encryption at rest for sensitive columns, and keyed blind indexes to search them.

A stored value reads `<key id>:<base64url(nonce || ciphertext)>`: the key id travels with the
value, so keys can be rotated by adding a new active key while old values stay readable.
AES-GCM authenticates the column name as associated data, so a ciphertext copied from the
`phone` column into `id_number` fails to decrypt instead of leaking across fields.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
BLIND_INDEX_BYTES = 16


class FieldKeyError(ValueError):
    """A stored value names a key this process does not have, or fails authentication."""


@dataclass(frozen=True)
class FieldCipher:
    """Encrypts and decrypts sensitive column values with versioned AES-256-GCM keys."""

    keys: Mapping[str, bytes] = field(repr=False)
    active_key_id: str
    blind_index_key: bytes = field(repr=False)
    _aead: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.active_key_id not in self.keys:
            raise FieldKeyError(f"active field key {self.active_key_id!r} is not configured")
        for key_id, key in self.keys.items():
            if len(key) != 32:
                raise FieldKeyError(f"field key {key_id!r} must be 32 bytes")
            if ":" in key_id:
                raise FieldKeyError(f"field key id {key_id!r} must not contain ':'")
        if len(self.blind_index_key) < 32:
            raise FieldKeyError("blind index key must be at least 32 bytes")
        aead = {key_id: AESGCM(key) for key_id, key in self.keys.items()}
        object.__setattr__(self, "_aead", aead)

    def encrypt(self, column: str, plaintext: str | None) -> str | None:
        if plaintext is None:
            return None
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self.active_key_id].encrypt(nonce, plaintext.encode(), column.encode())
        return f"{self.active_key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, column: str, stored: str | None) -> str | None:
        if stored is None:
            return None
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
        return stored is not None and not stored.startswith(f"{self.active_key_id}:")


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
