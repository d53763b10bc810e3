"""The console at `/console`: server-rendered pages over the public GraphQL API (`gateway`)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.console import pages
from api.console.session import SessionCookie, cookie_key
from api.settings import Settings


def console_routes(settings: Settings) -> list[BaseRoute]:
    # the cookie is Secure everywhere but in dev, where the console is reached over plain http
    cookie = SessionCookie(cookie_key(settings.auth.active_key[1]), secure=not settings.is_dev)
    console = pages.Console(cookie)
    page = console.page
    return [
        Route("/console", page(pages.home, signed_in=False), methods=["GET"]),
        Route("/console/login", page(pages.sign_in, signed_in=False), methods=["POST"]),
        Route("/console/logout", page(pages.sign_out, signed_in=False), methods=["POST"]),
        Route("/console/policies", page(pages.policies), methods=["GET"]),
        Route("/console/policies/preview", page(pages.preview), methods=["POST"]),
        Route("/console/policies/apply", page(pages.apply), methods=["POST"]),
        Route("/console/access", page(pages.access), methods=["GET"]),
        Route("/console/users", page(pages.users), methods=["GET"]),
        Route("/console/users/deactivate", page(pages.deactivate), methods=["POST"]),
        Route("/console/audit", page(pages.audit), methods=["GET"]),
        Route("/console/audit/verify", page(pages.verify_now), methods=["POST"]),
        Route("/console/audit/export", page(pages.export), methods=["POST"]),
        Route("/console/exports/{token}", page(pages.download), methods=["GET"]),
        Mount(
            "/console/static",
            StaticFiles(directory=Path(__file__).parent / "static"),
            name="console-static",
        ),
    ]
