"""Two-phase commit (KIP-939) against real Kafka 4.4, formatted for it: the broker allows 2PC
(``transaction.two.phase.commit.enable``) and offers InitProducerId v6, which 4.4 marks
unstable (``unstable.api.versions.enable``). Its ``transaction.max.timeout.ms`` is 3 s, and
its timed-out transactions are looked for every 0.5 s: an ordinary producer's transaction
dies in seconds there, and a 2PC producer's default 60 s timeout would be refused
(INVALID_TRANSACTION_TIMEOUT) had the broker not taken the 2PC path. What ``read_committed``
readers see is read back with confluent-kafka."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as CTopicPartition

from aioproducer import PreparedTxnState, Producer, TransactionStateError
from aioproducer.errors import InvalidTxnStateError, TransactionalIdAuthorizationFailedError
from aioproducer.testing import KafkaCluster, read_topic

from ..helpers import wait_until

pytestmark = pytest.mark.asyncio

MAX_TIMEOUT_MS = 3000


@pytest.fixture(scope="module")
def kafka_2pc() -> Iterator[KafkaCluster]:
    with KafkaCluster(
        1,
        extra_config={
            "unstable.api.versions.enable": "true",
            "transaction.two.phase.commit.enable": "true",
            "transaction.max.timeout.ms": str(MAX_TIMEOUT_MS),
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
        },
    ) as cluster:
        yield cluster


def tid() -> str:
    return f"txn2pc-{uuid.uuid4().hex[:12]}"


def committed(broker: KafkaCluster, topic: str) -> list[bytes | None]:
    return [r.value for r in read_topic(broker.bootstrap_servers, topic, 60, "read_committed")]


def two_pc(broker: KafkaCluster, transactional_id: str) -> Producer:
    return Producer(
        bootstrap_servers=broker.bootstrap_servers,
        transactional_id=transactional_id,
        transaction_two_phase_commit_enable=True,
    )


async def test_a_broker_that_does_not_allow_2pc_refuses_the_producer() -> None:
    """First in the module (its own broker, stopped before kafka_2pc starts: one JVM at a
    time): Kafka 4.4 with v6 offered but transaction.two.phase.commit.enable off answers
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED, and the error names the setting."""
    with KafkaCluster(1, extra_config={"unstable.api.versions.enable": "true"}) as broker:
        p = two_pc(broker, tid())
        try:
            with pytest.raises(
                TransactionalIdAuthorizationFailedError,
                match=r"transaction\.two\.phase\.commit\.enable=true",
            ):
                await p.start()
        finally:
            await p.close()


async def test_prepare_then_complete_commits_the_prepared_state_and_aborts_another(
    kafka_2pc: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka_2pc)
    async with two_pc(kafka_2pc, tid()) as p:
        idem = p._sender.idem  # type: ignore[union-attr]
        assert idem is not None
        p.begin_transaction()
        first = await p.send(topic, b"committed")
        state = await p.prepare_transaction()
        assert first.done() and (await first).offset == 0  # prepare flushed it
        assert state == PreparedTxnState(idem.producer_id, idem.epoch)
        with pytest.raises(TransactionStateError, match="prepared"):
            await p.send(topic, b"refused")
        # The external manager stored the text form and gives it back.
        await p.complete_transaction(PreparedTxnState.parse(str(state)))

        p.begin_transaction()
        await p.send(topic, b"aborted")
        second = await p.prepare_transaction()
        assert second != state  # transactions v2: each EndTxn bumped the epoch
        await p.complete_transaction(PreparedTxnState())  # the manager decided: abort

        async with p.transaction():
            await p.send(topic, b"after")
    assert committed(kafka_2pc, topic) == [b"committed", b"after"]


def end_offset(broker: KafkaCluster, topic: str) -> int:
    """The high watermark (librdkafka's default, read_committed, would answer the LSO)."""
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": "2pc-watermarks",
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        return int(c.get_watermark_offsets(CTopicPartition(topic, 0), timeout=10)[1])
    finally:
        c.close()


async def test_a_two_phase_transaction_outlives_every_ordinary_timeout(
    kafka_2pc: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    """The 2PC transaction begins first; an ordinary one with the broker's longest timeout
    begins after it and is aborted by the coordinator (its abort marker appears). The 2PC
    one, older than that, is still open: it commits, and its records are read back."""
    topic, control_topic = new_topic(kafka_2pc), new_topic(kafka_2pc)
    async with two_pc(kafka_2pc, tid()) as p:
        p.begin_transaction()
        await p.send(topic, b"slow decision")
        began = time.monotonic()
        state = await p.prepare_transaction()
        async with Producer(
            bootstrap_servers=kafka_2pc.bootstrap_servers,
            transactional_id=tid(),
            transaction_timeout_ms=MAX_TIMEOUT_MS,
        ) as control:
            control.begin_transaction()
            await control.send(control_topic, b"times out")
            await control.flush()
            assert end_offset(kafka_2pc, control_topic) == 1
            # The coordinator aborts it: the abort marker takes offset 1.
            await wait_until(
                lambda: end_offset(kafka_2pc, control_topic) == 2,
                "the coordinator aborted the ordinary transaction",
                timeout=30,
                interval=0.5,
            )
            # Kafka 4.4 (transactions v2) answers a commit of it INVALID_TXN_STATE.
            with pytest.raises(InvalidTxnStateError, match="coordinator aborted it"):
                await control.commit_transaction()
        assert time.monotonic() - began > MAX_TIMEOUT_MS / 1000
        await p.complete_transaction(state)
    assert committed(kafka_2pc, topic) == [b"slow decision"]
    assert committed(kafka_2pc, control_topic) == []


async def test_a_new_producer_of_the_id_aborts_the_prepared_transaction(
    kafka_2pc: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    """Without KIP-939's keepPreparedTxn (Kafka 4.4's coordinator refuses it), a producer
    that starts with the id of one that left a prepared transaction aborts it, as any
    transactional producer does."""
    topic = new_topic(kafka_2pc)
    same = tid()
    first = two_pc(kafka_2pc, same)
    await first.start()
    try:
        first.begin_transaction()
        await first.send(topic, b"left prepared")
        await first.prepare_transaction()
    finally:
        await first.close()
    async with two_pc(kafka_2pc, same) as second, second.transaction():
        await second.send(topic, b"successor")
    assert committed(kafka_2pc, topic) == [b"successor"]
