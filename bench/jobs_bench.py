"""Background exports of a large book: seconds to DONE and the worker's peak RSS, per format.

    python -m bench.jobs_bench            # the DATABASE_URL and DOSSIER_* of the environment

Needs a database already seeded (`dossier seed --customers 100000`). Starts one `dossier serve`
(no in-process worker) and, per format, a fresh `dossier worker`, so each peak RSS is that
export's alone; exports every customer `bob` may export (the Sales subtree) with all fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

EXPORT = "mutation($f: ExportFormat!) { exportCustomers(format: $f) { id status rowCount } }"
STATE = "query($id: ID!) { export(id: $id) { status progress rowCount url error } }"
LOGS = Path("bench/results")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _process(arguments: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "DOSSIER_INPROCESS_WORKER": "0"}
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603  # our own interpreter and arguments
            [sys.executable, "-c", "from api.cli import main; main()", *arguments],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait_for_a_worker(pid: int) -> None:
    """Until the worker has registered: the figure is the export's, not the start-up's."""
    url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")

    async def registered() -> bool:
        connection = await asyncpg.connect(url)
        try:
            found = await connection.fetchval(
                "SELECT count(*) FROM procrastinate_workers "
                "WHERE last_heartbeat > now() - interval '3 seconds'"
            )
        finally:
            await connection.close()
        return bool(found)

    for _ in range(1200):
        if asyncio.run(registered()):
            return
        time.sleep(0.1)
    raise SystemExit(f"worker {pid} did not start")


def main() -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with _process(["serve", "--no-migrate", "--port", str(port)], LOGS / "jobs-serve.log"):
        for _ in range(600):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            time.sleep(0.1)
        token = httpx.post(
            f"{base}/auth/token", data={"username": "bob", "password": "dossier-demo"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def post(query: str, **variables: object) -> dict[str, object]:
            body = httpx.post(
                f"{base}/graphql",
                json={"query": query, "variables": variables},
                headers=headers,
                timeout=120,
            ).json()
            assert "errors" not in body, body
            return body["data"]  # type: ignore[no-any-return]

        for format in ("CSV", "XLSX"):
            with _process(["worker"], LOGS / f"jobs-worker-{format}.log") as worker:
                _wait_for_a_worker(worker.pid)
                started = time.monotonic()
                answer = post(EXPORT, f=format)["exportCustomers"]
                assert isinstance(answer, dict)
                while True:
                    state = post(STATE, id=answer["id"])["export"]
                    assert isinstance(state, dict) and state["status"] != "FAILED", state
                    if state["status"] == "DONE":
                        break
                    time.sleep(0.2)
                seconds = time.monotonic() - started
                rss = _peak_rss_mib(worker.pid)
            size = len(httpx.get(f"{base}{state['url']}", headers=headers, timeout=120).content)
            print(
                f"{format}: {state['rowCount']:,} rows in {seconds:.1f} s "
                f"(request to DONE), {size / 1e6:.1f} MB, "
                f"worker peak RSS {rss:.0f} MiB"
            )


if __name__ == "__main__":
    main()
