"""The tracing interceptor and the ``on_send_callback`` hook it stands on, with the
OpenTelemetry SDK's in-memory span exporter; the producer runs on the simulated cluster."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from aioproducer import (
    KafkaTimeoutError,
    Producer,
    ProducerInterceptor,
    ProducerRecord,
    RecordMetadata,
)
from aioproducer._interceptors import Interceptors
from aioproducer.metrics.tracing import TracingInterceptor
from tests.sim.scenario import run
from tests.sim.world import World


def tracing() -> tuple[TracingInterceptor, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return TracingInterceptor(provider, client_id="c"), exporter


def test_a_failed_record_ends_its_span_in_error() -> None:
    ic, exporter = tracing()
    rec = ic.on_send(ProducerRecord("orders", b"v", key=b"\xff\xfe", partition=3))
    cb = ic.on_send_callback(rec)
    assert cb is not None and not exporter.get_finished_spans()
    cb(None, KafkaTimeoutError("expired"))
    [span] = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.name == "send orders" and span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == "KafkaTimeoutError"
    assert attrs["messaging.destination.partition.id"] == "3"
    assert "messaging.kafka.message.key" not in attrs  # not text: left out
    assert "messaging.kafka.offset" not in attrs
    assert [e.name for e in span.events] == ["exception"]


def test_headers_keep_the_records_own_and_replace_a_stale_traceparent() -> None:
    ic, _ = tracing()
    rec = ic.on_send(
        ProducerRecord("t", b"v", headers=[("traceparent", b"00-old-old-01"), ("a", None)])
    )
    assert rec.headers is not None
    names = [k for k, _ in rec.headers]
    assert names == ["a", "traceparent"]
    assert dict(rec.headers)["traceparent"] != b"00-old-old-01"


def test_a_span_whose_record_was_refused_is_ended_by_the_next_send() -> None:
    ic, exporter = tracing()
    ic.on_send(ProducerRecord("t", b"1"))  # send() raised before on_send_callback
    ic.on_send(ProducerRecord("t", b"2"))
    assert len(exporter.get_finished_spans()) == 1
    ic.close()
    assert len(exporter.get_finished_spans()) == 2


def test_chained_callbacks_run_before_the_records_own_and_survive_a_failing_hook(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order: list[str] = []

    class Hooked(ProducerInterceptor):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_send_callback(self, record: ProducerRecord) -> Any:
            if self.name == "broken":
                raise RuntimeError("hook bug")
            return lambda md, exc: order.append(self.name)

    ics = Interceptors([Hooked("first"), Hooked("broken"), Hooked("second")])
    assert ics.chain(ProducerRecord("t", b""), 42) == 42  # not callable: send() refuses it
    with caplog.at_level(logging.ERROR, logger="aioproducer"):
        cb = ics.chain(ProducerRecord("t", b""), lambda md, exc: order.append("user"))
    assert "on_send_callback failed" in caplog.text
    cb(None, None)
    assert order == ["first", "second", "user"]
    assert Interceptors([ProducerInterceptor()]).on_send_callback == []


def test_the_producer_ends_each_records_span_with_its_offset_before_its_callback() -> None:
    ic, exporter = tracing()
    seen: list[tuple[int, int]] = []

    def callback(md: RecordMetadata | None, exc: BaseException | None) -> None:
        assert md is not None
        ended = {
            dict(s.attributes or {})["messaging.kafka.offset"]
            for s in exporter.get_finished_spans()
        }
        assert md.offset in ended  # the span ended first
        seen.append((md.partition, md.offset))

    async def body(p: Producer, w: World) -> None:
        for i in range(6):
            await p.send("t0", b"%d" % i, partition=i % 2, callback=callback)
        await p.flush()

    run(body, interceptors=[ic])
    spans = exporter.get_finished_spans()
    assert len(spans) == 6 and len(seen) == 6
    got = sorted(
        (
            int(str(dict(s.attributes or {})["messaging.destination.partition.id"])),
            dict(s.attributes or {})["messaging.kafka.offset"],
        )
        for s in spans
    )
    assert got == sorted(seen) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
