"""Transactions through faults on real Kafka: a transaction the coordinator aborts when it
outlives ``transaction_timeout_ms``."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from aioproducer import Producer
from aioproducer.errors import InvalidTxnStateError, ProducerFencedError
from aioproducer.testing import KafkaCluster, read_topic
from aioproducer.testing._admin import confluent

from ..helpers import wait_until

pytestmark = pytest.mark.asyncio


async def test_a_transaction_past_its_timeout_is_aborted_by_the_coordinator(
    kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka)
    async with Producer(
        bootstrap_servers=kafka.bootstrap_servers,
        transactional_id=f"slow-{uuid.uuid4().hex[:8]}",
        transaction_timeout_ms=1000,
    ) as p:
        p.begin_transaction()
        await p.send_and_wait(topic, b"too late")
        # The coordinator aborts it (its timeout check runs every 10 s by default): the abort
        # marker then follows the record, and the high watermark moves from 1 to 2.
        ck = confluent()
        watcher = ck.Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": "w"})
        try:

            def marker_written() -> bool:
                _, high = watcher.get_watermark_offsets(ck.TopicPartition(topic, 0), timeout=10)
                return bool(high >= 2)

            await wait_until(
                marker_written, "the coordinator's abort marker", timeout=60, interval=0.5
            )
        finally:
            watcher.close()
        # Kafka 4.x (transactions v2) answers the late commit INVALID_TXN_STATE (v1 brokers
        # fence the old epoch: PRODUCER_FENCED); either way the error names the timeout.
        with pytest.raises(
            (InvalidTxnStateError, ProducerFencedError), match="transaction_timeout_ms=1000"
        ) as info:
            await p.commit_transaction()
        if isinstance(info.value, InvalidTxnStateError):
            # Abortable: abort, and the producer goes on with its next transaction.
            await p.abort_transaction()
            async with p.transaction():
                await p.send(topic, b"next")
    want = [b"next"] if isinstance(info.value, InvalidTxnStateError) else []
    assert [
        r.value for r in read_topic(kafka.bootstrap_servers, topic, 30, "read_committed")
    ] == want
