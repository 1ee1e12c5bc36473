"""The KIP-714 requests (``_io/telemetry.py``) with a scripted broker connection: what is sent,
what each answer does, and that no failure of telemetry reaches the producer (the main tests
are against real Kafka: tests/integration/test_telemetry_kafka.py)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from aioproducer import ProducerConfig
from aioproducer._core.metrics import MetricName
from aioproducer._core.telemetry import OFF, State
from aioproducer._io.telemetry import TelemetrySender
from aioproducer._protocol.messages import (
    GetTelemetrySubscriptionsRequest,
    GetTelemetrySubscriptionsResponse,
    PushTelemetryRequest,
    PushTelemetryResponse,
)
from aioproducer._records.codecs import decompress
from tests.helpers import wait_until

pytestmark = pytest.mark.asyncio
ID = uuid.uuid4()


class Conn:
    """A broker connection that answers from a script (an answer, or an exception)."""

    def __init__(self, answers: list[Any], apis: bool = True) -> None:
        self.node_id = 1
        self.closed = False
        self.in_flight = 0
        self.versions = {71: (0, 0), 72: (0, 0), 18: (0, 4)} if apis else {18: (0, 4)}
        self.answers = answers
        self.sent: list[Any] = []

    def version_for(self, key: int) -> int:
        return 0

    async def request(self, req: Any, version: int, response: type[Any]) -> Any:
        self.sent.append(req)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, response)
        return answer


class Pool:
    def __init__(self, conn: Conn) -> None:
        self.connections = {1: conn}


def subscription(**kw: Any) -> GetTelemetrySubscriptionsResponse:
    args: dict[str, Any] = dict(
        client_instance_id=ID,
        subscription_id=5,
        accepted_compression_types=[1],
        push_interval_ms=100,
        telemetry_max_bytes=1 << 20,
        delta_temporality=False,
        requested_metrics=["org.apache.kafka.producer.record"],
    )
    args.update(kw)
    return GetTelemetrySubscriptionsResponse(**args)


def metrics() -> dict[MetricName, float]:
    return {MetricName("producer-metrics", "record-send-total", {"client-id": "c"}): 12.0}


def sender(conn: Conn, collect: Any = metrics) -> TelemetrySender:
    loop = asyncio.get_running_loop()
    return TelemetrySender(
        ProducerConfig(transactional_id="tx"),
        Pool(conn),  # type: ignore[arg-type]
        lambda: int(loop.time() * 1000),
        collect,
    )


async def test_subscribe_push_gzip_and_a_terminating_push_at_close() -> None:
    conn = Conn([subscription(), PushTelemetryResponse(), PushTelemetryResponse()])
    t = sender(conn)
    t.start()
    await wait_until(lambda: len(conn.sent) >= 2, "a push", timeout=5)
    await t.close_push()
    get, push, last = conn.sent
    assert isinstance(get, GetTelemetrySubscriptionsRequest) and get.client_instance_id.int == 0
    assert isinstance(push, PushTelemetryRequest) and isinstance(last, PushTelemetryRequest)
    assert (push.client_instance_id, push.subscription_id, push.terminating) == (ID, 5, False)
    assert last.terminating and t.state.state is State.TERMINATED
    assert push.compression_type == 1  # gzip, the broker's choice
    md = metrics_pb2.MetricsData()
    md.ParseFromString(decompress(1, push.metrics))
    rm = md.resource_metrics[0]
    assert rm.resource.attributes[0].key == "transactional_id"
    (m,) = rm.scope_metrics[0].metrics
    assert m.name == "org.apache.kafka.producer.record.send.total"
    assert m.sum.data_points[0].as_double == 12.0


async def test_no_failure_reaches_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict[MetricName, float]:
        raise RuntimeError("metrics() broke")

    conn = Conn([subscription()])
    t = sender(conn, broken)
    with caplog.at_level(logging.DEBUG, "aioproducer.telemetry"):
        t.start()
        await wait_until(lambda: t.state.last_ms and t.state.interval_ms > 60_000, "a failure")
    # The payload failed before a push was sent: retried after Java's 5 minutes.
    assert len(conn.sent) == 1 and t.state.enabled and t.state.state is State.SUBSCRIPTION_NEEDED
    assert t.state.wait_ms(t.now_ms()) > 60_000
    assert all(r.levelno == logging.DEBUG for r in caplog.records)
    assert "metrics() broke" in caplog.text
    t.close()


async def test_a_refusal_turns_telemetry_off_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    conn = Conn([subscription(), PushTelemetryResponse(error_code=87)])  # INVALID_RECORD
    t = sender(conn)
    with caplog.at_level(logging.DEBUG, "aioproducer.telemetry"):
        t.start()
        await wait_until(lambda: not t.state.enabled and t.task is None, "off", timeout=5)
    assert [r.levelno for r in caplog.records].count(logging.WARNING) == 1
    assert t.state.wait_ms(t.now_ms()) == OFF
    await t.close_push()
    assert len(conn.sent) == 2  # no terminating push once off


async def test_a_broker_without_the_apis_is_never_asked() -> None:
    conn = Conn([], apis=False)
    t = sender(conn)
    t.start()
    await wait_until(lambda: not t.state.enabled, "off", timeout=5)
    assert conn.sent == []
    await t.close_push()
    assert conn.sent == []
