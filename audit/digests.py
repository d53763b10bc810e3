"""Signed digests of the chain head: catch a database administrator who rewrites the whole chain.

The hash chain proves the trail consistent with itself, but someone who can write every row
(triggers off) can recompute every hash after an edit and move the head: `verify_chain` then
passes. A digest is a statement signed with an Ed25519 key that never enters the database:
"at `signed_at` the chain ended at `seq` with `hash`". Rewriting any event at or before a
digested head changes the hash of that head event, and a new matching digest cannot be made
without the private key. Events after the newest digest are covered only once the next digest
is signed, so digests are signed periodically: by the worker's `dossier.sign_digest` job
(`DOSSIER_DIGEST_CRON`, jobs/digests.py), or by `dossier audit digest` from a timer.

The signed bytes are the UTF-8 JSON object, keys sorted, separators "," and ":", of

    {"at": head time as in audit.canonical (or null for an empty chain),
     "hash": head hash, "key_id": signer's key id, "prev_digest_hash": previous digest's
     digest_hash (GENESIS_HASH for the first), "seq": head seq,
     "signed_at": signing time as in audit.canonical, "version": 1}

`digest_hash` is the SHA-256 of those bytes (hex) and the next digest's `prev_digest_hash`, so
removing or reordering a digest breaks the digest chain. `key_id` is the first 16 hex digits of
the SHA-256 of the raw 32-byte public key. Keys travel as base64 of their raw 32 bytes (the
private key as its seed).

What this cannot catch: removing the newest digests (keep a copy of each digest line elsewhere,
as CloudTrail delivers its digest files to another bucket), and a rewrite of events newer than
the newest digest.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from audit.canonical import GENESIS_HASH, format_at
from db.models.audit import AuditAnchor, AuditChainHead, AuditDigest, AuditEvent

DIGEST_VERSION = 1
KEY_BYTES = 32
# one signer at a time: the digest chain must not fork (the unique prev_digest_hash would
# refuse the loser; waiting is kinder than failing)
_SIGNER_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('dossier.audit_digests'))")


class DigestKeyError(ValueError):
    """A key is not base64 of 32 raw bytes."""


def _raw_key(value: str, what: str) -> bytes:
    """Standard or URL-safe base64, padding optional, of exactly KEY_BYTES bytes."""
    cleaned = value.strip()
    try:
        # altchars maps - and _ onto + and /, so both alphabets decode
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as error:
        raise DigestKeyError(f"{what} is not base64") from error
    if len(raw) != KEY_BYTES:
        raise DigestKeyError(f"{what} must be {KEY_BYTES} bytes, base64-encoded; got {len(raw)}")
    return raw


def signing_key_from_text(value: str) -> Ed25519PrivateKey:
    """The private key from base64 of its raw 32-byte seed."""
    return Ed25519PrivateKey.from_private_bytes(_raw_key(value, "the audit signing key"))


def public_key_from_text(value: str) -> Ed25519PublicKey:
    """A verification key from base64 of its raw 32 bytes."""
    return Ed25519PublicKey.from_public_bytes(_raw_key(value, "the audit verification key"))


def new_signing_key_text() -> str:
    """A fresh private key as base64 of its seed (dev mode generates one of these)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def digest_payload(
    *,
    seq: int,
    hash: str,
    at: dt.datetime | None,
    prev_digest_hash: str,
    signed_at: dt.datetime,
    key_id: str,
) -> bytes:
    """The signed bytes (module doc)."""
    document = {
        "at": format_at(at) if at is not None else None,
        "hash": hash,
        "key_id": key_id,
        "prev_digest_hash": prev_digest_hash,
        "seq": seq,
        "signed_at": format_at(signed_at),
        "version": DIGEST_VERSION,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _payload_of(row: Any) -> bytes:
    return digest_payload(
        seq=row.head_seq,
        hash=row.head_hash,
        at=row.head_at,
        prev_digest_hash=row.prev_digest_hash,
        signed_at=row.signed_at,
        key_id=row.key_id,
    )


@dataclass(frozen=True, kw_only=True)
class SignedDigest:
    id: int
    head_seq: int
    head_hash: str
    head_at: dt.datetime | None
    prev_digest_hash: str
    signed_at: dt.datetime
    key_id: str
    signature: str
    digest_hash: str

    def document(self) -> dict[str, Any]:
        """The digest as one JSON line, to keep a copy outside the database."""
        return {
            "id": self.id,
            "seq": self.head_seq,
            "hash": self.head_hash,
            "at": format_at(self.head_at) if self.head_at is not None else None,
            "prev_digest_hash": self.prev_digest_hash,
            "signed_at": format_at(self.signed_at),
            "key_id": self.key_id,
            "signature": self.signature,
            "digest_hash": self.digest_hash,
        }


async def sign_digest(session: AsyncSession, key: Ed25519PrivateKey) -> SignedDigest:
    """Sign the committed chain head and store the digest in the caller's transaction.

    Reads the head without locking it, so appenders never wait for a signer: READ COMMITTED
    sees the head as last committed, which is a state whose events are all committed too.
    The caller commits.
    """
    await session.execute(_SIGNER_LOCK)
    head = (
        await session.execute(
            select(
                AuditChainHead.seq,
                AuditChainHead.hash,
                AuditChainHead.at,
                func.clock_timestamp().label("now"),
            ).where(AuditChainHead.id == 1)
        )
    ).one()
    previous = await session.scalar(
        select(AuditDigest.digest_hash).order_by(AuditDigest.id.desc()).limit(1)
    )
    signer = key_id(key)
    # the database clock, in microseconds like timestamptz: the stored time re-encodes exactly
    signed_at: dt.datetime = head.now
    payload = digest_payload(
        seq=head.seq,
        hash=head.hash,
        at=head.at,
        prev_digest_hash=previous or GENESIS_HASH,
        signed_at=signed_at,
        key_id=signer,
    )
    row = AuditDigest(
        head_seq=head.seq,
        head_hash=head.hash,
        head_at=head.at,
        prev_digest_hash=previous or GENESIS_HASH,
        signed_at=signed_at,
        key_id=signer,
        signature=base64.b64encode(key.sign(payload)).decode("ascii"),
        digest_hash=hashlib.sha256(payload).hexdigest(),
    )
    session.add(row)
    await session.flush()
    return SignedDigest(
        id=row.id,
        head_seq=row.head_seq,
        head_hash=row.head_hash,
        head_at=row.head_at,
        prev_digest_hash=row.prev_digest_hash,
        signed_at=row.signed_at,
        key_id=row.key_id,
        signature=row.signature,
        digest_hash=row.digest_hash,
    )


class DigestProblem(StrEnum):
    NONE_SIGNED = "no digests"  # verification keys given, but nothing was ever signed
    UNKNOWN_KEY = "unknown key"  # signed by a key that is not among the verification keys
    BAD_SIGNATURE = "bad signature"  # the digest's content or signature was altered
    BROKEN_LINK = "broken digest link"  # a digest was removed, reordered or replaced
    HEAD_WENT_BACK = "head went back"  # a later digest names an earlier head
    HEAD_REWRITTEN = "head rewritten"  # the digested head event has another hash now
    HEAD_MISSING = "head missing"  # the digested head event is no longer in the chain


@dataclass(frozen=True, kw_only=True)
class DigestReport:
    """What `verify_digests` found; `ok` only when every digest checked out."""

    checked: int
    archived: int  # heads that were archived away (their stretch is checked by the archive)
    first_bad_id: int | None
    bad_seq: int | None
    problem: DigestProblem | None
    detail: str | None
    latest_seq: int | None  # the newest digested head: the chain is covered up to here
    seconds: float

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        if self.ok:
            archived = f", {self.archived} of them archived" if self.archived else ""
            return (
                f"audit digests ok: {self.checked} signed digests verified{archived}; "
                f"chain covered up to seq {self.latest_seq} ({self.seconds:.2f}s)"
            )
        where = f"digest #{self.first_bad_id}" if self.first_bad_id is not None else "digests"
        seq = f" (head seq {self.bad_seq})" if self.bad_seq is not None else ""
        return (
            f"audit digests BROKEN at {where}{seq}: {self.problem} — {self.detail} "
            f"({self.checked} digests checked before it)"
        )


async def verify_digests(
    executor: AsyncConnection | AsyncSession, keys: Iterable[Ed25519PublicKey]
) -> DigestReport:
    """Check each digest's signature and link, and that its head is still in the chain."""
    started = time.perf_counter()
    known: Mapping[str, Ed25519PublicKey] = {key_id(key): key for key in keys}
    anchor_rows = (await executor.execute(select(AuditAnchor.seq, AuditAnchor.hash))).all()
    anchors = {row.seq: row.hash for row in anchor_rows}
    archived_up_to = max(anchors, default=0)
    events = AuditEvent.__table__.c
    # the head event by its primary key (seq, at): one index probe in one partition
    chain_hash = (
        select(events.hash)
        .where(and_(events.seq == AuditDigest.head_seq, events.at == AuditDigest.head_at))
        .scalar_subquery()
    )
    statement = (
        select(*AuditDigest.__table__.c, chain_hash.label("chain_hash"))
        .order_by(AuditDigest.id)
        .execution_options(yield_per=5_000)
    )
    checked = archived = 0
    expected_prev, previous_seq, latest_seq = GENESIS_HASH, -1, None

    def report(row: Any | None, problem: DigestProblem | None, detail: str | None) -> DigestReport:
        return DigestReport(
            checked=checked,
            archived=archived,
            first_bad_id=row.id if row is not None else None,
            bad_seq=row.head_seq if row is not None else None,
            problem=problem,
            detail=detail,
            latest_seq=latest_seq,
            seconds=time.perf_counter() - started,
        )

    result = await executor.stream(statement)
    try:
        async for row in result:
            payload = _payload_of(row)
            key = known.get(row.key_id)
            if key is None:
                return report(row, DigestProblem.UNKNOWN_KEY, f"signed by key {row.key_id}")
            try:
                key.verify(base64.b64decode(row.signature), payload)
            except (InvalidSignature, binascii.Error, ValueError):
                return report(
                    row, DigestProblem.BAD_SIGNATURE, "its content does not match its signature"
                )
            if hashlib.sha256(payload).hexdigest() != row.digest_hash:
                return report(row, DigestProblem.BROKEN_LINK, "digest_hash was altered")
            if row.prev_digest_hash != expected_prev:
                return report(
                    row,
                    DigestProblem.BROKEN_LINK,
                    "it does not link to the digest before it: a digest was removed or replaced",
                )
            if row.head_seq < previous_seq:
                return report(
                    row,
                    DigestProblem.HEAD_WENT_BACK,
                    f"an earlier digest already covered seq {previous_seq}",
                )
            problem = await _head_problem(executor, row, anchors, archived_up_to)
            if problem is not None:
                return report(row, *problem)
            if 0 < row.head_seq <= archived_up_to and row.head_seq not in anchors:
                archived += 1
            expected_prev, previous_seq, latest_seq = row.digest_hash, row.head_seq, row.head_seq
            checked += 1
    finally:
        await result.close()
    if checked == 0:
        return report(None, DigestProblem.NONE_SIGNED, "no signed digest to check")
    return report(None, None, None)


async def _head_problem(
    executor: AsyncConnection | AsyncSession,
    row: Any,
    anchors: Mapping[int, str],
    archived_up_to: int,
) -> tuple[DigestProblem, str] | None:
    """Whether the digested head is still the chain's event at that seq, with that hash."""
    if row.head_seq == 0:
        if row.head_hash != GENESIS_HASH:
            return DigestProblem.HEAD_REWRITTEN, "an empty chain's head is the genesis hash"
        return None
    if row.head_seq in anchors:
        if anchors[row.head_seq] != row.head_hash:
            return DigestProblem.HEAD_REWRITTEN, "the archive anchor at that seq has another hash"
        return None
    if row.head_seq <= archived_up_to:
        return None  # archived: the archive file's own verification covers it
    if row.chain_hash == row.head_hash:
        return None
    if row.chain_hash is not None:
        return (
            DigestProblem.HEAD_REWRITTEN,
            f"the event at seq {row.head_seq} now hashes to {row.chain_hash[:16]}…, "
            f"the digest signed {row.head_hash[:16]}…: the chain was rewritten",
        )
    events = AuditEvent.__table__.c
    found = await executor.scalar(select(events.hash).where(events.seq == row.head_seq).limit(1))
    if found is not None:
        return (
            DigestProblem.HEAD_REWRITTEN,
            f"the event at seq {row.head_seq} has another time and hash now",
        )
    return DigestProblem.HEAD_MISSING, f"no event with seq {row.head_seq}"
