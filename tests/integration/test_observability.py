"""Metrics exporters and tracing against real brokers: the Prometheus exposition text scraped
and parsed back, the OpenTelemetry SDK's in-memory metric reader, and the producer spans of
the tracing interceptor whose ``traceparent`` header is read back from the log by
confluent-kafka (Kafka and Tansu)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aioproducer import Producer
from aioproducer.metrics import value_of
from aioproducer.metrics.opentelemetry import ProducerInstruments
from aioproducer.metrics.prometheus import ProducerCollector
from aioproducer.metrics.tracing import TracingInterceptor
from aioproducer.testing import KafkaCluster, TansuBroker, read_topic

pytestmark = pytest.mark.asyncio
Broker = KafkaCluster | TansuBroker


@pytest.fixture(params=["kafka", "tansu"])
def broker(request: pytest.FixtureRequest) -> Broker:
    b: Broker = request.getfixturevalue(request.param)
    return b


async def test_prometheus_scrape_parses_back_to_the_producers_metrics(
    kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka, partitions=3)
    registry = CollectorRegistry()
    collector = ProducerCollector()
    registry.register(collector)
    async with Producer(bootstrap_servers=kafka.bootstrap_servers, client_id="prom") as p:
        collector.add(p)
        for i in range(300):
            await p.send(topic, b"v%d" % i)
        await p.flush()
        text = generate_latest(registry).decode()
        m = p.metrics()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    client = (("client_id", "prom"),)
    assert samples[("kafka_producer_record_send_total", client)] == 300
    assert samples[("kafka_producer_topic_record_send_total", (*client, ("topic", topic)))] == 300
    assert samples[("kafka_producer_buffer_total_bytes", client)] == 33554432
    assert samples[("kafka_producer_connection_count", client)] >= 1
    # Everything metrics() reports is in the scrape, with the same value (NaN stays NaN).
    nodes = [k for k in m if k.group == "producer-node-metrics"]
    assert nodes
    for k, v in m.items():
        if k.name.endswith("-rate") or k.name in ("metadata-age",):
            continue  # moves between the scrape and metrics()
        prefix = {
            "producer-metrics": "kafka_producer",
            "producer-topic-metrics": "kafka_producer_topic",
            "producer-node-metrics": "kafka_producer_node",
            "aioproducer-metrics": "aioproducer",
        }[k.group]
        name = f"{prefix}_{k.name.replace('-', '_')}"
        labels = tuple(sorted((t.replace("-", "_"), val) for t, val in k.tags.items()))
        got = samples[(name, labels)]
        assert got == v or (math.isnan(got) and math.isnan(v)), (name, got, v)
    # Counters are typed as such, gauges as gauges.
    types = {fam.name: fam.type for fam in text_string_to_metric_families(text)}
    assert types["kafka_producer_record_send"] == "counter"
    assert types["kafka_producer_request_latency_avg"] == "gauge"


async def test_opentelemetry_instruments_read_by_the_sdk(
    kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka, partitions=2)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        async with Producer(bootstrap_servers=kafka.bootstrap_servers, client_id="otel") as p:
            ProducerInstruments(p, meter_provider=provider)
            for i in range(120):
                await p.send(topic, b"v%d" % i, key=b"k%d" % i)
            await p.flush()
            data = reader.get_metrics_data()
            m = p.metrics()
    finally:
        provider.shutdown()
    points: dict[str, list[tuple[dict[str, object], float]]] = {}
    kinds: dict[str, str] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "aioproducer"
            for metric in sm.metrics:
                kinds[metric.name] = type(metric.data).__name__
                points[metric.name] = [
                    (dict(pt.attributes or {}), pt.value)
                    for pt in metric.data.data_points
                    if isinstance(pt, NumberDataPoint)
                ]
    assert points["kafka.producer.record_send_total"] == [({"client-id": "otel"}, 120)]
    assert kinds["kafka.producer.record_send_total"] == "Sum"
    assert kinds["kafka.producer.request_latency_max"] == "Gauge"
    [(attrs, value)] = points["kafka.producer.topic.byte_total"]
    assert attrs == {"client-id": "otel", "topic": topic}
    assert value == value_of(m, "byte-total", "producer-topic-metrics", topic=topic) > 0
    node_points = points["kafka.producer.node.request_total"]
    assert node_points and all(str(a["node-id"]).startswith("node-") for a, _ in node_points)
    assert points["kafka.producer.buffer_total_bytes"] == [({"client-id": "otel"}, 33554432)]


async def test_tracing_spans_and_traceparent_headers_read_back(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(broker, partitions=2)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    interceptor = TracingInterceptor(provider, client_id="traced")
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers, client_id="traced", interceptors=[interceptor]
    ) as p:
        with tracer.start_as_current_span("request") as parent:
            futs = [
                await p.send(topic, b"v%d" % i, key=b"k%d" % i, headers=[("app", b"x")])
                for i in range(10)
            ]
            mds = [await f for f in futs]
        await p.send_and_wait(topic, None, key=b"gone")  # a tombstone, outside the parent
    spans = [s for s in exporter.get_finished_spans() if s.name == f"send {topic}"]
    assert len(spans) == 11
    by_id = {s.context.span_id: s for s in spans}
    records = read_topic(broker.bootstrap_servers, topic)
    assert len(records) == 11
    trace_id = parent.get_span_context().trace_id
    for rec in records:
        headers = dict(rec.headers)
        tp = headers["traceparent"]
        assert tp is not None
        _version, tid, sid, _flags = tp.decode().split("-")
        span = by_id[int(sid, 16)]  # the header names the span that sent the record
        assert span.kind is SpanKind.PRODUCER
        attrs = dict(span.attributes or {})
        assert attrs["messaging.system"] == "kafka"
        assert attrs["messaging.operation.name"] == "send"
        assert attrs["messaging.destination.name"] == topic
        assert attrs["messaging.client.id"] == "traced"
        assert attrs["messaging.destination.partition.id"] == str(rec.partition)
        assert attrs["messaging.kafka.offset"] == rec.offset
        assert attrs["messaging.kafka.message.key"] == rec.key.decode()  # type: ignore[union-attr]
        if rec.value is None:
            assert attrs["messaging.kafka.message.tombstone"] is True
            assert span.parent is None and int(tid, 16) != trace_id
        else:
            assert headers["app"] == b"x"  # the record's own headers are kept
            assert int(tid, 16) == trace_id and span.parent is not None
            assert span.parent.span_id == parent.get_span_context().span_id
            assert attrs["messaging.kafka.message.tombstone"] is False
    assert sorted((md.partition, md.offset) for md in mds) == sorted(
        (r.partition, r.offset) for r in records if r.value is not None
    )
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached
