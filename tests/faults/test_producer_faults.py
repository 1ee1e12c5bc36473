"""The producer under faults: librdkafka's mock cluster (injected errors, brokers down) and a
SIGKILLed leader on the real 3-node Kafka cluster."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import pytest

from aioproducer import KafkaTimeoutError, Producer, ProducerClosedError
from aioproducer.errors import InvalidRecordError
from aioproducer.metrics import value_of
from aioproducer.testing import KafkaCluster, MockCluster, read_topic

pytestmark = pytest.mark.asyncio
PRODUCE = 0


async def test_retriable_errors_are_retried_until_success(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=1)
    async with Producer(
        bootstrap_servers=mock_cluster.bootstrap_servers,
        retry_backoff_ms=20,
        retry_backoff_max_ms=50,
    ) as p:
        await p.send_and_wait(topic, b"warm-up")
        mock_cluster.start_request_tracking()
        mock_cluster.push_request_errors(PRODUCE, [6, 6, 7])  # NOT_LEADER x2, REQUEST_TIMED_OUT
        md = await p.send_and_wait(topic, b"v")
        assert md.offset == 1
        produces = [r for r in mock_cluster.requests() if r[1] == PRODUCE]
        assert len(produces) == 4
        gaps_ms = [(b[2] - a[2]) / 1000 for a, b in itertools.pairwise(produces)]
        assert all(g >= 15 for g in gaps_ms), gaps_ms  # backoff between attempts


async def test_non_retriable_error_fails_the_records(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=1)
    async with Producer(bootstrap_servers=mock_cluster.bootstrap_servers) as p:
        await p.send_and_wait(topic, b"warm-up")
        mock_cluster.push_request_errors(PRODUCE, [87])  # INVALID_RECORD
        fut = await p.send(topic, b"bad")
        with pytest.raises(InvalidRecordError, match=f"{topic}-0"):
            await fut
        assert (await p.send_and_wait(topic, b"good")).offset == 1


async def test_full_buffer_times_out_after_max_block_ms(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=1)
    async with Producer(
        bootstrap_servers=mock_cluster.bootstrap_servers,
        buffer_memory=40_000,
        max_block_ms=800,
        delivery_timeout_ms=31_000,
    ) as p:
        await p.send_and_wait(topic, b"warm-up")
        mock_cluster.broker_set_down(1)
        mock_cluster.broker_set_down(2)
        mock_cluster.broker_set_down(3)
        futs = [await p.send(topic, b"x" * 15_000) for _ in range(2)]  # fills the pool
        t0 = time.monotonic()
        with pytest.raises(KafkaTimeoutError, match="buffer_memory=40000"):
            await p.send(topic, b"x" * 15_000)
        assert 0.7 < time.monotonic() - t0 < 3
        for b in (1, 2, 3):
            mock_cluster.broker_set_up(b)
        for f in futs:  # once the broker is back, the buffered records are delivered
            await f


async def test_close_timeout_fails_what_cannot_be_delivered(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=2, replication_factor=1)
    p = Producer(bootstrap_servers=mock_cluster.bootstrap_servers, delivery_timeout_ms=60_000)
    await p.start()
    await p.send_and_wait(topic, b"warm-up", partition=0)
    for b in (1, 2, 3):
        mock_cluster.broker_set_down(b)
    futs = [await p.send(topic, b"%d" % i) for i in range(50)]
    t0 = time.monotonic()
    await p.close(timeout=1.0)
    assert time.monotonic() - t0 < 4
    assert all(f.done() for f in futs)
    for f in futs:
        assert isinstance(f.exception(), ProducerClosedError)
    assert value_of(p.metrics(), "buffer-available-bytes") == p.config.buffer_memory
    assert value_of(p.metrics(), "connection-count") == 0


async def test_delivery_timeout_bounds_a_record_whose_leader_is_gone(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=1)
    async with Producer(
        bootstrap_servers=mock_cluster.bootstrap_servers,
        linger_ms=0,
        request_timeout_ms=1000,
        delivery_timeout_ms=2000,
    ) as p:
        await p.send_and_wait(topic, b"warm-up")
        for b in (1, 2, 3):
            mock_cluster.broker_set_down(b)
        t0 = time.monotonic()
        fut = await p.send(topic, b"v")
        with pytest.raises(KafkaTimeoutError, match="delivery_timeout_ms=2000"):
            await fut
        assert 1.8 < time.monotonic() - t0 < 4
        for b in (1, 2, 3):
            mock_cluster.broker_set_up(b)


@pytest.mark.kafka
async def test_sigkill_of_the_leader_while_producing_loses_no_acknowledged_record(
    kafka_cluster: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(
        kafka_cluster, partitions=3, replication_factor=3, config={"min.insync.replicas": "2"}
    )
    acked: list[int] = []
    failed: list[int] = []
    async with Producer(
        bootstrap_servers=kafka_cluster.bootstrap_servers,
        linger_ms=2,
        request_timeout_ms=5000,
        delivery_timeout_ms=40_000,
    ) as p:
        futs = []
        victim = kafka_cluster.leader(topic, 0)
        for i in range(6000):
            futs.append((i, await p.send(topic, b"%d" % i, key=b"%d" % i)))
            if i == 2000:
                await asyncio.to_thread(kafka_cluster.node(victim).kill)
            if i % 500 == 0:
                await asyncio.sleep(0.05)  # spread the load across the failover
        for i, f in futs:
            try:
                await f
                acked.append(i)
            except Exception:
                failed.append(i)
    assert len(acked) == 6000, f"{len(failed)} records failed"
    read = read_topic(kafka_cluster.live_bootstrap_servers, topic, timeout=60)
    values = {int(r.value) for r in read if r.value is not None}
    assert set(acked) <= values  # every acknowledged record is in the log
