"""Closed-loop load at a fixed concurrency for a bounded time: wrk, or asyncio + httpx without it.

wrk (one thread, `c` connections, pinned to the load core) is the generator of record: it costs
the load core far less per request than any Python client, so the server core stays the limit.
Without wrk the Python generator gives the same figures with a lower ceiling; the report says
which one ran.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.servers import LOAD_CORE, pinned

LUA = """
wrk.method = "POST"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  io.write("WRK_RESULT ")
  io.write(string.format(
    '{{"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,'
      .. '"status_errors":%d,"socket_errors":%d}}\\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured; latencies in milliseconds."""

    generator: str
    concurrency: int
    seconds: float
    requests: int
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int  # non-2xx answers plus socket errors and timeouts

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    # a long bracket string needs no escaping as long as it does not contain its own closer
    level = "=" * 3
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def _lua_script(body: bytes, headers: Mapping[str, str]) -> str:
    lines = "\n".join(
        f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}"
        for name, value in headers.items()
    )
    return LUA.format(body=_lua_string(body.decode()), headers=lines)


def run_wrk(
    url: str, body: bytes, headers: Mapping[str, str], *, concurrency: int, seconds: float
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua_script(body, headers))
    try:
        command = pinned(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                url,
            ],
            LOAD_CORE,
        )
        # fixed command built from our own arguments
        completed = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
    found = [line for line in completed.stdout.splitlines() if line.startswith("WRK_RESULT ")]
    if completed.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip() or completed.stdout[-500:]}")
    figures = json.loads(found[-1].removeprefix("WRK_RESULT "))
    duration = figures["duration_us"] / 1e6
    return LoadResult(
        generator="wrk",
        concurrency=concurrency,
        seconds=duration,
        requests=figures["requests"],
        requests_per_second=figures["requests"] / duration if duration else 0.0,
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=figures["status_errors"] + figures["socket_errors"],
    )


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def _python_load(
    url: str, body: bytes, headers: Mapping[str, str], concurrency: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=dict(headers))
                    await response.aread()
                    if response.status_code >= 300:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - sent) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        generator="python",
        concurrency=concurrency,
        seconds=elapsed,
        requests=len(latencies),
        requests_per_second=len(latencies) / elapsed,
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        p95_ms=_percentile(latencies, 0.95),
        p99_ms=_percentile(latencies, 0.99),
        errors=errors,
    )


def run_load(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    concurrency: int,
    seconds: float,
    use_wrk: bool,
) -> LoadResult:
    if use_wrk:
        return run_wrk(url, body, headers, concurrency=concurrency, seconds=seconds)
    return asyncio.run(_python_load(url, body, headers, concurrency, seconds))
