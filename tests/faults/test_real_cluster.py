"""Delivery guarantees on the real 3-node Kafka cluster (acks=all, idempotence): SIGKILL and
restart under load, controlled shutdown, a node down longer than the delivery timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from aioproducer import KafkaTimeoutError, Producer
from aioproducer.errors import PersistedStatus
from aioproducer.testing import KafkaCluster

from .oracle import History, check, check_hygiene
from .soak import run_soak

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


async def test_soak_short_sigkill_cycles(kafka_cluster: KafkaCluster) -> None:
    report = await run_soak(kafka_cluster, records=100_000, cycles=3, interval=2.0)
    print(report)
    assert report["cycles"] == 3
    assert (report["lost"], report["duplicated"], report["out_of_order"], report["unresolved"]) == (
        0,
        0,
        0,
        0,
    ), report
    assert report["acknowledged"] == 100_000, report


async def test_controlled_shutdown_of_the_leader_under_load(
    kafka_cluster: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(
        kafka_cluster, partitions=3, replication_factor=3, config={"min.insync.replicas": "2"}
    )
    h = History(topic)
    leader = kafka_cluster.leader(topic, 0)
    async with Producer(
        bootstrap_servers=kafka_cluster.bootstrap_servers, enable_idempotence=True, linger_ms=2
    ) as p:
        for i in range(6000):
            await h.send(p, key=b"%d" % (i % 100))
            if i == 1500:
                stopping = asyncio.create_task(asyncio.to_thread(kafka_cluster.node(leader).stop))
            if i % 500 == 0:
                await asyncio.sleep(0.02)
        await stopping
        await h.settle(60)
        assert len(h.ok()) == 6000
    await asyncio.to_thread(check, kafka_cluster.live_bootstrap_servers, h, mock=False)
    await check_hygiene(p)


async def test_node_down_longer_than_the_delivery_timeout(
    kafka_cluster: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    """RF 3 partitions keep flowing; the RF 1 partition on the dead node fails at the delivery
    timeout, honestly marked, and works again after the restart."""
    topic = new_topic(kafka_cluster, partitions=3, replication_factor=1)
    leaders = {p: kafka_cluster.leader(topic, p) for p in range(3)}
    victim = leaders[0]
    h = History(topic)
    async with Producer(
        bootstrap_servers=kafka_cluster.bootstrap_servers,
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=2000,
        delivery_timeout_ms=6000,
    ) as p:
        for part in range(3):
            await (await h.send(p, partition=part)).future
        await asyncio.to_thread(kafka_cluster.node(victim).kill)
        t0 = time.monotonic()
        doomed = [await h.send(p, partition=0) for _ in range(10)]
        for part in (1, 2):
            if leaders[part] != victim:
                assert (await (await h.send(p, partition=part)).future).partition == part
        for s in doomed:
            with pytest.raises(KafkaTimeoutError) as info:
                await s.future
            assert info.value.persisted_status in (
                PersistedStatus.NOT_PERSISTED,
                PersistedStatus.POSSIBLY_PERSISTED,
            )
        assert time.monotonic() - t0 < 6 * 1.1 + 2
        await asyncio.to_thread(kafka_cluster.restart, victim)
        md = await (await h.send(p, partition=0)).future
        assert md.partition == 0
    await asyncio.to_thread(check, kafka_cluster.bootstrap_servers, h, mock=False)
