"""Tracing: a producer span per record, its context in the record's headers
(``pip install aioproducer[otel]``).

::

    from aioproducer import Producer
    from aioproducer.metrics.tracing import TracingInterceptor

    producer = Producer(..., interceptors=[TracingInterceptor()])

Each ``send()`` starts a span of kind PRODUCER named ``send <topic>``, child of the span
current in the caller, with OpenTelemetry's messaging attributes for Kafka
(``messaging.system=kafka``, ``messaging.operation.name=send``, ``messaging.operation.type``,
``messaging.destination.name``, ``messaging.client.id``, ``messaging.kafka.message.key`` for a
text key, ``messaging.kafka.message.tombstone``), and writes its context into the record's
headers (W3C ``traceparent``, by default) so a consumer continues the trace. The span ends
when the record is acknowledged (``messaging.destination.partition.id``,
``messaging.kafka.offset``) or fails (status ERROR, ``error.type``, the exception recorded).

A ``send()`` that raises after the interceptors ran (a serializer's error, say) leaves its span
unended: it is never exported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._interceptors import ProducerInterceptor
from .._version import __version__
from ._otel import (
    SpanKind,
    Status,
    StatusCode,
    TextMapPropagator,
    TraceContextTextMapPropagator,
    trace,
)

if TYPE_CHECKING:
    from .._core.producer_batch import Callback, RecordMetadata
    from ..producer import ProducerRecord


class TracingInterceptor(ProducerInterceptor):
    """Starts a span per record and injects its context into the record's headers.

    ``tracer_provider``: the global one by default. ``propagator``: W3C Trace Context by
    default (pass ``opentelemetry.propagate.get_global_textmap()`` for the configured one).
    ``client_id``: set as ``messaging.client.id`` (the producer's ``client_id``).
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        propagator: TextMapPropagator | None = None,
        client_id: str | None = None,
    ) -> None:
        self._tracer = trace.get_tracer("aioproducer", __version__, tracer_provider)
        self._propagator = propagator or TraceContextTextMapPropagator()
        self._client_id = client_id
        #: The span on_send started, taken by on_send_callback in the same send() call
        #: (nothing awaits between the two).
        self._pending: trace.Span | None = None

    def on_send(self, record: ProducerRecord) -> ProducerRecord:
        from dataclasses import replace

        if self._pending is not None:  # send() refused the record before its callback
            self._end(self._pending, None, None)
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
            "messaging.destination.name": record.topic,
            "messaging.kafka.message.tombstone": record.value is None,
        }
        if self._client_id is not None:
            attributes["messaging.client.id"] = self._client_id
        key = record.key
        if isinstance(key, bytes):
            try:
                key = key.decode()
            except UnicodeDecodeError:
                key = None
        if isinstance(key, str):
            attributes["messaging.kafka.message.key"] = key
        if record.partition is not None:
            attributes["messaging.destination.partition.id"] = str(record.partition)
        span = self._tracer.start_span(
            f"send {record.topic}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        self._pending = span
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        headers = [(k, v) for k, v in (record.headers or ()) if k not in carrier]
        headers.extend((k, v.encode()) for k, v in carrier.items())
        return replace(record, headers=headers)

    def on_send_callback(self, record: ProducerRecord) -> Callback | None:
        span, self._pending = self._pending, None
        if span is None:
            return None
        return lambda md, exc: self._end(span, md, exc)

    @staticmethod
    def _end(span: trace.Span, md: RecordMetadata | None, exc: BaseException | None) -> None:
        if md is not None:
            span.set_attribute("messaging.destination.partition.id", str(md.partition))
            if md.offset >= 0:
                span.set_attribute("messaging.kafka.offset", md.offset)
        if exc is not None:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
        span.end()

    def close(self) -> None:
        if self._pending is not None:
            self._end(self._pending, None, None)
            self._pending = None


__all__ = ("TracingInterceptor",)
