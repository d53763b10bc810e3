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


def _package_of(frame: str) -> str:
    where = frame.rpartition(" (")[2].rstrip(")")
    return where.split("/", 1)[0] if "/" in where else where


def _is_entry(frame: str) -> bool:
    return frame.startswith("<module>") or any(marker in frame for marker in ENTRY_FRAMES)


def summarise(raw: Path, top: int = 15) -> tuple[int, list[HotSpot], list[HotSpot], list[HotSpot]]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    packages: Counter[str] = Counter()
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
        packages[_package_of(frames[-1])] += count
        for name in set(frames):
            if not _is_entry(name):
                total[name] += count
    if samples == 0:
        return 0, [], [], []

    def spots(counter: Counter[str]) -> list[HotSpot]:
        return [HotSpot(frame, n / samples) for frame, n in counter.most_common(top)]

    return samples, spots(own), spots(total), spots(packages)


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
    samples, own, total, packages = summarise(raw)
    return Profile(samples, own, total, packages, raw)
