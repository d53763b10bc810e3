"""Security headers on every response, and `Cache-Control: no-store` on GraphQL and auth.

The API serves JSON to programs, so the policy is the strictest there is: no framing, no
sniffing, no referrer, no content of any kind loaded on the API's behalf. The one HTML page,
GraphiQL in dev mode, loads only its own files from this origin (`api.graphiql`) and gets the
CSP that allows exactly that.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.graphiql import GRAPHIQL_CSP
from api.hardening.settings import HardeningSettings

NO_STORE_PREFIXES = ("/graphql", "/auth")

_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), geolocation=(), microphone=(), payment=()",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, settings: HardeningSettings) -> None:
        self.app = app
        self.hsts = (
            f"max-age={settings.hsts_seconds}; includeSubDomains" if settings.hsts_seconds else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        no_store = path.startswith(NO_STORE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    headers.setdefault(name, value)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", GRAPHIQL_CSP)
                else:
                    headers.setdefault("Content-Security-Policy", API_CSP)
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", self.hsts)
                if no_store:
                    headers["Cache-Control"] = "no-store"
                    headers.setdefault("Pragma", "no-cache")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_headers() -> list[tuple[bytes, bytes]]:
    """The headers of every API answer, for answers made outside the app (the HTTP server's)."""
    pairs = [*_ALWAYS.items(), ("Content-Security-Policy", API_CSP), ("Cache-Control", "no-store")]
    return [(name.lower().encode(), value.encode()) for name, value in pairs]
