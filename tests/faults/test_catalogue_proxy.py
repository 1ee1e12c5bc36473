"""§6 scenarios that need a TCP chaos proxy between the producer and the brokers [M+P].

The proxies run in the test's event loop, so blocking helpers (admin, log reader) that reach
brokers through them run in a thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from aioproducer import KafkaTimeoutError, Producer
from aioproducer.errors import PersistedStatus
from aioproducer.testing import ChaosProxy, MockCluster
from aioproducer.testing._admin import cluster_metadata, partition_leader

from ..helpers import wait_until
from .oracle import History, check, check_hygiene, fetch_log, resolution_bound_s
from .test_catalogue_mock import FAST

pytestmark = [pytest.mark.asyncio, pytest.mark.mock_cluster]


@pytest_asyncio.fixture
async def proxies(mock_cluster: MockCluster) -> AsyncIterator[dict[int, ChaosProxy]]:
    """One proxy per mock broker; the mock advertises the proxies in its metadata."""
    out: dict[int, ChaosProxy] = {}
    for b in cluster_metadata(mock_cluster.bootstrap_servers).brokers.values():
        proxy = await ChaosProxy(b.host, b.port).start()
        mock_cluster.broker_set_host_port(b.id, "127.0.0.1", proxy.port)
        out[b.id] = proxy
    yield out
    for proxy in out.values():
        await proxy.close()


def producer(mock: MockCluster, **overrides: Any) -> Producer:
    return Producer(bootstrap_servers=mock.bootstrap_servers, **{**FAST, **overrides})


async def test_s21_one_broker_partitioned_away(
    mock_cluster: MockCluster, proxies: dict[int, ChaosProxy], new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=3, replication_factor=1)
    leaders = {
        p: await asyncio.to_thread(partition_leader, mock_cluster.bootstrap_servers, topic, p)
        for p in range(3)
    }
    h = History(topic)
    async with producer(mock_cluster) as p:
        for part in range(3):
            await (await h.send(p, partition=part)).future
        victim = leaders[0]
        proxies[victim].drop()
        t0 = time.monotonic()
        doomed = [await h.send(p, partition=0) for _ in range(20)]
        for part in (1, 2):
            if leaders[part] != victim:
                md = await (await h.send(p, partition=part)).future
                assert md.partition == part
        # No global stall: the other leaders' records are acknowledged while p0's, sent
        # before them, still wait on the partitioned broker.
        early = [s.pid for s in doomed if s.future.done()]
        assert not early, f"p0 records {early} resolved before the other partitions' acks"
        for s in doomed:
            with pytest.raises(KafkaTimeoutError) as info:
                await s.future
            assert info.value.persisted_status in (
                PersistedStatus.NOT_PERSISTED,
                PersistedStatus.POSSIBLY_PERSISTED,
            )
        # They fail at the delivery timeout: not before it, and within O4's bound.
        took = time.monotonic() - t0
        bound = resolution_bound_s(FAST["delivery_timeout_ms"], FAST["request_timeout_ms"])
        assert 4.5 < took < bound, f"p0 records failed after {took:.2f} s"
        proxies[victim].heal()
        md = await (await h.send(p, partition=0)).future
        assert md.partition == 0
    await asyncio.to_thread(check, mock_cluster.bootstrap_servers, h, mock=True)
    await check_hygiene(p)


async def test_s23_truncated_response_then_close(
    mock_cluster: MockCluster, proxies: dict[int, ChaosProxy], new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=1)
    leader = await asyncio.to_thread(partition_leader, mock_cluster.bootstrap_servers, topic, 0)
    h = History(topic)
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: escaped.append(ctx))
    async with producer(mock_cluster, delivery_timeout_ms=15_000) as p:
        await (await h.send(p)).future
        proxies[leader].truncate_next_response(10)
        s = await h.send(p)
        md = await s.future  # retried after a reconnect, with the same sequence
        assert md.partition == 0
    log = (await asyncio.to_thread(fetch_log, mock_cluster.bootstrap_servers, topic))[0]
    assert [b.base_sequence for b in log][-1] == 1  # the retry kept its sequence
    await asyncio.to_thread(check, mock_cluster.bootstrap_servers, h, mock=True)
    assert not escaped, escaped
    loop.set_exception_handler(None)


async def test_s15p_reset_after_the_request_is_written(
    mock_cluster: MockCluster, proxies: dict[int, ChaosProxy], new_topic: Callable[..., str]
) -> None:
    """The request reaches the broker, the connection dies before the answer: the retry is
    the same batch (same sequence), and it is one logical write after collapse (O3)."""
    topic = new_topic(mock_cluster, partitions=1, replication_factor=1)
    leader = await asyncio.to_thread(partition_leader, mock_cluster.bootstrap_servers, topic, 0)
    h = History(topic)
    async with producer(mock_cluster, delivery_timeout_ms=15_000) as p:
        await (await h.send(p)).future
        proxies[leader].reset_after_request()
        await (await h.send(p)).future
    await asyncio.to_thread(check, mock_cluster.bootstrap_servers, h, mock=True)


async def test_s17_black_holed_leader_is_timed_out(
    mock_cluster: MockCluster, proxies: dict[int, ChaosProxy], new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=1)
    leader = await asyncio.to_thread(partition_leader, mock_cluster.bootstrap_servers, topic, 0)
    h = History(topic)
    async with producer(mock_cluster, delivery_timeout_ms=15_000) as p:
        await (await h.send(p)).future
        proxy = proxies[leader]
        connections = proxy.connections_accepted
        proxy.blackhole()
        s = await h.send(p)
        # The request times out (request_timeout_ms=1500), not a hang: the producer drops the
        # connection and dials again. (A hang would pass unnoticed once healed: the black
        # hole holds the request and delivers it then.)
        await wait_until(
            lambda: proxy.connections_accepted > connections,
            "the producer to time out the black-holed request and reconnect",
            state=p.metrics,
        )
        assert not s.future.done()  # retried, not failed: the delivery timeout is 15 s
        proxies[leader].heal()
        md = await s.future
        assert md.partition == 0
    await asyncio.to_thread(check, mock_cluster.bootstrap_servers, h, mock=True)
