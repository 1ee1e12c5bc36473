"""Transactions (KIP-98) against real Kafka, in both protocols: v2 (KIP-890, the default
harness version, whose fresh clusters finalize ``transaction.version=2``) and v1 (the same
Kafka formatted with ``transaction.version=1``, and Kafka 3.9, which has only v1: no implicit
partitions, no epoch bump per transaction). What a ``read_committed`` reader sees is read
back with confluent-kafka."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from aioproducer import (
    ConfigError,
    ConsumerGroupMetadata,
    Producer,
    RecordTooLargeError,
    TopicPartition,
    TransactionAbortedError,
    TransactionStateError,
    UnsupportedVersion,
)
from aioproducer.errors import ProducerFencedError
from aioproducer.testing import KafkaCluster, read_topic
from aioproducer.testing._admin import confluent
from aioproducer.testing.kafka import KAFKA_COMPAT_VERSION

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def kafka_tv1() -> Iterator[KafkaCluster]:
    with KafkaCluster(1, features={"transaction.version": 1}) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def kafka_39() -> Iterator[KafkaCluster]:
    """Kafka 3.9, which has only transactions v1 (KIP-890's v2 came in 4.0)."""
    with KafkaCluster(1, version=KAFKA_COMPAT_VERSION) as cluster:
        yield cluster


@pytest.fixture(params=["v2", "v1", "v1-kafka-3.9"])
def txn_broker(request: pytest.FixtureRequest) -> tuple[KafkaCluster, bool]:
    """(the broker, whether it offers transactions v2)."""
    if request.param == "v2":
        return request.getfixturevalue("kafka"), True
    if request.param == "v1":
        return request.getfixturevalue("kafka_tv1"), False
    return request.getfixturevalue("kafka_39"), False


def tid() -> str:
    return f"txn-{uuid.uuid4().hex[:12]}"


def committed(broker: KafkaCluster, topic: str) -> list[tuple[int, bytes | None]]:
    return [
        (r.partition, r.value)
        for r in read_topic(broker.bootstrap_servers, topic, 60, "read_committed")
    ]


async def test_committed_records_are_visible_and_aborted_ones_never(
    txn_broker: tuple[KafkaCluster, bool], new_topic: Callable[..., str]
) -> None:
    broker, v2 = txn_broker
    topics = [new_topic(broker, partitions=3), new_topic(broker, partitions=2)]
    expected: dict[str, list[tuple[int, bytes]]] = {t: [] for t in topics}
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers, transactional_id=tid(), linger_ms=2
    ) as p:
        txn = p._sender.txn  # type: ignore[union-attr]
        assert txn is not None and txn.v2 is v2, "the protocol negotiated is not the expected one"
        for n in range(8):
            commit = n % 3 != 1
            p.begin_transaction()
            futs = []
            for i in range(60):
                topic = topics[i % 2]
                partition = i % (3 if topic == topics[0] else 2)
                value = b"txn%d-rec%d" % (n, i)
                futs.append(await p.send(topic, value, partition=partition))
                if commit:
                    expected[topic].append((partition, value))
            if commit:
                await p.commit_transaction()
                for f in futs:
                    assert (await f).offset >= 0
            else:
                await p.flush()  # written, then aborted: the worst case for a reader
                await p.abort_transaction()
        # An empty transaction commits and aborts without the coordinator.
        async with p.transaction():
            pass
    for topic in topics:
        got = committed(broker, topic)
        for partition in range(3):
            want = [v for q, v in expected[topic] if q == partition]
            assert [v for q, v in got if q == partition] == want, (topic, partition)


async def test_an_exception_in_the_block_aborts_and_propagates(
    txn_broker: tuple[KafkaCluster, bool], new_topic: Callable[..., str]
) -> None:
    broker, _ = txn_broker
    topic = new_topic(broker, partitions=2)
    async with Producer(bootstrap_servers=broker.bootstrap_servers, transactional_id=tid()) as p:
        async with p.transaction():
            await p.send(topic, b"kept", partition=0)
        with pytest.raises(ZeroDivisionError):
            async with p.transaction():
                queued = await p.send(topic, b"never", partition=1)
                1 / 0  # noqa: B018
        # A record still queued when the transaction aborted fails; one sent is aborted.
        if not queued.done():
            with pytest.raises(TransactionAbortedError):
                await queued
        async with p.transaction():
            await p.send(topic, b"after", partition=0)
    assert committed(broker, topic) == [(0, b"kept"), (0, b"after")]


async def test_misuse_raises_at_once(kafka: KafkaCluster, new_topic: Callable[..., str]) -> None:
    topic = new_topic(kafka)
    async with Producer(bootstrap_servers=kafka.bootstrap_servers, transactional_id=tid()) as p:
        with pytest.raises(TransactionStateError, match="only inside a transaction"):
            await p.send(topic, b"outside")
        with pytest.raises(TransactionStateError, match="no transaction to commit"):
            await p.commit_transaction()
        with pytest.raises(TransactionStateError, match="no transaction to abort"):
            await p.abort_transaction()
        p.begin_transaction()
        with pytest.raises(TransactionStateError, match="already in progress"):
            p.begin_transaction()
        await p.send(topic, b"inside")
        await p.commit_transaction()
        with pytest.raises(TransactionStateError, match="only inside a transaction"):
            await p.send(topic, b"after commit")
    async with Producer(bootstrap_servers=kafka.bootstrap_servers) as plain:
        with pytest.raises(TransactionStateError, match="not transactional"):
            plain.begin_transaction()
    with pytest.raises(ConfigError, match="idempotence"):
        Producer(transactional_id="x", enable_idempotence=False)
    assert committed(kafka, topic) == [(0, b"inside")]


async def test_a_second_producer_with_the_same_id_fences_the_first(
    txn_broker: tuple[KafkaCluster, bool], new_topic: Callable[..., str]
) -> None:
    broker, _ = txn_broker
    topic = new_topic(broker)
    same = tid()
    first = Producer(bootstrap_servers=broker.bootstrap_servers, transactional_id=same)
    await first.start()
    try:
        first.begin_transaction()
        await first.send(topic, b"zombie")
        await first.flush()
        async with Producer(
            bootstrap_servers=broker.bootstrap_servers, transactional_id=same
        ) as second:
            # The second's start() fenced the first and aborted its open transaction.
            with pytest.raises(ProducerFencedError):
                await first.send(topic, b"zombie 2")
                await first.commit_transaction()
            async with second.transaction():
                await second.send(topic, b"successor")
    finally:
        await first.close()
    assert committed(broker, topic) == [(0, b"successor")]


async def test_a_failed_record_makes_commit_fail_and_abort_recovers(
    txn_broker: tuple[KafkaCluster, bool], new_topic: Callable[..., str]
) -> None:
    broker, _ = txn_broker
    topic = new_topic(broker, partitions=2, config={"max.message.bytes": "2000"})
    async with Producer(bootstrap_servers=broker.bootstrap_servers, transactional_id=tid()) as p:
        p.begin_transaction()
        await p.send(topic, b"small", partition=0)
        # Alone in its batch: a batch of several records that fit batch_size together but not
        # the topic's max.message.bytes splits into itself again and again (found here; a
        # producer bug outside transactions, reported apart).
        big = await p.send(topic, b"x" * 10_000, partition=1)
        with pytest.raises(RecordTooLargeError):
            await p.commit_transaction()
        with pytest.raises(RecordTooLargeError):
            await big
        with pytest.raises(TransactionStateError, match="must be aborted"):
            await p.send(topic, b"refused")
        await p.abort_transaction()
        async with p.transaction():
            await p.send(topic, b"next", partition=0)
    assert committed(broker, topic) == [(0, b"next")]


async def test_send_offsets_to_transaction_commits_the_groups_offsets_with_the_records(
    txn_broker: tuple[KafkaCluster, bool], new_topic: Callable[..., str]
) -> None:
    broker, _ = txn_broker
    source = new_topic(broker, partitions=2)
    out = new_topic(broker)
    group = f"group-{uuid.uuid4().hex[:8]}"
    async with Producer(bootstrap_servers=broker.bootstrap_servers, transactional_id=tid()) as p:
        async with p.transaction():
            await p.send(out, b"with offsets")
            await p.send_offsets_to_transaction(
                {TopicPartition(source, 0): 5, TopicPartition(source, 1): (7, "meta")}, group
            )
        p.begin_transaction()
        await p.send(out, b"aborted")
        await p.send_offsets_to_transaction({TopicPartition(source, 0): 99}, group)
        await p.abort_transaction()
        # The group metadata form (KIP-447): a generation the group does not have is refused.
        p.begin_transaction()
        with pytest.raises(Exception, match=r"(?i)generation|member"):
            await p.send_offsets_to_transaction(
                {TopicPartition(source, 0): 100},
                ConsumerGroupMetadata(group, generation_id=42, member_id="nobody"),
            )
        await p.abort_transaction()
    ck = confluent()
    consumer = ck.Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group})
    try:
        offsets = consumer.committed(
            [ck.TopicPartition(source, 0), ck.TopicPartition(source, 1)], timeout=30
        )
    finally:
        consumer.close()
    assert [(o.partition, o.offset) for o in offsets] == [(0, 5), (1, 7)]
    assert committed(broker, out) == [(0, b"with offsets")]


async def test_two_phase_commit_needs_a_broker_offering_it(kafka: KafkaCluster) -> None:
    """Kafka 4.4 as formatted by default does not offer InitProducerId v6 (unstable there):
    a 2PC producer's start() fails saying which broker setting it needs (the 2PC tests
    themselves are in test_transactions_2pc.py, on a broker formatted for it)."""
    p = Producer(
        bootstrap_servers=kafka.bootstrap_servers,
        transactional_id=tid(),
        transaction_two_phase_commit_enable=True,
    )
    try:
        with pytest.raises(UnsupportedVersion, match=r"unstable\.api\.versions\.enable=true"):
            await p.start()
    finally:
        await p.close()
