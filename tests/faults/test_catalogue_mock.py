"""RELIABILITY.md §6 scenarios on librdkafka's mock cluster. Test names carry the scenario
number; each checks the oracles it names (``oracle.check``: O1-O5, ``check_hygiene``: O6)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from aioproducer import (
    BadRecordError,
    KafkaTimeoutError,
    Producer,
    ProducerClosedError,
    RecordMetadata,
    RecordTooLargeError,
    SerializationError,
)
from aioproducer.errors import OutOfOrderSequenceNumberError, PersistedStatus
from aioproducer.metrics import value_of
from aioproducer.testing import MockCluster
from aioproducer.testing._admin import partition_leader

from ..helpers import wait_until
from .oracle import History, check, check_hygiene, collapse, fetch_log, resolution_bound_s

pytestmark = [pytest.mark.asyncio, pytest.mark.mock_cluster]
PRODUCE, METADATA = 0, 3
#: §6.0 default fast settings for mock runs.
FAST: dict[str, Any] = dict(
    acks="all",
    max_in_flight_requests_per_connection=5,
    linger_ms=5,
    request_timeout_ms=1500,
    delivery_timeout_ms=5000,
    retry_backoff_ms=50,
    retry_backoff_max_ms=400,
)


def producer(mock: MockCluster, **overrides: Any) -> Producer:
    return Producer(bootstrap_servers=mock.bootstrap_servers, **{**FAST, **overrides})


async def test_s01_leader_failover_mid_stream(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=6, replication_factor=3)
    h = History(topic)
    async with producer(mock_cluster) as p:
        for i in range(4000):
            await h.send(p, key=b"k%d" % i)
            if i == 1000:
                downed = set()
                for part in (0, 1):
                    old = partition_leader(mock_cluster.bootstrap_servers, topic, part)
                    mock_cluster.broker_set_down(old)
                    mock_cluster.partition_set_leader(topic, part, old % 3 + 1)
                    downed.add(old)
                for b in downed:
                    asyncio.get_running_loop().call_later(3, mock_cluster.broker_set_up, b)
            if i % 100 == 0:
                await asyncio.sleep(0.05)  # ~2 000 records/s
        await h.settle()
        assert len(h.ok()) == 4000
        assert p._sender is not None and p._sender.idem is not None
        assert p._sender.idem.bumps == 0 and p._sender.fatal_error is None
    check(mock_cluster.bootstrap_servers, h, mock=True)
    await check_hygiene(p)


async def test_s03_leaderless_partition_within_and_beyond_delivery_timeout(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=2, replication_factor=3)
    h = History(topic)
    # librdkafka's mock crashes writing the KIP-951 leader of a leaderless partition at
    # Produce v10 (§5.4): keep this scenario at v9.
    mock_cluster.set_apiversion(PRODUCE, 0, 9)
    async with producer(mock_cluster) as p:
        await h.send(p, partition=0)
        await h.settle()
        leader = partition_leader(mock_cluster.bootstrap_servers, topic, 0)
        mock_cluster.partition_set_leader(topic, 0, -1)
        first = [await h.send(p, partition=0) for _ in range(20)]
        await asyncio.sleep(2)
        mock_cluster.partition_set_leader(topic, 0, leader)
        await h.settle()
        assert all(s.future.exception() is None for s in first)
        # Beyond the delivery timeout: p0 fails at 5 s, p1 keeps flowing meanwhile.
        mock_cluster.partition_set_leader(topic, 0, -1)
        t0 = time.monotonic()
        doomed = [await h.send(p, partition=0) for _ in range(20)]
        for _ in range(10):
            md = await (await h.send(p, partition=1)).future
            assert md.partition == 1
        # No cross-partition head-of-line blocking: p1's records are acknowledged while p0's,
        # sent before them, still wait for a leader.
        early = [s.pid for s in doomed if s.future.done()]
        assert not early, f"p0 records {early} resolved before p1's were acknowledged"
        for s in doomed:
            with pytest.raises(KafkaTimeoutError) as info:
                await s.future
            assert info.value.persisted_status is PersistedStatus.NOT_PERSISTED
        # They fail at the delivery timeout: not before it, and within O4's bound.
        took = time.monotonic() - t0
        bound = resolution_bound_s(FAST["delivery_timeout_ms"], FAST["request_timeout_ms"])
        assert 4.5 < took < bound, f"p0 records failed after {took:.2f} s"
        mock_cluster.partition_set_leader(topic, 0, leader)
        assert (await (await h.send(p, partition=0)).future).partition == 0
        assert p._sender is not None and p._sender.fatal_error is None
    check(mock_cluster.bootstrap_servers, h, mock=True)


async def test_s04_whole_cluster_down_then_back(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=3, replication_factor=3)
    h = History(topic)
    async with producer(mock_cluster, delivery_timeout_ms=15_000) as p:
        for _ in range(300):
            await h.send(p)
        mock_cluster.broker_set_down(-1)
        for _ in range(300):
            await h.send(p)
        t0 = time.process_time()
        await asyncio.sleep(3)
        cpu = time.process_time() - t0
        mock_cluster.broker_set_up(-1)
        await h.settle()
        assert len(h.ok()) == 600
    assert cpu < 0.3 * 3, f"busy while the cluster was down: {cpu:.2f} s CPU in 3 s"  # O7
    check(mock_cluster.bootstrap_servers, h, mock=True)
    await check_hygiene(p)


async def test_s05_retriable_error_storm_and_backoff_shape(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=3)
    h = History(topic)
    async with producer(mock_cluster, delivery_timeout_ms=20_000) as p:
        await h.send(p)
        await h.settle()
        mock_cluster.start_request_tracking()
        mock_cluster.push_request_errors(PRODUCE, [19, 5, 6, 7, 56, 2, 13])
        s = await h.send(p)
        await s.future
    reqs = mock_cluster.requests()
    produce_ts = [t for _, api, t in reqs if api == PRODUCE]
    assert len(produce_ts) == 8
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(produce_ts)]
    expected = [min(50 * 2**i, 400) for i in range(7)]
    for gap, want in zip(gaps, expected, strict=True):
        assert 0.75 * want <= gap <= 1.25 * want + 60, (gaps, expected)
    log = fetch_log(mock_cluster.bootstrap_servers, topic)[0]
    assert [(b.base_sequence, b.producer_epoch) for b in log] == [(0, 0), (1, 0)]  # kept
    check(mock_cluster.bootstrap_servers, h, mock=True)


async def test_s06_possibly_persisted_errors_reuse_sequences(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=3)
    h = History(topic)
    async with producer(mock_cluster, batch_size=200, delivery_timeout_ms=20_000) as p:
        await h.send(p)
        await h.settle()
        leader = partition_leader(mock_cluster.bootstrap_servers, topic, 0)
        mock_cluster.broker_set_rtt(leader, 300)
        mock_cluster.partition_push_request_errors(topic, 0, PRODUCE, [20, 7])
        for _ in range(50):
            await h.send(p)
        await h.settle()
        mock_cluster.broker_set_rtt(leader, 0)
        assert len(h.ok()) == 51
        assert p._sender is not None and p._sender.idem is not None
        assert p._sender.idem.bumps == 0
    # The mock appends later batches whose predecessor it refused (it checks no sequences
    # without a transactional id, §5.3): log order is not the client's to keep here. What the
    # client owns: every batch kept its sequence, sequences are gapless, nothing twice.
    log = collapse(fetch_log(mock_cluster.bootstrap_servers, topic)[0])
    spans = sorted((b.base_sequence, len(b.records)) for b in log)
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(spans)), spans
    assert {b.producer_epoch for b in log} == {0}
    check(mock_cluster.bootstrap_servers, h, mock=True, order=False)


async def test_s08_duplicate_sequence_is_success(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=3)
    h = History(topic)
    async with producer(mock_cluster) as p:
        await (await h.send(p)).future
        mock_cluster.start_request_tracking()
        mock_cluster.push_request_errors(PRODUCE, [46])
        md = await (await h.send(p)).future
        assert md.offset == -1  # written earlier: offset unknown
        assert len([r for r in mock_cluster.requests() if r[1] == PRODUCE]) == 1  # no retry
        md = await (await h.send(p)).future
        assert md.offset >= 0


async def test_s09_unknown_producer_id_bumps_the_epoch(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=2, replication_factor=3)
    h = History(topic)
    async with producer(mock_cluster) as p:
        for i in range(10):
            await h.send(p, partition=i % 2)
        await h.settle()
        mock_cluster.partition_push_request_errors(topic, 0, PRODUCE, [59])
        s = await h.send(p, partition=0)
        other = await h.send(p, partition=1)
        await h.settle()
        assert s.future.exception() is None and other.future.exception() is None
        assert p._sender is not None and p._sender.idem is not None
        assert p._sender.idem.epoch == 1 and p._sender.fatal_error is None
    p0 = fetch_log(mock_cluster.bootstrap_servers, topic)[0]
    assert (p0[-1].producer_epoch, p0[-1].base_sequence) == (1, 0)  # restarted at 0
    check(mock_cluster.bootstrap_servers, h, mock=True)


async def test_s11_out_of_order_at_head_of_line_fails_that_batch_and_bumps(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=3)
    h = History(topic)
    async with producer(mock_cluster) as p:
        await (await h.send(p)).future
        mock_cluster.push_request_errors(PRODUCE, [45])
        bad = await h.send(p)
        with pytest.raises(OutOfOrderSequenceNumberError):
            await bad.future
        md = await (await h.send(p)).future  # never a wedge: the next record goes through
        assert md.offset >= 0
        assert p._sender is not None and p._sender.idem is not None
        assert p._sender.idem.epoch == 1
    check(mock_cluster.bootstrap_servers, h, mock=True)


async def test_s15_connection_reset_before_the_write(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=3)
    h = History(topic)
    async with producer(mock_cluster, delivery_timeout_ms=20_000) as p:
        await (await h.send(p)).future
        mock_cluster.push_request_errors(PRODUCE, [-195, -195, -195])
        for _ in range(5):
            await h.send(p)
        await h.settle()
        assert len(h.ok()) == 6
    log = fetch_log(mock_cluster.bootstrap_servers, topic)[0]
    assert sum(len(b.records) for b in log) == 6  # exactly one copy
    check(mock_cluster.bootstrap_servers, h, mock=True)


@pytest.mark.parametrize("idempotent", [True, False])
async def test_s16_ack_lost_after_the_write(
    mock_cluster: MockCluster, new_topic: Callable[..., str], idempotent: bool
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=3)
    h = History(topic)
    async with producer(
        mock_cluster, enable_idempotence=idempotent, delivery_timeout_ms=10_000
    ) as p:
        await (await h.send(p)).future
        leader = partition_leader(mock_cluster.bootstrap_servers, topic, 0)
        # The next Produce is appended at once and answered after 4 s (> request timeout).
        mock_cluster.broker_push_request_error_rtts(leader, PRODUCE, [(0, 4000)])
        s = await h.send(p)
        try:
            await s.future
        except KafkaTimeoutError as exc:
            assert not idempotent and exc.persisted_status is PersistedStatus.POSSIBLY_PERSISTED
    log = fetch_log(mock_cluster.bootstrap_servers, topic)[0]
    if idempotent:
        assert s.future.exception() is None
        assert len(log) == 3  # the original and its identical re-send ...
        check(mock_cluster.bootstrap_servers, h, mock=True)  # ... collapse to one write
    else:
        check(mock_cluster.bootstrap_servers, h, mock=True, idempotent=False)


async def test_s32_configuration_validation() -> None:
    from aioproducer import ConfigError, ProducerConfig

    for bad in (
        {"enable_idempotence": True, "acks": 1},
        {"enable_idempotence": True, "max_in_flight_requests_per_connection": 6},
        {"enable_idempotence": True, "retries": 0},
        {"delivery_timeout_ms": 1000},
    ):
        with pytest.raises(ConfigError):
            ProducerConfig(**bad)  # type: ignore[arg-type]
    assert not ProducerConfig(acks=1).idempotence  # only the default: disabled, no error
    implicit = ProducerConfig(request_timeout_ms=200_000)  # implicit delivery timeout is raised
    assert implicit.delivery_timeout == 200_005


async def test_s33_s34_invalid_and_oversized_records(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=2, replication_factor=3)
    async with producer(
        mock_cluster, buffer_memory=100_000, max_request_size=200_000, max_block_ms=60_000
    ) as p:
        before = value_of(p.metrics(), "buffer-available-bytes")
        cases: list[tuple[dict[str, Any], type[Exception]]] = [
            ({"value": "str"}, SerializationError),
            ({"value": b"v", "key": 5}, SerializationError),
            ({"value": b"v", "headers": [(1, b"x")]}, BadRecordError),
            ({"value": b"v", "headers": [("k", "x")]}, BadRecordError),
            ({"value": b"v", "partition": -1}, BadRecordError),
            ({"value": b"v", "partition": 2}, BadRecordError),
            ({"value": b"v", "timestamp_ms": 2**63}, BadRecordError),
            ({"value": b"x" * 300_000}, RecordTooLargeError),  # > max_request_size
            ({"value": b"x" * 150_000}, RecordTooLargeError),  # > buffer_memory
        ]
        for kwargs, exc_type in cases:
            t0 = time.monotonic()
            with pytest.raises(exc_type):
                await p.send(topic, **kwargs)
            took = time.monotonic() - t0
            # Refused at once: never blocks for max_block_ms (60 s here).
            assert took < 10, f"{exc_type.__name__} raised after {took:.1f} s"
        for bad_topic in ("", "a" * 250, "bad topic!"):
            with pytest.raises(BadRecordError):
                await p.send(bad_topic, b"v")
        assert value_of(p.metrics(), "buffer-available-bytes") == before
        assert value_of(p.metrics(), "batches-queued", "aioproducer-metrics") == 0


async def test_s35_use_after_close_and_concurrent_close(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=3)
    p = producer(mock_cluster)
    await p.start()
    racing = [asyncio.create_task(p.send(topic, b"%d" % i)) for i in range(50)]
    racing.append(asyncio.create_task(p.send("unknown-topic-during-close", b"x")))
    await asyncio.gather(p.close(), p.close())
    for t in racing:
        try:
            fut = await t
            await fut
        except (ProducerClosedError, KafkaTimeoutError):
            pass
    for name in (topic, "never-seen"):
        with pytest.raises(ProducerClosedError):
            await p.send(name, b"late")
    await p.close()
    await check_hygiene(p)


async def test_s39_buffer_exhausted_blocks_boundedly(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=3)
    async with producer(
        mock_cluster,
        buffer_memory=1 << 20,
        max_block_ms=1000,
        request_timeout_ms=8000,
        delivery_timeout_ms=30_000,
    ) as p:
        await p.send_and_wait(topic, b"warm-up")
        leader = partition_leader(mock_cluster.bootstrap_servers, topic, 0)
        mock_cluster.broker_set_rtt(leader, 4000)
        accepted = []
        t0 = time.monotonic()
        with pytest.raises(KafkaTimeoutError, match="buffer_memory"):
            for _ in range(5 * 1024):
                accepted.append(await p.send(topic, b"x" * 1000))
                t0 = time.monotonic()
        # The send that found no memory gave up at max_block_ms (1 s): not before it, and not
        # when the 4 s round trip freed memory (it would have succeeded then).
        took = time.monotonic() - t0
        assert 0.9 <= took < 3, f"the blocked send gave up after {took:.2f} s"
        mock_cluster.broker_set_rtt(leader, 0)
        for f in accepted:
            await f
        assert value_of(p.metrics(), "buffer-available-bytes") == 1 << 20


async def test_s45_graceful_stop_flushes(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=3, replication_factor=3)
    h = History(topic)
    # A linger far longer than a flush takes, so close() cutting it short shows.
    p = producer(mock_cluster, linger_ms=60_000, delivery_timeout_ms=120_000)
    await p.start()
    for _ in range(10_000):
        await h.send(p)
    t0 = time.monotonic()
    await p.close()
    took = time.monotonic() - t0
    assert took < 20, f"close() took {took:.1f} s: it waited for the 60 s linger"
    assert len(h.ok()) == 10_000
    check(mock_cluster.bootstrap_servers, h, mock=True)
    await check_hygiene(p)


async def test_s46_bounded_stop_when_brokers_are_gone(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=3, replication_factor=3)
    h = History(topic)
    p = producer(mock_cluster, delivery_timeout_ms=30_000)
    await p.start()
    await (await h.send(p)).future
    mock_cluster.broker_set_down(-1)
    for _ in range(100):
        await h.send(p)
    t0 = time.monotonic()
    await p.close(timeout=2)
    # Within its timeout (+1 s of slack for a loaded machine), not the 30 s delivery timeout.
    took = time.monotonic() - t0
    assert took < 2 + 1, f"close(timeout=2) took {took:.2f} s"
    assert len(h.failed()) == 100
    for s in h.failed():
        exc = s.future.exception()
        assert isinstance(exc, ProducerClosedError) and exc.persisted_status is not None
    await check_hygiene(p)
    mock_cluster.broker_set_up(-1)


async def test_s47_cancelling_a_caller_of_send(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=3)
    h = History(topic)
    async with producer(mock_cluster, buffer_memory=40_000, batch_size=16384, linger_ms=100) as p:
        await (await h.send(p)).future
        # (a) blocked on memory: cancelled, nothing enqueued, the pool stays consistent.
        big = [asyncio.create_task(h.send(p, size=17_000)) for _ in range(3)]
        # Two fit the 40 kB pool; the third waits for memory, and is cancelled there.
        await wait_until(
            lambda: (
                big[0].done() and big[1].done() and value_of(p.metrics(), "waiting-threads") == 1
            ),
            "the third send to wait for memory",
            interval=0,
            state=p.metrics,
        )
        assert not big[2].done()
        big[2].cancel()
        done = await asyncio.gather(*big, return_exceptions=True)
        assert isinstance(done[2], asyncio.CancelledError)
        # (b) cancelling the task that awaits an enqueued record cancels the wait, not the
        # record. (``asyncio.wait_for(handle, t)`` cancels the handle itself on timeout, as
        # with any asyncio future: that detaches the handle, and the record is still
        # delivered; tests/unit/test_handle_future_protocol.py.)
        s = await h.send(p)

        async def wait_for_it() -> RecordMetadata:
            return await s.future

        waiter = asyncio.create_task(wait_for_it())
        await asyncio.sleep(0)  # the waiter runs and parks on the record
        assert not waiter.done() and not s.future.done()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert not s.future.cancelled()
        md = await s.future
        for sent in done[:2]:
            await sent.future  # type: ignore[union-attr]
        h.sent = [x for x in h.sent if x.pid != getattr(done[2], "pid", -1)]
        assert md.offset >= 0
    assert value_of(p.metrics(), "buffer-available-bytes") == 40_000
    check(mock_cluster.bootstrap_servers, h, mock=True)


async def test_s48_internal_task_killed_by_outsiders(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(mock_cluster, partitions=1, replication_factor=3)
    p = producer(mock_cluster, linger_ms=10_000, delivery_timeout_ms=60_000)
    await p.start()
    pending = [await p.send(topic, b"%d" % i) for i in range(10)]
    me = asyncio.current_task()
    for t in asyncio.all_tasks():
        if t is not me:
            t.cancel()
    await wait_until(
        lambda: all(f.done() for f in pending),
        "the records pending when the sender task was killed to fail",
        state=lambda: [f for f in pending if not f.done()],
    )
    for f in pending:
        with pytest.raises(ProducerClosedError, match="internal sender task"):
            await f
    with pytest.raises(ProducerClosedError):
        await p.send(topic, b"after")
    await p.close()
