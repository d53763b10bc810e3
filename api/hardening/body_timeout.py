"""A bound on the wait for each part of a request body: a client that stops sending mid-body
is answered 408 and let go, instead of holding a connection and a task for ever.

uvicorn has no body-read timeout. Only the body is timed: once it is complete, `receive`
waits for the disconnect for as long as the app listens, as ASGI intends.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyReadTimeoutError(Exception):
    """Raised from `receive` when the next part of the body did not come in time."""


class BodyTimeoutMiddleware:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                raise BodyReadTimeoutError from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyReadTimeoutError:
            if started:
                raise
            await _refuse(send, self.seconds)


async def _refuse(send: Send, seconds: float) -> None:
    body = orjson.dumps(
        {
            "errors": [
                {
                    "message": f"The request body did not arrive within {seconds:g} s",
                    "extensions": {"code": "TIMEOUT"},
                }
            ]
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 408,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
