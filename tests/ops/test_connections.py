"""Idle and slow connections cannot exhaust a server: 1 100 sockets that never send a request
against a process allowed 256 descriptors; a normal request is still answered, and the idle
sockets are closed after the header timeout."""

from __future__ import annotations

import contextlib
import resource
import socket
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.ops.conftest import ServerProcess, free_port, running_server

IDLE_SOCKETS = 1100
HEADER_TIMEOUT = 2.0
SERVE = "from api.cli import main; main()"


@pytest.fixture(scope="module")
def capped_server(
    ops_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    port = free_port()
    command = [
        "bash", "-c", f'ulimit -n 256 && exec "$0" -c "{SERVE}" "$@"', sys.executable,
        "serve", "--port", str(port), "--no-migrate",
    ]  # fmt: skip
    env = {
        **ops_env,
        "DOSSIER_MAX_CONNECTIONS": "100",
        "DOSSIER_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "DOSSIER_KEEPALIVE_SECONDS": "2",
        "DOSSIER_BODY_TIMEOUT_SECONDS": "2",
        "DOSSIER_DB_POOL_SIZE": "2",
    }
    log = tmp_path_factory.mktemp("capped") / "serve.log"
    with running_server(command, env, port, log) as server:
        yield server


@contextlib.contextmanager
def descriptors(count: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, count))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def is_closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except BlockingIOError:
        return False


def test_idle_sockets_neither_exhaust_the_server_nor_stay_open(
    capped_server: ServerProcess,
) -> None:
    port = int(capped_server.base_url.rsplit(":", 1)[1])
    with descriptors(IDLE_SOCKETS + 200):
        idle: list[socket.socket] = []
        try:
            for _ in range(IDLE_SOCKETS):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.setblocking(False)
                idle.append(sock)
            started = time.monotonic()
            response = httpx.get(f"{capped_server.base_url}/readyz", timeout=15)
            answered = time.monotonic() - started
            assert response.status_code in (200, 503), response.text
            assert response.headers["content-type"].startswith("application/json")
            assert answered < HEADER_TIMEOUT + 5

            deadline = time.monotonic() + HEADER_TIMEOUT + 10
            open_sockets = list(idle)
            while open_sockets and time.monotonic() < deadline:
                time.sleep(0.2)
                open_sockets = [s for s in open_sockets if not is_closed_by_server(s)]
            assert not open_sockets, f"{len(open_sockets)} idle sockets still open"
            assert capped_server.process.poll() is None
            assert httpx.get(f"{capped_server.base_url}/readyz", timeout=5).status_code == 200
        finally:
            for sock in idle:
                sock.close()


def test_a_keep_alive_connection_idle_past_the_timeout_is_closed(
    capped_server: ServerProcess,
) -> None:
    with httpx.Client(base_url=capped_server.base_url) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/healthz").status_code == 200  # the same connection, kept alive
    port = int(capped_server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(HEADER_TIMEOUT + 6)
        started, received = time.monotonic(), b""
        while chunk := sock.recv(4096):  # until the server closes: we never do
            received += chunk
        assert received.startswith(b"HTTP/1.1 200") and received.endswith(b'{"status":"ok"}')
        assert time.monotonic() - started < HEADER_TIMEOUT + 5


def test_headers_sent_a_byte_at_a_time_are_cut_off(capped_server: ServerProcess) -> None:
    port = int(capped_server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        closed = False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > HEADER_TIMEOUT + 3:
                break
        if not closed:
            sock.settimeout(3)
            with contextlib.suppress(ConnectionResetError):
                closed = sock.recv(1) == b""
        assert closed
        assert time.monotonic() - started < HEADER_TIMEOUT + 4


def test_a_body_that_stops_arriving_is_answered_408(capped_server: ServerProcess) -> None:
    port = int(capped_server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /auth/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            b"username=dave&pass"
        )
        started, received = time.monotonic(), b""
        while chunk := sock.recv(4096):
            received += chunk
        assert received.startswith(b"HTTP/1.1 408"), received
        assert b'"code":"TIMEOUT"' in received and b"x-request-id" in received.lower()
        assert time.monotonic() - started < 6
