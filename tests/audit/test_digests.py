"""Signed digests catch what the hash chain alone cannot: a DBA who rewrites the whole chain.

Each test writes a clean chain in a database of its own, signs digests of its head, and then
changes rows directly in SQL with triggers off, as a superuser could.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from audit.canonical import event_hash
from audit.chain import append_events
from audit.digests import (
    DigestProblem,
    DigestReport,
    SignedDigest,
    key_id,
    new_signing_key_text,
    public_key_text,
    sign_digest,
    signing_key_from_text,
    verify_digests,
)
from audit.events import ActorKind, AuditAction, AuditRecord
from audit.verify import verify_chain
from db.crypto import new_key

SIGNING_KEY = signing_key_from_text(new_signing_key_text())
PUBLIC_KEY = SIGNING_KEY.public_key()

Sessions = async_sessionmaker[AsyncSession]


async def append(sessions: Sessions, count: int, actor: str = "alice") -> None:
    for number in range(count):
        async with sessions() as session, session.begin():
            record = AuditRecord(
                actor=actor,
                actor_kind=ActorKind.USER,
                action=AuditAction.READ,
                resource_type="customer",
                resource_ids=[str(number)],
                fields=["name", "phone"],
            )
            await append_events(session, [record])


async def sign(sessions: Sessions) -> SignedDigest:
    async with sessions() as session, session.begin():
        return await sign_digest(session, SIGNING_KEY)


async def check(sessions: Sessions, keys: Any = (PUBLIC_KEY,)) -> DigestReport:
    async with sessions() as session:
        return await verify_digests(session, keys)


async def as_superuser(sessions: Sessions, *statements: str, **params: Any) -> None:
    async with sessions() as session, session.begin():
        # what a superuser does to get past the append-only triggers
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            await session.execute(text(statement), params)


async def rewrite_chain_from(sessions: Sessions, seq: int, actor: str) -> None:
    """Change one event's actor, recompute every later hash and move the head: a clean forgery."""
    async with sessions() as session, session.begin():
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        rows = (await session.execute(text("SELECT * FROM audit_events ORDER BY seq"))).all()
        previous = None
        for row in rows:
            fields = row._asdict()
            if row.seq < seq:
                previous = row.hash
                continue
            if row.seq == seq:
                fields["actor"] = actor
            fields["prev_hash"] = previous
            fields["hash"] = previous = event_hash(fields)
            await session.execute(
                text(
                    "UPDATE audit_events SET actor = :actor, prev_hash = :prev_hash, hash = :hash "
                    "WHERE seq = :seq"
                ),
                {key: fields[key] for key in ("actor", "prev_hash", "hash", "seq")},
            )
        await session.execute(text("UPDATE audit_chain_head SET hash = :hash"), {"hash": previous})


async def test_signed_digests_verify_and_cover_the_chain_up_to_the_newest(
    sessions: Sessions,
) -> None:
    await append(sessions, 10)
    first = await sign(sessions)
    await append(sessions, 5)
    second = await sign(sessions)

    report = await check(sessions)
    assert report.ok, report.describe()
    assert (report.checked, report.latest_seq) == (2, 15)
    assert (first.head_seq, second.head_seq) == (10, 15)
    assert second.prev_digest_hash == first.digest_hash
    assert first.key_id == key_id(PUBLIC_KEY)


async def test_rewriting_the_whole_chain_fools_verify_but_not_the_digest(
    sessions: Sessions,
) -> None:
    await append(sessions, 10)
    signed = await sign(sessions)
    await rewrite_chain_from(sessions, 4, "mallory")

    async with sessions() as session:
        assert (await verify_chain(session)).ok  # the forgery is internally consistent
    report = await check(sessions)
    assert (report.first_bad_id, report.bad_seq) == (signed.id, 10)
    assert report.problem is DigestProblem.HEAD_REWRITTEN
    assert "rewritten" in report.describe()


async def test_removing_the_newest_events_and_rewinding_the_head_is_caught(
    sessions: Sessions,
) -> None:
    await append(sessions, 10)
    await sign(sessions)
    await as_superuser(
        sessions,
        "DELETE FROM audit_events WHERE seq > 7",
        "UPDATE audit_chain_head SET seq = 7, hash = (SELECT hash FROM audit_events WHERE seq = 7)",
    )
    async with sessions() as session:
        assert (await verify_chain(session)).ok
    report = await check(sessions)
    assert (report.bad_seq, report.problem) == (10, DigestProblem.HEAD_MISSING)


async def test_a_tampered_signature_is_caught(sessions: Sessions) -> None:
    await append(sessions, 3)
    signed = await sign(sessions)
    forged = ("A" if signed.signature[0] != "A" else "B") + signed.signature[1:]
    await as_superuser(sessions, "UPDATE audit_digests SET signature = :s", s=forged)
    report = await check(sessions)
    assert (report.first_bad_id, report.problem) == (signed.id, DigestProblem.BAD_SIGNATURE)


async def test_a_digest_edited_to_match_a_rewritten_chain_fails_its_signature(
    sessions: Sessions,
) -> None:
    await append(sessions, 6)
    signed = await sign(sessions)
    await rewrite_chain_from(sessions, 2, "mallory")
    await as_superuser(
        sessions, "UPDATE audit_digests SET head_hash = (SELECT hash FROM audit_chain_head)"
    )
    report = await check(sessions)
    assert (report.first_bad_id, report.problem) == (signed.id, DigestProblem.BAD_SIGNATURE)


async def test_a_removed_digest_breaks_the_digest_chain(sessions: Sessions) -> None:
    digests = []
    for _ in range(3):
        await append(sessions, 2)
        digests.append(await sign(sessions))
    await as_superuser(sessions, "DELETE FROM audit_digests WHERE id = :id", id=digests[1].id)
    report = await check(sessions)
    assert (report.first_bad_id, report.problem) == (digests[2].id, DigestProblem.BROKEN_LINK)


async def test_digests_are_append_only(sessions: Sessions) -> None:
    await sign(sessions)
    async with sessions() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("DELETE FROM audit_digests"))


async def test_another_key_or_no_digest_at_all_does_not_pass(sessions: Sessions) -> None:
    other = signing_key_from_text(new_signing_key_text()).public_key()
    assert (await check(sessions)).problem is DigestProblem.NONE_SIGNED
    await append(sessions, 1)
    await sign(sessions)
    assert (await check(sessions, [other])).problem is DigestProblem.UNKNOWN_KEY
    assert (await check(sessions, [other, PUBLIC_KEY])).ok


# ---- the command line --------------------------------------------------------------------


async def dossier(environment: dict[str, str], *arguments: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from api.cli import main; main()",
        *arguments,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


def environment_for(url: str, data_dir: Path, **values: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    return {**inherited, "DATABASE_URL": url, "DOSSIER_DATA_DIR": str(data_dir), **values}


async def test_cli_signs_digests_and_verify_checks_them_with_the_public_key(
    sessions: Sessions, fresh_url: str, tmp_path: Path
) -> None:
    await append(sessions, 5)
    seed = new_signing_key_text()
    public = public_key_text(signing_key_from_text(seed))
    env = environment_for(fresh_url, tmp_path, DOSSIER_ENV="dev", DOSSIER_AUDIT_SIGNING_KEY=seed)

    code, output = await dossier(env, "audit", "digest")
    assert code == 0, output
    digest = json.loads(output.strip().splitlines()[-1])
    assert (digest["seq"], digest["key_id"]) == (5, key_id(signing_key_from_text(seed)))
    assert (await dossier(env, "audit", "public-key"))[1].strip().endswith(public)

    code, output = await dossier(env, "audit", "verify", "--public-key", public)
    assert code == 0, output
    assert "audit chain ok" in output and "1 signed digests verified" in output
    code, output = await dossier({**env, "DOSSIER_AUDIT_VERIFY_KEY": public}, "audit", "verify")
    assert code == 0 and "1 signed digests verified" in output, output

    await rewrite_chain_from(sessions, 3, "mallory")
    code, output = await dossier(env, "audit", "verify", "--public-key", public)
    assert code == 1, output
    assert "audit chain ok" in output  # the forgery passes the chain check …
    assert f"digest #{digest['id']} (head seq 5)" in output  # … and not the digest check
    code, output = await dossier(env, "audit", "verify")
    assert code == 0 and "1 signed digests not checked" in output, output


async def test_cli_generates_and_keeps_a_dev_signing_key(
    sessions: Sessions, fresh_url: str, tmp_path: Path
) -> None:
    env = environment_for(fresh_url, tmp_path, DOSSIER_ENV="dev")
    outputs = [await dossier(env, "audit", "digest") for _ in range(2)]
    assert [code for code, _ in outputs] == [0, 0], outputs
    ids = {json.loads(output.strip().splitlines()[-1])["key_id"] for _, output in outputs}
    stored = json.loads((tmp_path / "dev-secrets.json").read_text())
    assert ids == {key_id(signing_key_from_text(stored["DOSSIER_AUDIT_SIGNING_KEY"]))}


async def test_cli_in_production_without_a_signing_key_names_the_variable(
    fresh_url: str, tmp_path: Path
) -> None:
    env = environment_for(
        fresh_url,
        tmp_path,
        DOSSIER_ENV="prod",
        DOSSIER_FIELD_KEYS=f"k1:{new_key()}",
        DOSSIER_BLIND_INDEX_KEY=new_key(),
        DOSSIER_JWT_SECRET=new_key(),
    )
    code, output = await dossier(env, "audit", "digest")
    assert code != 0
    assert "DOSSIER_AUDIT_SIGNING_KEY must be set in production" in output
    code, output = await dossier(
        {**env, "DOSSIER_AUDIT_SIGNING_KEY": "c2hvcnQ="}, "audit", "digest"
    )
    assert code != 0 and "DOSSIER_AUDIT_SIGNING_KEY" in output
