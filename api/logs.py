"""Logging: structlog over the standard library, and the request id on every line and response.

`configure_logging` sends every log record of the process — structlog's and the standard
library's (`logging.getLogger(...)`, uvicorn's, SQLAlchemy's) — through one handler: JSON lines
in production, readable console lines in dev and test, at `DOSSIER_LOG_LEVEL`.

`RequestIdMiddleware` is the one place a request id is chosen: the client's `X-Request-ID` when
it is offered and well-formed (8–64 of `A-Za-z0-9._-`), otherwise a fresh one. It is kept in a
context variable for the request (`current_request_id()`; every log line of the request carries
it as `request_id`), on `request.state.request_id`, put back into the request's headers (so code
that reads `X-Request-ID` itself sees the same id), and added to every response.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import IO, Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.secrets import ConfigurationError

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_HEADER = b"x-request-id"

_request_id: ContextVar[str | None] = ContextVar("dossier_request_id", default=None)
access_log = structlog.get_logger("dossier.http")


def current_request_id() -> str:
    """The id of the request being served (chosen by `RequestIdMiddleware`); outside a request,
    a fresh one."""
    return _request_id.get() or uuid.uuid4().hex


def offered_or_new(offered: str | None) -> str:
    return offered if offered and REQUEST_ID.match(offered) else uuid.uuid4().hex


def log_level_from(environ: Mapping[str, str]) -> str:
    level = (environ.get("DOSSIER_LOG_LEVEL") or "INFO").strip().upper()
    if level not in LEVELS:
        raise ConfigurationError(f"DOSSIER_LOG_LEVEL must be one of {', '.join(LEVELS)}")
    return level


def _add_request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = _request_id.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def _drop_color_message(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return event


def _json(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


_HANDLER_MARK = "_dossier_handler"


def configure_logging(level: str, *, json: bool, stream: IO[str] | None = None) -> None:
    """Route all logging through structlog's formatter on one handler; idempotent (a second
    call replaces the handler the first installed, and leaves other handlers alone)."""
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    final: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json:
        final.append(structlog.processors.format_exc_info)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_color_message],
        processors=[*final, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own handlers would print a second, unstructured copy; its access line has no
    # request id (it is written outside the request's context): ours replaces it
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class RequestIdMiddleware:
    """Pure ASGI: one request id per HTTP request (see the module docstring), one access line
    per response, and a masked 500 carrying the id for an exception nothing else answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = None
        headers: list[tuple[bytes, bytes]] = []
        for name, value in scope["headers"]:
            if name == _HEADER:
                offered = value.decode("latin-1")
            else:
                headers.append((name, value))
        request_id = offered_or_new(offered)
        raw_id = request_id.encode()
        headers.append((_HEADER, raw_id))
        scope = {**scope, "headers": headers}
        scope.setdefault("state", {})["request_id"] = request_id
        token = _request_id.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out = list(message.get("headers", ()))
                if not any(name.lower() == _HEADER for name, _ in out):
                    out.append((_HEADER, raw_id))
                message = {**message, "headers": out}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            access_log.exception("unhandled error", path=scope.get("path"))
            if status:
                raise  # the answer has begun: the server can only drop the connection
            status = 500
            body = orjson.dumps(
                {
                    "errors": [
                        {
                            "message": "Internal error",
                            "extensions": {"code": "INTERNAL", "requestId": request_id},
                        }
                    ]
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (_HEADER, raw_id),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            access_log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=(scope.get("client") or ("-",))[0],
            )
            _request_id.reset(token)
