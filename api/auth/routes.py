"""Placeholder until the identity work lands: no auth routes yet."""

from starlette.routing import Route

routes: list[Route] = []
