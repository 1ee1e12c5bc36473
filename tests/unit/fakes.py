"""Test doubles for the sans-IO core: a completion that records firing, a cluster builder,
an accumulator and ``Producer.send``'s append to an open batch."""

from __future__ import annotations

import random
from typing import Any

from aioproducer._core.accumulator import RecordAccumulator
from aioproducer._core.cluster import BrokerInfo, Cluster, PartitionInfo, TopicInfo, TopicPartition
from aioproducer._core.memory import MemoryPool
from aioproducer._core.producer_batch import RecordFuture
from aioproducer._records.codecs import get_codec


class FakeCompletion:
    native_await = True

    def __init__(self) -> None:
        self.fired = 0
        self.woken = 0

    def wait(self) -> Any:
        raise AssertionError("not awaited in unit tests")

    wait_record = wait

    def wake_records(self) -> None:
        self.woken += 1

    def fire(self) -> FakeCompletion:
        self.fired += 1
        return self

    def get_loop(self) -> Any:
        raise AssertionError("no event loop in unit tests")

    def cancelled_error(self, msg: Any) -> BaseException:
        raise AssertionError("no event loop in unit tests")


def make_cluster(leaders: dict[str, list[int]], brokers: int = 3) -> Cluster:
    """``{"topic": [leader of p0, leader of p1, ...]}``; -1 is leaderless."""
    bs = {i: BrokerInfo(i, "127.0.0.1", 9000 + i) for i in range(1, brokers + 1)}
    topics = {
        t: TopicInfo(
            t,
            [PartitionInfo(t, p, ld, 0) for p, ld in enumerate(ls)],
            [p for p, ld in enumerate(ls) if ld >= 0],
        )
        for t, ls in leaders.items()
    }
    return Cluster(bs, topics)


def make_accumulator(**kw: Any) -> RecordAccumulator:
    rnd = random.Random(1)
    args: dict[str, Any] = dict(
        batch_size=1000,
        codec=get_codec("none"),
        linger_ms=10,
        retry_backoff_ms=100,
        retry_backoff_max_ms=1000,
        delivery_timeout_ms=5000,
        max_request_size=10_000,
        pool=MemoryPool(100_000),
        new_completion=FakeCompletion,
        rand=rnd.random,
    )
    args.update(kw)
    return RecordAccumulator(**args)


def try_append(
    acc: RecordAccumulator,
    tp: TopicPartition,
    timestamp: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]] | None = None,
) -> RecordFuture | None:
    """Append to the partition's open batch, as ``Producer.send`` does; None when there is
    none or it is full."""
    dq = acc.batches.get(tp)
    return dq[-1].try_append(timestamp, key, value, headers, None) if dq else None
