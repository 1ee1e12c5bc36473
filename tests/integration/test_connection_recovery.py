"""Connections against real brokers: an idle connection closes and the next send reconnects
(``connections_max_idle_ms``), and a producer whose cluster disappears finds the new one
behind its bootstrap address (``metadata_recovery_strategy``, KIP-899). What was written is
read back by confluent-kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from aioproducer import KafkaTimeoutError, Producer
from aioproducer.metrics import value_of
from aioproducer.testing import KafkaCluster, read_topic
from aioproducer.testing.mock import MockCluster
from aioproducer.testing.proxy import ChaosProxy

from ..helpers import wait_until

pytestmark = pytest.mark.asyncio

#: Fast reconnects: the outage is noticed and the recovery runs within a second or two.
FAST = dict(reconnect_backoff_ms=50, reconnect_backoff_max_ms=200, request_timeout_ms=2000)


def metric(p: Producer, name: str) -> float:
    return value_of(p.metrics(), name, "producer-metrics")


async def test_an_idle_connection_closes_and_the_next_send_reconnects(
    kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka)
    async with Producer(
        bootstrap_servers=kafka.bootstrap_servers, connections_max_idle_ms=300
    ) as p:
        sent_at = time.monotonic()
        first = await p.send_and_wait(topic, b"before the idle close")
        answered_at = time.monotonic()
        opened = metric(p, "connection-creation-total")
        await wait_until(
            lambda: metric(p, "connection-count") == 0,
            "every connection closed as idle",
            timeout=10,
            interval=0.005,
        )
        closed_at = time.monotonic()
        assert metric(p, "connection-close-total") >= 1
        second = await p.send_and_wait(topic, b"after it")
        assert metric(p, "connection-creation-total") > opened  # it reconnected
    # The last traffic came after the send started and before its answer was awaited.
    assert closed_at - sent_at >= 0.3
    assert closed_at - answered_at < 0.3 + 4.0  # a loaded machine's scheduling slack
    assert (first.offset, second.offset) == (0, 1)
    records = await asyncio.to_thread(read_topic, kafka.bootstrap_servers, topic, expected=2)
    assert [r.value for r in records] == [b"before the idle close", b"after it"]


async def _switch_clusters(
    strategy: str, kafka: KafkaCluster, topic: str
) -> tuple[BaseException | None, int, int]:
    """A producer bootstrapped through a proxy to cluster A (librdkafka's mock) learns A's
    broker; A goes away and the proxy now leads to B (the Kafka node). Returns what sending
    to ``topic`` (on B) raised, and the proxy's accepted connections before and after."""
    with MockCluster(1) as a:
        host, port = a.bootstrap_servers.split(",")[0].rsplit(":", 1)
        async with ChaosProxy(host, int(port)) as proxy:
            p = Producer(
                bootstrap_servers=f"127.0.0.1:{proxy.port}",
                metadata_recovery_strategy=strategy,  # type: ignore[arg-type]
                max_block_ms=5000,
                **FAST,  # type: ignore[arg-type]
            )
            async with p:
                await p.send_and_wait("warm-up", b"to cluster A")
                assert metric(p, "connection-count") >= 1
                b_host, b_port = kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)
                proxy.target = (b_host, int(b_port))
                before = proxy.connections_accepted
                a.close()  # cluster A is gone: every address the producer learned refuses
                error: BaseException | None = None
                try:
                    await p.send_and_wait(topic, b"to cluster B")
                except KafkaTimeoutError as exc:
                    error = exc
                return error, before, proxy.connections_accepted


async def test_rebootstrap_finds_the_new_cluster_behind_the_bootstrap_address(
    kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka)
    started = time.monotonic()
    error, before, after = await _switch_clusters("rebootstrap", kafka, topic)
    assert error is None
    assert after > before  # it went back to the bootstrap address
    assert time.monotonic() - started < 60
    records = await asyncio.to_thread(read_topic, kafka.bootstrap_servers, topic, expected=1)
    assert [r.value for r in records] == [b"to cluster B"]


async def test_strategy_none_keeps_to_the_brokers_it_learned(
    kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka)
    error, before, after = await _switch_clusters("none", kafka, topic)
    assert isinstance(error, KafkaTimeoutError)
    assert after == before  # never back to the bootstrap address
    records = await asyncio.to_thread(read_topic, kafka.bootstrap_servers, topic, timeout=10)
    assert records == []
