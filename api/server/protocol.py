"""uvicorn's httptools protocol with the limits uvicorn lacks: a header timeout, a header size
bound, a connection cap that sheds idle connections, and a JSON 503 over the request cap.

uvicorn closes a keep-alive connection idle for `timeout_keep_alive`, but arms that timer only
after a response, and cancels it on the first byte received: a connection that never sends
anything, or sends its headers a byte at a time, is held for ever, and 1 100 of them exhaust a
1 024-descriptor process. Here every connection must complete a request's headers within
`header_timeout_seconds` of connecting (or of its previous answer), and within
`max_header_bytes`; and when more than `max_connections` are open, the one that has waited
longest without a request in progress is closed, so new clients are still accepted and served.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.hardening.headers import security_headers
from api.server.settings import ServerLimits, server_limits

_BUSY_BODY = orjson.dumps(
    {
        "errors": [
            {
                "message": "The server is busy; try again shortly",
                "extensions": {"code": "UNAVAILABLE"},
            }
        ]
    }
)


async def busy(scope: Any, receive: Any, send: Any) -> None:
    """The answer to a request over `max_concurrency`."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_BUSY_BODY)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
                *security_headers(),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BUSY_BODY})


_TOO_LARGE_BODY = orjson.dumps(
    {"errors": [{"message": "Request headers too large", "extensions": {"code": "BAD_REQUEST"}}]}
)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: "
    + str(len(_TOO_LARGE_BODY)).encode()
    + b"\r\n\r\n"
    + _TOO_LARGE_BODY
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: ServerLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = server_limits()
        self.limit_concurrency = None  # uvicorn's check counts idle connections and answers text
        self.awaiting_since: float | None = None  # None while a request is in progress
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows it too
        super().connection_made(transport)
        self._await_request()
        if len(self.connections) > self.limits.max_connections:
            self._shed_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.awaiting_since is None:
            super().data_received(data)
            return
        room = max(0, self.limits.max_header_bytes - self._header_bytes)
        self._header_bytes += len(data)
        if len(data) <= room:
            super().data_received(data)
            return
        # over the limit, unless the headers end within it: one packet often holds the headers
        # and the start of the body, and body bytes are no header bytes
        super().data_received(data[:room])
        if self.awaiting_since is None:  # the headers completed within the limit
            if not self.transport.is_closing():
                super().data_received(data[room:])
            return
        self._disarm()
        self.transport.write(_TOO_LARGE)
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._disarm()
        self.awaiting_since = None
        if len(self.tasks) >= self.limits.max_concurrency:
            app, self.app = self.app, busy
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._await_request()

    def _await_request(self) -> None:
        self._disarm()
        self.awaiting_since = time.monotonic()
        self._header_bytes = 0
        self._header_timer = self.loop.call_later(
            self.limits.header_timeout_seconds, self._on_header_timeout
        )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self.awaiting_since is not None and not self.transport.is_closing():
            self.transport.close()

    def _shed_idle(self) -> None:
        """Close the connection that has waited longest for a request (possibly this one)."""
        waiting = [
            c
            for c in self.connections
            if isinstance(c, GuardedHttpToolsProtocol)
            and c.awaiting_since is not None
            and not c.transport.is_closing()
        ]
        if waiting:
            oldest = min(waiting, key=lambda c: c.awaiting_since or 0.0)
            oldest._disarm()
            oldest.transport.close()
