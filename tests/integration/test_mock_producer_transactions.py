"""The MockProducer's transactions match the real producer's: the same user function
(``relay``, typed with ``TransactionalProducerLike``) runs on both, and what the mock keeps
(``history()``, ``consumer_group_offsets_history()``, the records' offsets) is what Kafka
holds after the real run, read back ``read_committed`` with confluent-kafka."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from aioproducer import Producer, TopicPartition
from aioproducer.testing import KafkaCluster, MockProducer, read_topic
from aioproducer.testing._admin import confluent
from tests.unit.test_mock_producer_transactions import relay

pytestmark = pytest.mark.asyncio


async def test_the_mocks_outcome_is_the_real_producers(
    kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    source, out = new_topic(kafka, partitions=2), new_topic(kafka, partitions=2)
    group = f"group-{uuid.uuid4().hex[:8]}"
    tid = f"txn-{uuid.uuid4().hex[:12]}"
    real = Producer(bootstrap_servers=kafka.bootstrap_servers, transactional_id=tid)
    mock = MockProducer(transactional_id=tid, partitions={out: 2})

    # The records' offsets (markers included), and -1 for the send refused outside a
    # transaction: the same from both.
    real_offsets = await relay(real, out, source, group)
    assert real_offsets == await relay(mock, out, source, group)

    # What a read_committed reader sees is the mock's history, offsets included.
    read = read_topic(kafka.bootstrap_servers, out, 60, "read_committed")
    by_partition = sorted((r.partition, r.offset, r.value) for r in read)
    committed_offsets = [real_offsets[i] for i in (0, 1, 5)]  # a, b, c
    mock_records = sorted(
        (r.partition, off, r.value)
        for r, off in zip(mock.history(), committed_offsets, strict=True)
    )
    assert by_partition == mock_records

    # The group's offsets are what the mock's committed transactions hold, the last one
    # winning per partition (the aborted transaction's never).
    ck = confluent()
    consumer = ck.Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": group})
    try:
        got = consumer.committed(
            [ck.TopicPartition(source, 0), ck.TopicPartition(source, 1)], timeout=30
        )
    finally:
        consumer.close()
    kept: dict[TopicPartition, tuple[int, str | None]] = {}
    for committed in mock.consumer_group_offsets_history():
        kept.update(committed[group])
    # The offsets only: librdkafka hands a committed offset's metadata over as a C string
    # without its terminator (confluentinc/librdkafka#4649): "meta" reads back as "meta" and
    # whatever bytes follow it in memory, differing from call to call.
    assert sorted((o.partition, o.offset) for o in got) == sorted(
        (tp.partition, offset) for tp, (offset, _) in kept.items()
    )
    assert kept == {TopicPartition(source, 0): (7, "m"), TopicPartition(source, 1): (3, "")}
