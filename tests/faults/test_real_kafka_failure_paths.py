"""Failure-paths issue item 1, as it was seen on real Kafka: a one-node cluster behind the
chaos proxy (the broker advertises the proxy's port, so every connection goes through it)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from aioproducer import KafkaError, Producer
from aioproducer.metrics import value_of
from aioproducer.testing import KafkaCluster
from aioproducer.testing.proxy import ChaosProxy

from ..helpers import wait_until
from .oracle import History, check, check_hygiene

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def proxied_kafka() -> AsyncIterator[tuple[KafkaCluster, ChaosProxy]]:
    port = _free_port()
    proxy = await ChaosProxy("127.0.0.1", 0, listen_port=port).start()
    cluster = KafkaCluster(
        1, extra_config={"advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}"}
    )
    try:
        starting = asyncio.ensure_future(asyncio.to_thread(cluster.start))
        # Its port is chosen in start(), in a thread: poll for it.
        while not cluster.nodes and not starting.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if cluster.nodes:
            proxy.target = ("127.0.0.1", cluster.nodes[0].port)
        await starting
        yield cluster, proxy
    finally:
        await proxy.close()
        await asyncio.to_thread(cluster.close)


async def test_a_partition_makes_progress_after_a_lost_request_outlives_the_delivery_timeout(
    proxied_kafka: tuple[KafkaCluster, ChaosProxy],
) -> None:
    """A Produce request is swallowed, the broker stays unreachable past the delivery
    timeout, then comes back. Before the fix every later record of the partition was retried
    on OUT_OF_ORDER_SEQUENCE_NUMBER until its own delivery timeout and failed (the retried
    batch had expired in the queue without an epoch bump); with the fix they are delivered
    at once."""
    cluster, proxy = proxied_kafka
    topic = "wedge"
    await asyncio.to_thread(cluster.create_topic, topic, 1, 1)
    h = History(topic)
    async with Producer(
        bootstrap_servers=f"127.0.0.1:{proxy.port}",
        linger_ms=0,
        request_timeout_ms=2000,
        delivery_timeout_ms=6000,
        socket_connection_setup_timeout_ms=1000,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=500,
    ) as p:
        first = await h.send(p)
        await first.future
        proxy.blackhole()
        lost = await h.send(p)
        await wait_until(
            lambda: value_of(p.metrics(), "requests-in-flight") >= 1,
            "the Produce request to be written into the black hole",
            state=p.metrics,
        )
        proxy.drop()  # the held request is discarded: swallowed; the broker stays away
        with pytest.raises(KafkaError):
            await asyncio.wait_for(lost.future, 15)
        proxy.heal()
        later = [await h.send(p) for _ in range(5)]
        for s in later:
            md = await asyncio.wait_for(s.future, 10)
            assert md.offset >= 1
    await asyncio.to_thread(check, cluster.bootstrap_servers, h, mock=False)
    await check_hygiene(p)
