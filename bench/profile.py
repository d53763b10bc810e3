"""A py-spy profile of a server under load, and its hot spots as text.

py-spy samples the server from outside (no change to the server); `--format raw` writes
collapsed stacks, from which the own time (leaf frames) and the total time (anywhere on the
stack) of each function are counted. The stacks file stays in bench/results/ for a flame graph.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.servers import LOAD_CORE, pinned


@dataclass(frozen=True)
class HotSpot:
    frame: str
    share: float  # of all samples


@dataclass(frozen=True)
class Profile:
    samples: int
    own: list[HotSpot]
    total: list[HotSpot]
    packages: list[HotSpot]  # own time per top-level package (graphql, sqlalchemy, resolvers…)
    concerns: list[HotSpot]  # total time per concern of CONCERNS
    stacks: Path  # collapsed stacks: feed to flamegraph.pl or speedscope for a picture


def py_spy() -> str | None:
    return shutil.which("py-spy")


def _frame_name(frame: str) -> str:
    # "resolve (graphql/execution/execute.py:523)" → "resolve (graphql/execution/execute.py)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


# frames every sample passes through on its way to the application: their total time says nothing
ENTRY_FRAMES = (
    "runpy",
    "click/",
    "uvicorn/main.py",
    "uvicorn/__main__.py",
    "uvicorn/_compat.py",
    "uvicorn/server.py",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
)


# where a GraphQL request's time goes, by concern: share of samples with the frame on the stack
CONCERNS: tuple[tuple[str, str], ...] = (
    ("authentication", "authenticate (api/auth/backend.py"),
    ("GraphQL parse", "parse (graphql/language/parser.py"),
    ("GraphQL validate", "validate (graphql/validation/validate.py"),
    ("GraphQL field execution", "Executor.execute_field "),
    ("argument coercion", "coerce_argument (graphql/execution/values.py"),
    ("task creation for async fields", "_ensure_future (asyncio/tasks.py"),
    ("root page (RecordReader.page)", "RecordReader.page (resolvers/reader.py"),
    ("nested levels (_fetch_children)", "RecordReader._fetch_children (resolvers/reader.py"),
    ("column plans (plan_columns)", "plan_columns (resolvers/masking.py"),
    ("SQL compile or cache lookup", "ClauseElement._compile_w_cache (sqlalchemy/sql/elements.py"),
    ("SQL cache keys", "_generate_cache_key (sqlalchemy/sql/cache_key.py"),
    ("SQL execution context", "DefaultExecutionContext._init_compiled (sqlalchemy/engine"),
    ("asyncpg execute + decode", "__do_execute (asyncpg/prepared_stmt.py"),
    ("Row._mapping", "Row._mapping (sqlalchemy/engine/row.py"),
    ("materialising objects", "Materialiser.build (resolvers/masking.py"),
    ("field decryption", "FieldCipher.decrypt (db/crypto.py"),
    ("cursors", "encode_cursor (resolvers/pagination.py"),
    ("audit append", "append_events (audit/chain.py"),
    ("response JSON", "JSONBody.render (api/graphql.py"),
)


def _package_of(frame: str) -> str:
    where = frame.rpartition(" (")[2].rstrip(")")
    return where.split("/", 1)[0] if "/" in where else where


# Dossier's own packages: the total-time list names only their functions (the frameworks'
# wrappers would otherwise fill it with middleware that every request passes through)
OWN_PACKAGES = ("api/", "resolvers/", "schema/", "policy/", "audit/", "identity/", "db/")


def _is_entry(frame: str) -> bool:
    if frame.startswith("<module>") or any(marker in frame for marker in ENTRY_FRAMES):
        return True
    where = frame.rpartition(" (")[2]
    return not where.startswith(OWN_PACKAGES) or where.startswith("api/metrics.py")


def summarise(raw: Path, top: int = 15) -> tuple[int, list[HotSpot], list[HotSpot], list[HotSpot]]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    concerns: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for label, marker in CONCERNS:
            if marker in stack:
                concerns[label] += count
        packages[_package_of(frames[-1])] += count
        for name in set(frames):
            if not _is_entry(name):
                total[name] += count
    if samples == 0:
        return 0, [], [], [], []

    def spots(counter: Counter[str]) -> list[HotSpot]:
        return [HotSpot(frame, n / samples) for frame, n in counter.most_common(top)]

    by_concern = [HotSpot(label, concerns[label] / samples) for label, _ in CONCERNS]
    return samples, spots(own), spots(total), spots(packages), by_concern


def record(pid: int, seconds: float, out_dir: Path, stem: str) -> Profile:
    """Sample `pid` for `seconds` (call while the load runs in another thread)."""
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{stem}.txt"
    # --nonblocking: sampling does not pause the server, so the load it serves stays the same;
    # py-spy runs on the load core beside the generator
    duration = str(max(1, round(seconds)))
    command = [tool, "record", "--pid", str(pid), "--duration", duration, "--rate", "200",
               "--nonblocking", "--format", "raw", "--output", str(raw)]  # fmt: skip
    # fixed command, our own arguments
    subprocess.run(  # noqa: S603
        pinned(command, LOAD_CORE), capture_output=True, check=True, timeout=seconds + 60
    )
    samples, own, total, packages, concerns = summarise(raw)
    return Profile(samples, own, total, packages, concerns, raw)
