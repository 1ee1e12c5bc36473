"""Transactions through faults on real Kafka: a consume-transform-produce copy that is exactly
once through a SIGKILL of the transaction coordinator's node (3-node cluster), a commit
through a restart of a partition's leader, and a transaction the coordinator aborts when it
outlives ``transaction_timeout_ms``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from aioproducer import KafkaError, Producer, TopicPartition
from aioproducer._core.transactions import TxnState
from aioproducer.errors import InvalidTxnStateError, ProducerFencedError
from aioproducer.testing import KafkaCluster, read_topic
from aioproducer.testing._admin import confluent

from ..helpers import wait_until

pytestmark = pytest.mark.asyncio
RECORDS = 3000
PARTITIONS = 3


def _consumer(bootstrap: str, topic: str, group: str) -> Any:
    ck = confluent()
    c = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "broker.address.family": "v4",
            "log_level": 0,
        }
    )
    # Assigned, not subscribed: it starts at the group's committed offsets (the transactions').
    c.assign([ck.TopicPartition(topic, p) for p in range(PARTITIONS)])
    return c


async def test_exactly_once_copy_through_a_sigkill_of_the_coordinator(
    kafka_cluster: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    k = kafka_cluster
    source = new_topic(k, partitions=PARTITIONS, replication_factor=3)
    out = new_topic(k, partitions=PARTITIONS, replication_factor=3)
    async with Producer(bootstrap_servers=k.bootstrap_servers) as seed:
        for i in range(RECORDS):
            await seed.send(source, b"rec-%05d" % i, partition=i % PARTITIONS)
    group = f"copy-{uuid.uuid4().hex[:8]}"
    tid = f"copier-{uuid.uuid4().hex[:8]}"
    consumer = _consumer(k.bootstrap_servers, source, group)
    copied: dict[int, int] = {}  # partition -> next offset committed
    killed: int | None = None
    aborted = transactions = consumed = 0
    errors: list[str] = []
    deadline = time.monotonic() + 240
    async with Producer(
        bootstrap_servers=k.bootstrap_servers, transactional_id=tid, linger_ms=5
    ) as p:
        coord = p._sender.txn_coordinator  # type: ignore[union-attr]
        assert coord is not None
        while sum(copied.values()) < RECORDS:
            assert time.monotonic() < deadline, (
                f"copy not done in time: committed {copied}, {transactions} transactions, "
                f"{aborted} aborted, {consumed} records consumed, consumer errors {errors[-3:]}"
            )
            msgs = await asyncio.to_thread(consumer.consume, 250, 1.0)
            errors.extend(str(m.error()) for m in msgs if m.error() is not None)
            msgs = [m for m in msgs if m.error() is None]
            consumed += len(msgs)
            if not msgs:
                continue
            nxt: dict[int, int] = {}
            try:
                async with p.transaction():
                    for m in msgs:
                        await p.send(out, m.value(), partition=m.partition())
                        nxt[m.partition()] = m.offset() + 1
                    await p.send_offsets_to_transaction(
                        {TopicPartition(source, q): o for q, o in nxt.items()}, group
                    )
                    if killed is None and transactions == 3:
                        # Mid-transaction: records written, offsets added; the commit goes to
                        # the coordinator elected after this one dies.
                        killed = coord.coordinators[(1, tid)]
                        k.node(killed).kill()
                transactions += 1
                copied.update(nxt)
            except ProducerFencedError:
                raise
            except KafkaError:
                # Java's contract: a commit or abort that timed out is called again (it
                # resumes); a transaction that failed is aborted, and the copy reads again
                # from the offsets the group committed.
                if await _finish(p):
                    transactions += 1
                    copied.update(nxt)
                    continue
                aborted += 1
                consumer.close()
                consumer = _consumer(k.bootstrap_servers, source, group)
    consumer.close()
    assert killed is not None
    assert transactions > 3
    got = read_topic(k.live_bootstrap_servers, out, 120, "read_committed")
    src = read_topic(k.live_bootstrap_servers, source, 120)
    for q in range(PARTITIONS):
        want = [r.value for r in src if r.partition == q]
        have = [r.value for r in got if r.partition == q]
        assert have == want, f"partition {q}: {len(have)} copied, {len(want)} in the source"


async def _finish(p: Producer) -> bool:
    """End the transaction left by a failed block: True if it committed after all."""
    txn = p._sender.txn  # type: ignore[union-attr]
    assert txn is not None
    for _ in range(5):
        try:
            if txn.state is TxnState.COMMITTING:
                await p.commit_transaction()
                return True
            if txn.state in (TxnState.ABORTING, TxnState.ABORTABLE_ERROR, TxnState.IN_TRANSACTION):
                await p.abort_transaction()
            return False
        except ProducerFencedError:
            raise
        except KafkaError:
            continue
    raise AssertionError(f"the transaction could not be ended: {txn.state}")


async def test_a_broker_restart_mid_commit_loses_and_duplicates_nothing(
    kafka_cluster: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    # The commit flushes records to a partition whose leader restarts (not the coordinator's
    # node): they are retried to the new leader, the commit goes through, each record once.
    k = kafka_cluster
    topic = new_topic(k, partitions=1, replication_factor=3)
    tid = f"restart-{uuid.uuid4().hex[:8]}"
    async with Producer(
        bootstrap_servers=k.bootstrap_servers, transactional_id=tid, linger_ms=50
    ) as p:
        async with p.transaction():
            await p.send(topic, b"warm-up")
        coord = p._sender.txn_coordinator  # type: ignore[union-attr]
        assert coord is not None
        leader = k.leader(topic, 0)
        victim = leader if leader != coord.coordinators[(1, tid)] else None
        if victim is None:  # the leader is the coordinator's node: restart a follower instead
            victim = next(n.node_id for n in k.nodes if n.node_id != leader)
        p.begin_transaction()
        for i in range(500):
            await p.send(topic, b"r%03d" % i)
        commit = asyncio.ensure_future(p.commit_transaction())
        await asyncio.to_thread(k.restart, victim)
        await asyncio.wait_for(commit, 120)
        async with p.transaction():
            await p.send(topic, b"after")
    got = [r.value for r in read_topic(k.live_bootstrap_servers, topic, 120, "read_committed")]
    assert got == [b"warm-up", *(b"r%03d" % i for i in range(500)), b"after"]


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
