"""The OpenTelemetry API, as the exporter (``opentelemetry.py``) and the tracing interceptor
(``tracing.py``) use it: imported here, so that both name the same install hint when it is
missing."""

from __future__ import annotations

from ._export import missing_extra

try:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - the message is the point
    raise missing_extra(
        "aioproducer.metrics.opentelemetry, aioproducer.metrics.tracing",
        "opentelemetry-api",
        "otel",
    ) from exc

__all__ = (
    "CallbackOptions",
    "MeterProvider",
    "Observation",
    "SpanKind",
    "Status",
    "StatusCode",
    "TextMapPropagator",
    "TraceContextTextMapPropagator",
    "metrics",
    "trace",
)
