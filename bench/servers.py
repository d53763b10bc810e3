"""Starting one server process pinned to the server core, and watching its memory.

Every server under test is one process on core 0 (`taskset -c 0`): one uvicorn worker for the
Python servers, one Node process for PostGraphile. The load generator and this script run on
core 1, so neither steals the other's CPU.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

SERVER_CORE = 0
LOAD_CORE = 1
ROOT = Path(__file__).resolve().parent.parent


def pin_this_process_to_load_core() -> None:
    """This script and everything it starts without `taskset` run beside the load generator."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > LOAD_CORE:
        os.sched_setaffinity(0, {LOAD_CORE})


def pinned(command: Sequence[str], core: int = SERVER_CORE) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > core:
        return ["taskset", "-c", str(core), *command]
    return list(command)


def uvicorn_command(factory: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]


@dataclass
class ServerProcess:
    """A running server under test; `stop()` ends it (and only it)."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    ready_path: str,
    log_dir: Path,
    timeout: float = 60.0,
) -> ServerProcess:
    """Start `command` pinned to the server core and wait until `ready_path` answers."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        # the command is built from fixed parts and our own arguments, not from input
        process = subprocess.Popen(  # noqa: S603
            pinned(command),
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(name, port, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start; see {log_path}")
        try:
            response = httpx.get(server.url + ready_path, timeout=2)
            if response.status_code < 500:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"{name} did not answer {ready_path} within {timeout:.0f} s; see {log_path}")


@dataclass
class ProcessWatch:
    """Resident set size of one process, sampled in a thread while a load runs, and its CPU time.

    CPU seconds per request is the figure least disturbed by the shared machine: it does not
    depend on how busy the load generator's core or PostgreSQL were.
    """

    pid: int
    interval: float = 0.2
    samples: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu_start: float = 0.0

    def __enter__(self) -> ProcessWatch:
        process = psutil.Process(self.pid)
        self._cpu_start = _cpu_of(process)

        def sample() -> None:
            while not self._stop.is_set():
                try:
                    self.samples.append(process.memory_info().rss)
                except psutil.Error:
                    return
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(psutil.Error):
            self.cpu_seconds = _cpu_of(psutil.Process(self.pid)) - self._cpu_start

    @property
    def start_mb(self) -> float:
        return self.samples[0] / 2**20 if self.samples else 0.0

    @property
    def end_mb(self) -> float:
        return self.samples[-1] / 2**20 if self.samples else 0.0

    @property
    def peak_mb(self) -> float:
        return max(self.samples) / 2**20 if self.samples else 0.0


@dataclass
class DatabaseCPU:
    """CPU seconds PostgreSQL's processes spent while a load ran (all of them: backends,
    WAL writer, autovacuum), to set beside the server's own CPU per request.

    Our server and PostgreSQL share the machine's two cores, so a server that asks the
    database for more work per request pays for it in throughput even at equal server CPU.
    Backends that exit during the run take their time with them: an underestimate, never more.
    """

    seconds: float = 0.0
    _start: dict[int, float] = field(default_factory=dict)

    @staticmethod
    def _postgres() -> dict[int, float]:
        found: dict[int, float] = {}
        for process in psutil.process_iter(["name"]):
            if process.info["name"] in ("postgres", "postgres.bin"):
                with contextlib.suppress(psutil.Error):
                    found[process.pid] = _cpu_of(process)
        return found

    def __enter__(self) -> DatabaseCPU:
        self._start = self._postgres()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._postgres()
        self.seconds = sum(cpu - self._start.get(pid, 0.0) for pid, cpu in end.items())


def _cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)
