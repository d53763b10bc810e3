"""The nested-view benchmark: Dossier against its own switched-off variants, a floor and a peer.

    python -m bench.run [--customers 10000] [--seconds 20] [--concurrency 1,8]
                        [--peer postgraphile] [--keep-db] [--rounds 2] [--profile 15]

A script that prints figures, not a test. See bench/README.md for what each server is and how
the comparison is kept fair.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import fcntl
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.database import BenchDatabase, checkpoint, prepare_database
from bench.load import LoadResult, run_load, wrk_available
from bench.peer import PeerUnavailableError, ensure_postgraphile, postgraphile_command
from bench.profile import py_spy
from bench.profile import record as record_profile
from bench.profile import summarise as summarise_profile
from bench.query import FIRST_CUSTOMER, SHAPES, shape_body, shape_of
from bench.servers import (
    ROOT,
    DatabaseCPU,
    ProcessWatch,
    ServerProcess,
    pin_this_process_to_load_core,
    pinned,
    start_server,
    uvicorn_command,
)
from db.crypto import FieldCipher, new_key, parse_key_ring

RESULTS = ROOT / "bench" / "results"
USER, PASSWORD = "bob", "dossier-demo"
PAGE_SIZES_FOR_STATEMENTS = (10, 50, 500)
# the rate limiter stays in the path (its check is part of the cost) but with a budget no
# benchmark reaches: 429s answered in a millisecond would pass for throughput
BENCH_ENV = {
    "DOSSIER_ACCESS_TOKEN_TTL": "3600",
    "DOSSIER_RATE_USER_BURST": "100000000",
    "DOSSIER_RATE_USER_PER_SECOND": "100000000",
}


@dataclass(frozen=True)
class ServerKind:
    """One server under test: how to start it and how to ask it the nested view."""

    key: str
    label: str
    naming: str  # "dossier" or "postgraphile": which query and which answer shape
    factory: str | None = None  # uvicorn app factory; None for the peer
    needs_token: bool = False

    @property
    def is_dossier(self) -> bool:
        return self.needs_token


OURS = ServerKind("ours", "ours (policies+audit)", "dossier", "api.app:create_app", True)
POLICY_OFF = ServerKind(
    "policy_off", "ours, enforcement off", "dossier", "bench.variants:create_policy_off_app", True
)
AUDIT_OFF = ServerKind(
    "audit_off", "ours, audit off", "dossier", "bench.variants:create_audit_off_app", True
)
AUTH_OFF = ServerKind(
    "auth_off", "ours, fixed principal", "dossier", "bench.variants:create_auth_off_app", True
)
FLOOR = ServerKind(
    "floor", "floor: 1 SQL + Starlette", "dossier", "bench.floor_app:create_floor_app"
)
PEER = ServerKind("postgraphile", "PostGraphile 4.14", "postgraphile")
SQL_FLOOR = "sql_floor"  # the asyncpg loop: no server, reported beside them


@dataclass
class Measurement:
    server: str
    round: int
    load: LoadResult
    rss_start_mb: float
    rss_end_mb: float
    rss_peak_mb: float
    cpu_ms_per_request: float = 0.0
    db_cpu_ms_per_request: float = 0.0  # all PostgreSQL processes, see servers.DatabaseCPU


@dataclass
class Findings:
    """Everything a run found beside the timings: checks, statement counts, notes."""

    shapes: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    statements: dict[int, int] = field(default_factory=dict)
    floor_matches_ours: bool | None = None
    ours_answer: dict[str, Any] | None = None
    visible_phones: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profile: dict[str, Any] | None = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def login(url: str) -> str:
    response = httpx.post(
        url + "/auth/token", data={"username": USER, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def headers_for(kind: ServerKind, token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def first_customer(url: str, token: str) -> str:
    """The customer the 360° view opens: the first one bob sees."""
    response = httpx.post(
        url + "/graphql",
        content=orjson.dumps({"query": FIRST_CUSTOMER}),
        headers=headers_for(OURS, token),
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["data"]["customers"]["nodes"][0]["id"])


def body_for(kind: ServerKind, shape: str, page: int = 50, customer_id: str | None = None) -> bytes:
    return shape_body(shape, kind.naming, page, customer_id)


def start(
    kind: ServerKind, database: BenchDatabase, env: dict[str, str], log_dir: Path, tag: str
) -> ServerProcess:
    port = free_port()
    name = f"{kind.key}-{tag}"
    if kind is PEER:
        cli = ensure_postgraphile()
        command = postgraphile_command(cli, database.url, port, pool_size=10)
        return start_server(
            name,
            command,
            port=port,
            env={"NODE_ENV": "production"},
            ready_path="/graphql",
            log_dir=log_dir,
        )
    assert kind.factory is not None
    return start_server(
        name,
        uvicorn_command(kind.factory, port),
        port=port,
        env=env,
        ready_path="/healthz",
        log_dir=log_dir,
    )


def check_answer(
    kind: ServerKind,
    server: ServerProcess,
    token: str | None,
    findings: Findings,
    shape: str,
    customer_id: str | None,
) -> None:
    """One request before the load: the answer must be complete and shaped like ours."""
    response = httpx.post(
        server.url + "/graphql",
        content=body_for(kind, shape, customer_id=customer_id),
        headers=headers_for(kind, token),
        timeout=30,
    )
    response.raise_for_status()
    answer = response.json()
    if answer.get("data") is None:
        raise RuntimeError(f"{kind.key} answered without data: {str(answer)[:500]}")
    findings.shapes[kind.key] = shape_of(answer, kind.naming)
    if answer.get("errors"):
        findings.notes.append(f"{kind.key} answered with errors: {str(answer['errors'])[:300]}")
    if kind.naming == "dossier" and "customers" in answer["data"]:
        nodes = answer["data"]["customers"]["nodes"]
        findings.visible_phones[kind.key] = sum(1 for n in nodes if n["phone"]) + sum(
            1 for n in nodes for c in n["contacts"]["nodes"] if c["phone"]
        )
    if kind is OURS:
        findings.ours_answer = answer
        for page in PAGE_SIZES_FOR_STATEMENTS:
            sample = httpx.post(
                server.url + "/graphql",
                content=body_for(kind, shape, page, customer_id),
                headers=headers_for(kind, token),
                timeout=60,
            )
            sample.raise_for_status()
            findings.statements[page] = int(sample.headers.get("x-sql-statements", "-1"))
    if kind is FLOOR and findings.ours_answer is not None:
        findings.floor_matches_ours = answer == findings.ours_answer
        if not findings.floor_matches_ours:
            findings.notes.append(
                "floor differs from ours at " + first_difference(findings.ours_answer, answer)
            )


def first_difference(ours: Any, other: Any, path: str = "") -> str:
    """Where two answers first differ, with both values, for the report."""
    if isinstance(ours, dict) and isinstance(other, dict):
        for key in sorted(set(ours) | set(other)):
            if ours.get(key) != other.get(key):
                return first_difference(ours.get(key), other.get(key), f"{path}.{key}")
    if isinstance(ours, list) and isinstance(other, list):
        if len(ours) != len(other):
            return f"{path}: {len(ours)} items against {len(other)}"
        for index, (a, b) in enumerate(zip(ours, other, strict=True)):
            if a != b:
                return first_difference(a, b, f"{path}[{index}]")
    return f"{path}: ours {str(ours)[:120]!r}, floor {str(other)[:120]!r}"


def measure_server(
    kind: ServerKind,
    database: BenchDatabase,
    env: dict[str, str],
    args: argparse.Namespace,
    round_number: int,
    findings: Findings,
    log: Callable[[str], None],
) -> list[Measurement]:
    server = start(kind, database, env, Path(args.log_dir), f"round{round_number + 1}")
    try:
        token = login(server.url) if kind.needs_token else None
        customer_id = first_customer(server.url, token) if args.shape == "360" and token else None
        check_answer(kind, server, token, findings, args.shape, customer_id)
        url = server.url + "/graphql"
        body = body_for(kind, args.shape, customer_id=customer_id)
        headers = headers_for(kind, token)
        warm = max(args.concurrency)
        run_load(url, body, headers, concurrency=warm, seconds=args.warmup, use_wrk=args.wrk)
        measurements = []
        for concurrency in args.concurrency:
            checkpoint(database.url)
            with ProcessWatch(server.pid) as memory, DatabaseCPU() as database_cpu:
                load = run_load(
                    url,
                    body,
                    headers,
                    concurrency=concurrency,
                    seconds=args.seconds,
                    use_wrk=args.wrk,
                )
            measurements.append(
                Measurement(
                    kind.key,
                    round_number,
                    load,
                    memory.start_mb,
                    memory.end_mb,
                    memory.peak_mb,
                    memory.cpu_seconds * 1000 / load.requests if load.requests else 0.0,
                    database_cpu.seconds * 1000 / load.requests if load.requests else 0.0,
                )
            )
            log(
                f"  {kind.key:<13} c={concurrency:<2} {load.requests_per_second:8.1f} req/s"
                f"  p50 {load.p50_ms:6.1f} ms  p99 {load.p99_ms:6.1f} ms  errors {load.errors}"
                f"  RSS {memory.start_mb:.0f}→{memory.end_mb:.0f} MB"
                f"  CPU {memory.cpu_seconds * 1000 / max(1, load.requests):.1f} ms/req"
                f"  DB CPU {database_cpu.seconds * 1000 / max(1, load.requests):.1f} ms/req"
            )
        return measurements
    finally:
        server.stop()


def measure_sql_floor(
    database: BenchDatabase, env: dict[str, str], args: argparse.Namespace, round_number: int
) -> list[Measurement]:
    command = pinned(
        [
            sys.executable,
            "-m",
            "bench.floor_loop",
            "--url",
            database.url,
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(args.warmup),
            "--concurrency",
            ",".join(map(str, args.concurrency)),
        ]
    )
    # fixed command built from our own arguments
    completed = subprocess.run(  # noqa: S603
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=len(args.concurrency) * (args.seconds + args.warmup) + 60,
    )
    measurements = []
    for figures in orjson.loads(completed.stdout.strip().splitlines()[-1]):
        cpu_ms = figures.pop("cpu_ms_per_request")
        load = LoadResult(**figures)
        measurements.append(Measurement(SQL_FLOOR, round_number, load, 0.0, 0.0, 0.0, cpu_ms))
    return measurements


def profile_ours(
    database: BenchDatabase,
    env: dict[str, str],
    args: argparse.Namespace,
    stamp: str,
    findings: Findings,
    log: Callable[[str], None],
) -> None:
    server = start(OURS, database, env, Path(args.log_dir), "profile")
    try:
        token = login(server.url)
        customer_id = first_customer(server.url, token) if args.shape == "360" else None
        url, headers = server.url + "/graphql", headers_for(OURS, token)
        body = body_for(OURS, args.shape, customer_id=customer_id)
        concurrency = max(args.concurrency)
        run_load(url, body, headers, concurrency=concurrency, seconds=args.warmup, use_wrk=args.wrk)
        outcome: dict[str, Any] = {}

        def sample() -> None:
            outcome["profile"] = record_profile(
                server.pid, args.profile, RESULTS, f"profile-{stamp}"
            )

        sampler = threading.Thread(target=sample)
        sampler.start()
        run_load(
            url,
            body,
            headers,
            concurrency=concurrency,
            seconds=args.profile + 2,
            use_wrk=args.wrk,
        )
        sampler.join()
    finally:
        server.stop()
    profile = outcome.get("profile")
    if profile is None:
        log("profile: py-spy recorded nothing")
        return
    findings.profile = {
        "samples": profile.samples,
        "concurrency": concurrency,
        "stacks": str(profile.stacks),
        "own": [(s.frame, round(s.share, 4)) for s in profile.own],
        "total": [(s.frame, round(s.share, 4)) for s in profile.total],
        "packages": [(s.frame, round(s.share, 4)) for s in profile.packages],
        "concerns": [(s.frame, round(s.share, 4)) for s in profile.concerns],
    }


def decrypt_microseconds() -> float:
    """Cost of one field decryption here: the enforcement-off variant decrypts more phones."""
    cipher = FieldCipher(
        keys=parse_key_ring(f"k1:{new_key()}"),
        active_key_id="k1",
        blind_index_key=new_key().encode(),
    )
    sealed = cipher.encrypt("customer.phone", "+8613800000000")
    rounds = 5000
    started = time.perf_counter()
    for _ in range(rounds):
        cipher.decrypt("customer.phone", sealed)
    return (time.perf_counter() - started) / rounds * 1e6


# -- report ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    server: str
    concurrency: int
    rps: float
    rps_min: float
    rps_max: float
    p50: float
    p95: float
    p99: float
    errors: int
    rss_start: float
    rss_end: float
    rss_peak: float
    cpu_ms: float
    generator: str


def summarise(measurements: Sequence[Measurement]) -> dict[tuple[str, int], Summary]:
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.server, m.load.concurrency), []).append(m)
    summaries = {}
    for key, group in groups.items():
        rps = [m.load.requests_per_second for m in group]
        summaries[key] = Summary(
            server=key[0],
            concurrency=key[1],
            rps=statistics.fmean(rps),
            rps_min=min(rps),
            rps_max=max(rps),
            p50=statistics.fmean(m.load.p50_ms for m in group),
            p95=statistics.fmean(m.load.p95_ms for m in group),
            p99=statistics.fmean(m.load.p99_ms for m in group),
            errors=sum(m.load.errors for m in group),
            # the run that grew most: start and end belong to the same server process
            rss_start=max(group, key=lambda m: m.rss_end_mb - m.rss_start_mb).rss_start_mb,
            rss_end=max(group, key=lambda m: m.rss_end_mb - m.rss_start_mb).rss_end_mb,
            rss_peak=max(m.rss_peak_mb for m in group),
            cpu_ms=statistics.fmean(m.cpu_ms_per_request for m in group),
            generator=group[0].load.generator,
        )
    return summaries


LABELS = {k.key: k.label for k in (OURS, POLICY_OFF, AUDIT_OFF, AUTH_OFF, FLOOR, PEER)} | {
    SQL_FLOOR: "floor: 1 SQL via asyncpg"
}


def render(
    summaries: dict[tuple[str, int], Summary],
    args: argparse.Namespace,
    customers: int,
    findings: Findings,
    decrypt_us: float,
) -> str:
    out: list[str] = []
    generator = "wrk" if args.wrk else "python asyncio+httpx (wrk not found)"
    out.append(
        f"Nested view: first 50 customers (8 fields) + contacts, opportunities, tickets, as {USER}"
    )
    out.append(
        f"{customers:,} customers; {args.seconds:g} s per run after {args.warmup:g} s"
        f" warm-up; {args.rounds} round(s), order alternated; load: {generator}"
    )
    out.append(
        "servers: 1 process each on core 0; load generator on core 1; PostgreSQL unpinned."
        " CPU ms/req: the server process's own CPU time per answered request"
    )
    out.append("")
    header = (
        f"{'server':<26}{'conc':>5}{'req/s':>9}{'(min-max)':>15}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}{'CPU ms/req':>12}  RSS MB start→end, peak"
    )
    out.append(header)
    out.append("-" * len(header))
    order = [OURS.key, POLICY_OFF.key, AUDIT_OFF.key, AUTH_OFF.key, FLOOR.key, SQL_FLOOR, PEER.key]
    for concurrency in args.concurrency:
        for server in order:
            s = summaries.get((server, concurrency))
            if s is None:
                continue
            rss = f"{s.rss_start:.0f}→{s.rss_end:.0f}, {s.rss_peak:.0f}" if s.rss_peak else "-"
            spread = f"({s.rps_min:.0f}-{s.rps_max:.0f})"
            out.append(
                f"{LABELS[server]:<26}{concurrency:>5}{s.rps:>9.1f}{spread:>15}{s.p50:>9.1f}"
                f"{s.p95:>9.1f}{s.p99:>9.1f}{s.errors:>8}{s.cpu_ms:>12.2f}  {rss}"
            )
        out.append("")

    out.append("Ratios (requests/s)")
    for concurrency in args.concurrency:
        ours = summaries.get((OURS.key, concurrency))
        if ours is None:
            continue

        def other(key: str, c: int = concurrency) -> Summary | None:
            return summaries.get((key, c))

        parts = [f"  c={concurrency}:"]
        peer = other(PEER.key)
        if peer:
            parts.append(
                f"ours/PostGraphile {ours.rps / peer.rps:.2f}x"
                f" (p99 {ours.p99:.1f} vs {peer.p99:.1f} ms)"
            )
        floor = other(FLOOR.key)
        if floor:
            parts.append(f"ours/floor(Starlette) {ours.rps / floor.rps:.0%}")
        sql_floor = other(SQL_FLOOR)
        if sql_floor:
            parts.append(f"ours/floor(asyncpg) {ours.rps / sql_floor.rps:.0%}")
        for key, name in ((POLICY_OFF.key, "policy"), (AUDIT_OFF.key, "audit"),
                          (AUTH_OFF.key, "auth")):  # fmt: skip
            switched_off = other(key)
            if switched_off:
                parts.append(f"{name} cost {1 - ours.rps / switched_off.rps:+.1%}")
        if len(parts) > 1:
            out.append(" | ".join(parts))
    out.append("Ratios by server CPU per request (less moved by other load on the machine)")
    for concurrency in args.concurrency:
        ours = summaries.get((OURS.key, concurrency))
        if ours is None or not ours.cpu_ms:
            continue
        parts = [f"  c={concurrency}:"]
        for key, name in ((PEER.key, "ours/PostGraphile"), (FLOOR.key, "ours/floor(Starlette)")):
            other_server = summaries.get((key, concurrency))
            if other_server and other_server.cpu_ms:
                parts.append(f"{name} {other_server.cpu_ms / ours.cpu_ms:.2f}x")
        for key, name in ((POLICY_OFF.key, "policy"), (AUDIT_OFF.key, "audit"),
                          (AUTH_OFF.key, "auth")):  # fmt: skip
            switched_off = summaries.get((key, concurrency))
            if switched_off and switched_off.cpu_ms:
                parts.append(f"{name} {ours.cpu_ms - switched_off.cpu_ms:+.2f} ms")
        if len(parts) > 1:
            out.append(" | ".join(parts))
    out.append("")

    if findings.statements:
        counts = ", ".join(f"first {p}: {n}" for p, n in sorted(findings.statements.items()))
        out.append(f"SQL statements per request (ours, X-SQL-Statements): {counts}")
    if findings.shapes:
        shapes = "; ".join(
            f"{k} {v[0]}/{v[1]}/{v[2]}/{v[3]}" for k, v in sorted(findings.shapes.items())
        )
        out.append(f"answer shapes (customers/contacts/opportunities/tickets): {shapes}")
    if findings.floor_matches_ours is not None:
        same = "identical" if findings.floor_matches_ours else "DIFFERENT"
        out.append(f"floor answer vs ours (as parsed JSON): {same}")
    ours_phones = findings.visible_phones.get(OURS.key)
    off_phones = findings.visible_phones.get(POLICY_OFF.key)
    if ours_phones is not None and off_phones is not None:
        extra_ms = (off_phones - ours_phones) * decrypt_us / 1000
        out.append(
            f"note: enforcement off shows {off_phones} phones per page against {ours_phones}"
            f" (decrypt {decrypt_us:.1f} µs each: +{extra_ms:.2f} ms of work per request"
            " that the policy-cost ratio credits to the policies)"
        )
    failing = sorted({s.server for s in summaries.values() if s.errors})
    if failing:
        out.append(
            f"WARNING: non-2xx or socket errors from {', '.join(failing)}: their figures count"
            " failed answers and are not valid (see the server logs)"
        )
    grown = sorted({s.server for s in summaries.values() if s.rss_end > s.rss_start * 1.10})
    if grown:
        out.append(f"note: RSS grew by more than 10% within a run: {', '.join(grown)}")
    for note in findings.notes:
        out.append(f"note: {note}")
    if findings.profile:
        p = findings.profile
        out.append("")
        out.append(
            f"py-spy profile of ours at c={p['concurrency']}, {p['samples']} samples"
            f" (stacks: {p['stacks']})"
        )
        out.append("  own time (leaf frames):")
        out.extend(f"    {share:6.1%}  {frame}" for frame, share in p["own"])
        out.append("  total time of Dossier's own functions (on the stack):")
        out.extend(f"    {share:6.1%}  {frame}" for frame, share in p["total"])
        out.append("  own time by package:")
        out.extend(f"    {share:6.1%}  {frame}" for frame, share in p.get("packages", []))
        if p.get("concerns"):
            out.append("  by concern (share of samples with it on the stack; they overlap):")
            out.extend(f"    {share:6.1%}  {frame}" for frame, share in p["concerns"])
    return "\n".join(out)


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="Nested-view benchmark (see bench/README.md)."
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="per measured run")
    parser.add_argument("--warmup", type=float, default=3.0, help="per server start")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated, e.g. 1,8")
    parser.add_argument("--rounds", type=int, default=2, help="order reverses every round")
    parser.add_argument("--peer", choices=["postgraphile"], default=None)
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="bench",
        help="bench: the nested view; scalars: every scalar, sensitive and finance ones too; "
        "360: one customer with custom fields and workflow children (ours alone)",
    )
    parser.add_argument("--keep-db", action="store_true", help="reuse a database seeded with N")
    parser.add_argument(
        "--servers",
        default="ours,policy_off,audit_off,auth_off,floor,sql_floor",
        help="subset to run (the peer is added by --peer)",
    )
    parser.add_argument(
        "--profile", type=float, default=0.0, help="seconds of py-spy on ours under load (0: off)"
    )
    parser.add_argument("--python-load", action="store_true", help="use the Python generator")
    parser.add_argument(
        "--report", metavar="JSON", help="print the table of an earlier run's results file again"
    )
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    return args


def rerender(path: Path) -> str:
    """The report of a results file, rendered by the current code (e.g. after adding a ratio)."""
    saved = orjson.loads(path.read_bytes())
    measurements = []
    for m in saved["measurements"]:
        load = LoadResult(**{k: m[k] for k in LoadResult.__dataclass_fields__})
        measurements.append(
            Measurement(
                m["server"],
                m["round"],
                load,
                m["rss_start_mb"],
                m["rss_end_mb"],
                m["rss_peak_mb"],
                m.get("cpu_ms_per_request", 0.0),
                m.get("db_cpu_ms_per_request", 0.0),
            )
        )
    findings = Findings(
        shapes={k: tuple(v) for k, v in saved["shapes"].items()},  # type: ignore[misc]  # 4 counts
        statements={int(k): v for k, v in saved["statements_per_request"].items()},
        floor_matches_ours=saved["floor_matches_ours"],
        visible_phones=saved["visible_phones"],
        notes=saved["notes"],
        profile=saved["profile"],
    )
    if findings.profile and Path(findings.profile["stacks"]).exists():
        samples, own, total, packages, concerns = summarise_profile(
            Path(findings.profile["stacks"])
        )
        findings.profile |= {
            "own": [(h.frame, h.share) for h in own],
            "total": [(h.frame, h.share) for h in total],
            "packages": [(h.frame, h.share) for h in packages],
            "concerns": [(h.frame, h.share) for h in concerns],
        }
    args = argparse.Namespace(
        seconds=saved["seconds"],
        warmup=saved["warmup"],
        rounds=saved["rounds"],
        concurrency=saved["concurrency"],
        wrk=saved["generator"] == "wrk",
    )
    decrypt_us = saved.get("decrypt_us") or decrypt_microseconds()
    return render(summarise(measurements), args, saved["customers"], findings, decrypt_us)


@contextlib.contextmanager
def one_bench_at_a_time(log: Callable[[str], None]) -> Iterator[None]:
    """Two benches on the same server core measure each other: the second waits its turn."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / ".lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            log(f"another bench holds the machine (pid {lock.read().strip()}); waiting")
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        print(rerender(Path(args.report)))
        return

    def log(message: str) -> None:
        print(message, flush=True)

    with one_bench_at_a_time(log):
        measure_all(args, log)


def measure_all(args: argparse.Namespace, log: Callable[[str], None]) -> None:

    pin_this_process_to_load_core()
    args.wrk = wrk_available() and not args.python_load
    if not args.wrk and not args.python_load:
        log("wrk not found (apt-get install -y wrk): using the Python asyncio+httpx generator")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    args.log_dir = str(RESULTS / f"logs-{stamp}")
    findings = Findings()

    database = asyncio.run(prepare_database(args.customers, keep=args.keep_db, log=log))
    data_dir = tempfile.mkdtemp(prefix="dossier-bench-")
    env = database.server_env(data_dir) | BENCH_ENV

    by_key = {k.key: k for k in (OURS, POLICY_OFF, AUDIT_OFF, AUTH_OFF, FLOOR)}
    kinds: list[ServerKind | str] = [by_key.get(s, s) for s in args.servers]
    unknown = [k for k in kinds if isinstance(k, str) and k != SQL_FLOOR]
    if unknown:
        raise SystemExit(f"unknown servers {unknown}; choose from {[*by_key, SQL_FLOOR]}")
    if args.shape != "bench" and any(k is FLOOR or k == SQL_FLOOR for k in kinds):
        kinds = [k for k in kinds if k is not FLOOR and k != SQL_FLOOR]
        findings.notes.append("floor servers left out: they answer the bench shape only")
    if args.peer == "postgraphile" and SHAPES[args.shape].postgraphile is None:
        findings.notes.append(f"PostGraphile left out: it cannot answer the {args.shape} shape")
    elif args.peer == "postgraphile":
        try:
            ensure_postgraphile()
            kinds.append(PEER)
        except PeerUnavailableError as error:
            findings.notes.append(f"PostGraphile skipped: {error}")
            log(f"PostGraphile skipped: {error}")

    load_before = os.getloadavg()
    measurements: list[Measurement] = []
    for round_number in range(args.rounds):
        order = kinds if round_number % 2 == 0 else list(reversed(kinds))
        log(f"round {round_number + 1}/{args.rounds}: {', '.join(_key(k) for k in order)}")
        for kind in order:
            try:
                if isinstance(kind, str):
                    found = measure_sql_floor(database, env, args, round_number)
                    for m in found:
                        log(
                            f"  {SQL_FLOOR:<13} c={m.load.concurrency:<2}"
                            f" {m.load.requests_per_second:8.1f} req/s  p50 {m.load.p50_ms:6.1f} ms"
                            f"  p99 {m.load.p99_ms:6.1f} ms"
                        )
                else:
                    found = measure_server(kind, database, env, args, round_number, findings, log)
                measurements.extend(found)
            except (RuntimeError, httpx.HTTPError, subprocess.SubprocessError) as error:
                message = f"{_key(kind)} failed in round {round_number + 1}: {error}"
                findings.notes.append(message)
                log(message)

    if args.profile > 0:
        if py_spy() is None:
            findings.notes.append("profile skipped: py-spy not installed (pip install py-spy)")
        else:
            log(f"profiling ours for {args.profile:g} s under load")
            try:
                profile_ours(database, env, args, stamp, findings, log)
            except (RuntimeError, subprocess.SubprocessError) as error:
                findings.notes.append(f"profile failed: {error}")

    load_after = os.getloadavg()
    findings.notes.append(
        "machine load average (1/5/15 min) before "
        + "/".join(f"{x:.1f}" for x in load_before)
        + ", after "
        + "/".join(f"{x:.1f}" for x in load_after)
        + " on 2 cores: above ~2 other work shared the machine; trust CPU ms/req over req/s"
    )
    summaries = summarise(measurements)
    decrypt_us = decrypt_microseconds()
    report = render(summaries, args, database.customers, findings, decrypt_us)
    log("")
    log(report)

    RESULTS.mkdir(parents=True, exist_ok=True)
    result_path = RESULTS / f"{stamp}.json"
    result_path.write_bytes(
        orjson.dumps(
            {
                "at": stamp,
                "customers": database.customers,
                "shape": args.shape,
                "seconds": args.seconds,
                "warmup": args.warmup,
                "rounds": args.rounds,
                "concurrency": args.concurrency,
                "generator": "wrk" if args.wrk else "python",
                "measurements": [
                    {
                        "server": m.server,
                        "round": m.round,
                        **m.load.as_dict(),
                        "rss_start_mb": m.rss_start_mb,
                        "rss_end_mb": m.rss_end_mb,
                        "rss_peak_mb": m.rss_peak_mb,
                        "cpu_ms_per_request": m.cpu_ms_per_request,
                        "db_cpu_ms_per_request": m.db_cpu_ms_per_request,
                    }
                    for m in measurements
                ],
                "summary": [asdict(s) for s in summaries.values()],
                "statements_per_request": findings.statements,
                "shapes": findings.shapes,
                "floor_matches_ours": findings.floor_matches_ours,
                "visible_phones": findings.visible_phones,
                "decrypt_us": decrypt_us,
                "profile": findings.profile,
                "notes": findings.notes,
                "report": report,
            },
            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
        )
    )
    log(f"\nfigures written to {result_path.relative_to(ROOT)}")


def _key(kind: ServerKind | str) -> str:
    return kind if isinstance(kind, str) else kind.key


if __name__ == "__main__":
    main()
