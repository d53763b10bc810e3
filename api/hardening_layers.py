"""The hardening an app is built with: Starlette middleware and schema extensions, from Settings.

`create_app` calls the three functions below; everything they return is configured by
`settings.hardening` (see `api.hardening.settings`) and the page-size limits.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from graphql import ASTValidationRule
from starlette.middleware import Middleware
from strawberry.extensions import SchemaExtension

from api.hardening.body_size import BodySizeLimitMiddleware
from api.hardening.body_timeout import BodyTimeoutMiddleware
from api.hardening.cors import cors_middleware
from api.hardening.cost_budget import BudgetedQueryLimitsExtension, CostBudget
from api.hardening.failures import FailureMiddleware
from api.hardening.headers import SecurityHeadersMiddleware
from api.hardening.introspection import HideSuggestionsRule, IntrospectionGate, ScrubSuggestions
from api.hardening.limits import QueryLimits, QueryLimitsExtension
from api.hardening.rate_limit import InProcessRateLimiter, RateLimiter
from api.hardening.shared_limits import SharedRateLimiter, SharedStore
from api.hardening.text import NulTextGuard
from api.settings import Settings


def http_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: every failure answered as JSON with a request id, headers on every
    answer, CORS preflights never reach the body limit."""
    layers = [
        Middleware(FailureMiddleware, settings=settings.hardening),
        Middleware(SecurityHeadersMiddleware, settings=settings.hardening),
    ]
    cors = cors_middleware(settings.hardening)
    if cors is not None:
        layers.append(cors)
    layers.append(Middleware(BodySizeLimitMiddleware, settings=settings.hardening))
    layers.append(Middleware(BodyTimeoutMiddleware, seconds=settings.server.body_timeout_seconds))
    return layers


def cost_budget(settings: Settings, shared: SharedStore | None = None) -> CostBudget | None:
    """The query cost budget, kept in `shared` (every process's) or in this process."""
    if settings.hardening.cost_budget <= 0:
        return None
    return CostBudget(settings.hardening, shared or SharedStore(None))


def schema_extensions(
    settings: Settings, budget: CostBudget | None = None
) -> list[Callable[[], SchemaExtension]]:
    """Factories (one extension per request), to be listed before the parser cache."""
    hardening = settings.hardening
    limits = QueryLimits.from_settings(
        hardening,
        default_page_size=settings.limits.default_page_size,
        max_page_size=settings.limits.max_page_size,
    )
    query_limits: Callable[[], SchemaExtension] = partial(QueryLimitsExtension, limits)
    if budget is not None:
        query_limits = partial(BudgetedQueryLimitsExtension, limits, budget)
    factories: list[Callable[[], SchemaExtension]] = [
        query_limits,
        lambda: IntrospectionGate(enabled=hardening.introspection),
        NulTextGuard,
    ]
    if not hardening.field_suggestions:
        factories.append(ScrubSuggestions)
    return factories


def validation_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    return [] if settings.hardening.field_suggestions else [HideSuggestionsRule]


def rate_limiter(settings: Settings, shared: SharedStore | None = None) -> RateLimiter:
    """In this process, or in the store every process shares (`DOSSIER_REDIS_URL`)."""
    if shared is not None:
        return SharedRateLimiter(shared, settings.hardening)
    return InProcessRateLimiter(settings.hardening)
