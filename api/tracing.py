"""OpenTelemetry traces, only when configured: `OTEL_EXPORTER_OTLP_ENDPOINT` set.

Then every HTTP request is a span (the ASGI instrumentation), exported over OTLP/HTTP in
batches; the exporter reads the standard `OTEL_*` variables (endpoint, headers, service name
via `OTEL_SERVICE_NAME`). The packages are the optional extra `otel`
(`pip install "dossier[otel]"`): without the variable nothing is imported, and with it but
without the extra, start-up fails naming both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.middleware import Middleware

from api.secrets import ConfigurationError

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


def tracing_middleware(environ: Mapping[str, str], *, exporter: Any = None) -> Middleware | None:
    """The ASGI tracing middleware, or None when tracing is not configured. `exporter`: a span
    exporter to use instead of OTLP (tests pass an in-memory one; spans then go out at once)."""
    if not environ.get(ENDPOINT) and exporter is None:
        return None
    try:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise ConfigurationError(
            f'{ENDPOINT} is set but OpenTelemetry is not installed: pip install "dossier[otel]"'
        ) from exc
    service = environ.get("OTEL_SERVICE_NAME") or "dossier"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    # the provider is passed, not installed globally: a second app in one process (tests)
    # gets its own, and nothing else in the process starts tracing behind our back
    return Middleware(
        OpenTelemetryMiddleware, tracer_provider=provider, excluded_urls="healthz,readyz,metrics"
    )
