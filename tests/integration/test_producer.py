"""The producer against real brokers: Apache Kafka (one node and the 3-node cluster) and Tansu.
Everything written is read back by confluent-kafka and compared record by record."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

import pytest

from aioproducer import (
    BadRecordError,
    KafkaTimeoutError,
    Producer,
    ProducerClosedError,
    ProducerInterceptor,
    RecordMetadata,
    RecordTooLargeError,
    SerializationError,
)
from aioproducer._core.murmur2 import murmur2
from aioproducer.config import CompressionType
from aioproducer.metrics import value_of
from aioproducer.testing import KafkaCluster, TansuBroker, read_topic

from ..helpers import wait_until

pytestmark = pytest.mark.asyncio
Broker = KafkaCluster | TansuBroker


@pytest.fixture(params=["kafka", "tansu"])
def broker(request: pytest.FixtureRequest) -> Broker:
    b: Broker = request.getfixturevalue(request.param)
    return b


def java_partition(key: bytes, n: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % n


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
async def test_every_codec_keys_nulls_headers_timestamps(
    broker: Broker, new_topic: Callable[..., str], codec: CompressionType | None
) -> None:
    topic = new_topic(broker, partitions=3)
    # key, value, headers, timestamp, partition (None: the partitioner's choice)
    sent: list[
        tuple[bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...], int, int | None]
    ] = []
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers, compression_type=codec, linger_ms=20
    ) as p:
        futs = []
        for i in range(2000):
            key = None if i % 11 == 0 else b"key-%d" % (i % 97)
            value = None if i % 13 == 0 else bytes([i % 256]) * (i % 300)
            headers = [("i", b"%d" % i), ("empty", b""), ("none", None)] if i % 3 else None
            ts = 1_600_000_000_000 + i
            partition = 2 if i % 17 == 0 else None
            futs.append(
                await p.send(
                    topic, value, key=key, headers=headers, timestamp_ms=ts, partition=partition
                )
            )
            sent.append((key, value, tuple(headers or ()), ts, partition))
        mds: list[RecordMetadata] = [await f for f in futs]
    got = {(r.partition, r.offset): r for r in read_topic(broker.bootstrap_servers, topic)}
    assert len(got) == len(sent)
    for (key, value, sent_headers, ts, partition), md in zip(sent, mds, strict=True):
        r = got[(md.partition, md.offset)]
        assert (r.key, r.value, r.headers, r.timestamp) == (key, value, sent_headers, ts)
        assert md.topic == topic and md.timestamp == ts
        assert md.serialized_key_size == (-1 if key is None else len(key))
        assert md.serialized_value_size == (-1 if value is None else len(value))
        if partition is not None:
            assert md.partition == partition
        elif key is not None:
            assert md.partition == java_partition(key, 3)


async def _produce_and_verify(
    bootstrap: str, topic: str, n: int, partitions: int, **settings: Any
) -> None:
    async with Producer(bootstrap_servers=bootstrap, **settings) as p:
        last = None
        for i in range(n):
            last = await p.send(topic, b"value-%d" % i, key=b"k%d" % (i % 1000))
        await p.flush()
        assert last is not None and last.done()
    records = read_topic(bootstrap, topic, timeout=120)
    assert len(records) == n
    last_seen: dict[int, int] = {}
    for r in records:
        assert r.key is not None and r.value is not None
        i = int(r.value.split(b"-")[1])
        assert r.key == b"k%d" % (i % 1000)
        assert r.partition == java_partition(r.key, partitions)
        assert last_seen.get(r.partition, -1) < i, "records out of send order in a partition"
        last_seen[r.partition] = i
    assert sorted(int(r.value.split(b"-")[1]) for r in records) == list(range(n))  # type: ignore[union-attr]


async def test_100k_records_read_back_in_order(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(broker, partitions=6)
    await _produce_and_verify(broker.bootstrap_servers, topic, 100_000, 6)


@pytest.mark.kafka
async def test_100k_records_on_the_3_node_cluster(
    kafka_cluster: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka_cluster, partitions=6, replication_factor=3)
    await _produce_and_verify(
        kafka_cluster.bootstrap_servers, topic, 100_000, 6, compression_type="lz4"
    )


async def test_send_and_wait_does_not_pay_the_linger(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(broker)
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers, linger_ms=20_000, delivery_timeout_ms=60_000
    ) as p:
        await p.send_and_wait(topic, b"warm-up")
        t0 = time.monotonic()
        md = await p.send_and_wait(topic, b"now", key=b"k")
        assert time.monotonic() - t0 < 5
        assert md.offset == 1


async def test_flush_waits_for_every_record_sent_before(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(broker, partitions=2)
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers, linger_ms=30_000, delivery_timeout_ms=60_000
    ) as p:
        futs = [await p.send(topic, b"%d" % i) for i in range(500)]
        assert not any(f.done() for f in futs)  # lingering
        t0 = time.monotonic()
        await p.flush()
        assert time.monotonic() - t0 < 10  # linger ignored while flushing
        assert all(f.done() and f.exception() is None for f in futs)


async def test_close_delivers_pending_records(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(broker)
    p = Producer(
        bootstrap_servers=broker.bootstrap_servers, linger_ms=10_000, delivery_timeout_ms=60_000
    )
    await p.start()
    futs = [await p.send(topic, b"%d" % i) for i in range(300)]
    await p.close()
    assert all(f.done() for f in futs)
    assert [f.result().offset for f in futs] == list(range(300))
    with pytest.raises(ProducerClosedError):
        await p.send(topic, b"late")
    assert len(read_topic(broker.bootstrap_servers, topic)) == 300


@pytest.mark.kafka
async def test_unknown_topic_times_out_naming_it(kafka: KafkaCluster) -> None:
    async with Producer(bootstrap_servers=kafka.bootstrap_servers, max_block_ms=1500) as p:
        t0 = time.monotonic()
        with pytest.raises(KafkaTimeoutError, match="topic 'no-such-topic' not present"):
            await p.send("no-such-topic", b"v")
        assert 1.4 < time.monotonic() - t0 < 5


async def test_bad_input_is_a_clear_typed_error(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(broker, partitions=2)
    async with Producer(bootstrap_servers=broker.bootstrap_servers, max_request_size=10_000) as p:
        with pytest.raises(SerializationError, match=f"topic '{topic}' must be bytes-like"):
            await p.send(topic, "a str without a serializer")
        with pytest.raises(RecordTooLargeError, match="max_request_size=10000"):
            await p.send(topic, b"x" * 20_000)
        with pytest.raises(BadRecordError, match="timestamp_ms=-1"):
            await p.send(topic, b"v", timestamp_ms=-1)
        with pytest.raises(BadRecordError, match="partition 5 is not in the range"):
            await p.send(topic, b"v", partition=5)
        with pytest.raises(BadRecordError, match="pair"):
            await p.send(topic, b"v", headers=[("k", "not bytes")])  # type: ignore[list-item]
        # Nothing else is affected: the producer keeps working.
        md = await p.send_and_wait(topic, b"fine", partition=1)
        assert md.offset == 0
    assert [r.value for r in read_topic(broker.bootstrap_servers, topic)] == [b"fine"]


async def test_tiny_buffer_memory_makes_senders_wait_then_proceed(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(broker)
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers,
        buffer_memory=64 * 1024,
        batch_size=16384,
        linger_ms=50,
    ) as p:
        futs = [await p.send(topic, b"x" * 1000) for _ in range(2000)]  # 2 MB through 64 KiB
        assert value_of(p.metrics(), "buffer-available-bytes") <= 64 * 1024
        for f in futs:
            await f
        await p.flush()
        assert value_of(p.metrics(), "buffer-available-bytes") == 64 * 1024  # nothing leaked
    assert len(read_topic(broker.bootstrap_servers, topic)) == 2000


@pytest.mark.parametrize("codec", [None, "zstd"])
async def test_incremental_allocation_grows_large_batches_in_a_small_pool(
    broker: Broker, new_topic: Callable[..., str], codec: CompressionType
) -> None:
    """buffer_memory_allocation_strategy="incremental": 256 KiB batches in a 96 KiB pool
    (with "full", one batch would not even fit it); batches grow by 16 KiB chunks, senders
    wait for memory, and confluent-kafka reads back every record, byte for byte, in order."""
    topic = new_topic(broker, partitions=3)
    values = [b"%05d:" % i + bytes([i % 251]) * (500 + i % 1500) for i in range(3000)]
    keys = [b"k%d" % (i % 7) for i in range(3000)]
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers,
        buffer_memory=96 * 1024,
        batch_size=256 * 1024,
        linger_ms=20,
        compression_type=codec,
        buffer_memory_allocation_strategy="incremental",
    ) as p:
        futs = [await p.send(topic, v, key=k) for v, k in zip(values, keys, strict=True)]
        mds = [await f for f in futs]
        assert value_of(p.metrics(), "bufferpool-wait-time-ns-total") > 0
        assert value_of(p.metrics(), "buffer-available-bytes") == 96 * 1024  # nothing leaked
    got = read_topic(broker.bootstrap_servers, topic)
    by_key: dict[bytes | None, list[bytes | None]] = collections.defaultdict(list)
    for r in got:
        by_key[r.key].append(r.value)
    for k in set(keys):  # one key, one partition: its records in send order
        assert by_key[k] == [v for v, kk in zip(values, keys, strict=True) if kk == k]
    assert sorted((r.partition, r.offset) for r in got) == sorted(
        (md.partition, md.offset) for md in mds
    )


async def test_callbacks_and_interceptors_fire_in_send_order(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(broker)
    events: list[tuple[str, int]] = []

    class Interceptor(ProducerInterceptor):
        def on_send(self, record: Any) -> Any:
            if record.value == b"boom":
                raise RuntimeError("interceptor bug")  # logged, not raised
            return record

        def on_acknowledgement(self, md: RecordMetadata | None, exc: BaseException | None) -> None:
            assert md is not None
            events.append(("ack", md.offset))

    def callback(md: RecordMetadata | None, exc: BaseException | None) -> None:
        assert md is not None and exc is None
        events.append(("cb", md.offset))
        if md.offset == 1:
            raise RuntimeError("callback bug")  # logged; the others still run

    async with Producer(
        bootstrap_servers=broker.bootstrap_servers, interceptors=[Interceptor()]
    ) as p:
        futs = [await p.send(topic, v, callback=callback) for v in (b"a", b"b", b"boom", b"d")]
        await p.flush()
        assert [f.result().offset for f in futs] == [0, 1, 2, 3]
    assert events == [(kind, i) for i in range(4) for kind in ("ack", "cb")]


async def test_cancelling_a_waiting_send_loses_no_other_record(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(broker)
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers,
        buffer_memory=32 * 1024,
        batch_size=16384,
        linger_ms=200,
    ) as p:
        first = [await p.send(topic, b"%d" % i) for i in range(10)]
        # These wait for memory (two 16 KiB batches fill the pool), then one is cancelled.
        tasks = [asyncio.create_task(p.send(topic, b"y" * 17000)) for _ in range(3)]
        # The pool serves waiters in order: with two of the three waiting, the second is.
        await wait_until(
            lambda: value_of(p.metrics(), "waiting-threads") >= 2,
            "the sends to wait for memory",
            interval=0,
            state=p.metrics,
        )
        assert not tasks[1].done()
        tasks[1].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[1], asyncio.CancelledError)
        others = [r for i, r in enumerate(results) if i != 1]
        for f in [*first, *others]:
            assert not isinstance(f, BaseException)
            await f
    values = [r.value for r in read_topic(broker.bootstrap_servers, topic)]
    assert values[:10] == [b"%d" % i for i in range(10)] and len(values) == 12


async def test_partitions_for_and_metrics(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(broker, partitions=4)
    async with Producer(bootstrap_servers=broker.bootstrap_servers) as p:
        assert await p.partitions_for(topic) == [0, 1, 2, 3]
        m = p.metrics()
        assert (
            value_of(m, "connection-count") >= 1 and value_of(m, "buffer-total-bytes") == 33554432
        )


@pytest.mark.parametrize("acks", [0, 1, "all"])
async def test_acks_levels(broker: Broker, new_topic: Callable[..., str], acks: Any) -> None:
    topic = new_topic(broker)
    async with Producer(bootstrap_servers=broker.bootstrap_servers, acks=acks) as p:
        futs = [await p.send(topic, b"%d" % i) for i in range(100)]
        await p.flush()
        offsets = [f.result().offset for f in futs]
    assert offsets == ([-1] * 100 if acks == 0 else list(range(100)))
    assert len(read_topic(broker.bootstrap_servers, topic)) == 100


@pytest.mark.kafka
async def test_unkeyed_records_fill_whole_batches_with_no_runts(
    kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    """The sticky partitioner's stint ends with its batch: a record that does not fit goes to
    the next partition, so no small batch is opened for the rest of the stint's bytes."""
    topic = new_topic(kafka, partitions=6)
    async with Producer(
        bootstrap_servers=kafka.bootstrap_servers, linger_ms=60_000, batch_size=16_384
    ) as p:
        handles = [await p.send(topic, b"v" * 100) for _ in range(3_000)]
        await p.flush()
        assert all(not h.exception() for h in handles)
    sizes = sorted(collections.Counter(id(h.batch) for h in handles).values())
    # 3,000 records of 100 B fill 20 batches of ~148 and leave one partial, flushed batch.
    assert sizes[0] > 0 and all(n >= 140 for n in sizes[1:]), sizes
    assert len(sizes) <= 21, sizes
    assert len({h.result().partition for h in handles}) > 1
    assert len(read_topic(kafka.bootstrap_servers, topic)) == 3_000


async def test_new_topics_are_asked_for_at_once_not_after_the_refresh_backoff(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    """With a 10 s refresh backoff and max_block_ms 5 s, each new topic's metadata must come
    from an update made at once (Java's requestUpdateForNewTopics): waiting out the backoff
    would fail the send with KafkaTimeoutError."""
    topics = [new_topic(broker) for _ in range(4)]
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers,
        retry_backoff_ms=10_000,
        retry_backoff_max_ms=10_000,
        max_block_ms=5_000,
        enable_idempotence=False,  # a fresh broker's first InitProducerId may be retried
    ) as p:
        for t in topics:
            md = await p.send_and_wait(t, b"first")
            assert (md.topic, md.offset) == (t, 0)
    for t in topics:
        assert [r.value for r in read_topic(broker.bootstrap_servers, t)] == [b"first"]


async def test_send_many_writes_what_a_loop_of_send_writes(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    """send_many: keyed and unkeyed records, with lz4, read back by confluent-kafka; each
    future resolves to where the record is, keyed ones where Java's partitioner puts them."""
    topic = new_topic(broker, partitions=3)
    values = [b"value-%05d" % i + bytes(i % 200) for i in range(6000)]
    keys = [None if i % 5 == 0 else b"key-%d" % (i % 101) for i in range(3000)]
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers, compression_type="lz4", batch_size=4096
    ) as p:
        keyed = await p.send_many(topic, values[:3000], keys, headers=[("bulk", b"1")])
        unkeyed = await p.send_many(topic, values[3000:])
        mds: list[RecordMetadata] = [await f for f in keyed + unkeyed]
    got = {(r.partition, r.offset): r for r in read_topic(broker.bootstrap_servers, topic)}
    assert len(got) == 6000
    for i, md in enumerate(mds):
        r = got[(md.partition, md.offset)]
        key = keys[i] if i < 3000 else None
        assert (r.key, r.value) == (key, values[i])
        assert r.headers == ((("bulk", b"1"),) if i < 3000 else ())
        if key is not None:
            assert md.partition == java_partition(key, 3)
    assert len({md.partition for md in mds[3000:]}) > 1  # the unkeyed ones moved on
