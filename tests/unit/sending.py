"""Shared pieces of the sender's tests on the simulator (``test_sender.py``,
``test_sender_failure_paths.py``, ``test_errors.py``): settings, waits, and :func:`sends`, the
common scenario (scripted answers, records sent in rounds, each round awaited)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aioproducer import Producer, RecordFuture
from aioproducer.errors import KafkaError
from aioproducer.metrics import MetricName, value_of
from tests.sim.scenario import batches_of, run, until
from tests.sim.script import ProduceRule, ProduceSeen, Reply
from tests.sim.world import World

#: The settings of Java's SenderTest: no linger, a fixed 100 ms retry backoff.
PLAIN: dict[str, Any] = dict(
    linger_ms=0, retry_backoff_ms=100, retry_backoff_max_ms=100, enable_idempotence=False
)
IDEMPOTENT: dict[str, Any] = {**PLAIN, "enable_idempotence": True}
#: Every partition led by one broker: the partitions share a connection.
ONE_BROKER: dict[str, Any] = {"n_brokers": 1}
#: request_timeout_ms = delivery_timeout_ms: a batch sent late (a retry) expires in flight.
SHORT: dict[str, Any] = dict(request_timeout_ms=1000, delivery_timeout_ms=1000)
#: A retry backoff of half the SHORT delivery timeout.
BACKOFF_500: dict[str, Any] = dict(retry_backoff_ms=500, retry_backoff_max_ms=500)
#: A batch big enough to be compressed in the worker thread.
BIG: dict[str, Any] = dict(compression_type="zstd", batch_size=1 << 20, max_request_size=4 << 20)
A80, B80, C80 = b"a" * 80, b"b" * 80, b"c" * 80  # with batch_size=100: a batch each

#: A record to send: a value for t0-0, or (partition of t0, value).
Send = bytes | tuple[int, bytes]


def now() -> float:
    return asyncio.get_running_loop().time()


def created_ms() -> int:
    """A batch created now has this creation time (the producer's clock: the loop's, in ms)."""
    return int(now() * 1000)


async def settled(futs: Iterable[RecordFuture]) -> None:
    """Wait until every future has its outcome."""
    pending = list(futs)
    await until(lambda: all(f.done() for f in pending), "every record resolved")


async def refreshed_after(w: World, t: float) -> None:
    """Wait for a Metadata request after virtual time ``t`` (the periodic refresh is minutes
    away: one soon after ``t`` was asked for)."""
    await until(lambda: w.cluster.metadata_seen[-1] > t, f"a metadata refresh after {t}", 1.0)


async def sees_the_cluster_now(p: Producer, w: World) -> None:
    """Wait until the producer has read a metadata answer the cluster sent after now (a
    request that arrived later; the producer sends one at a time)."""
    t = now()
    await until(lambda: w.cluster.metadata_seen[-1] > t, f"a metadata request after {t}")
    version = value_of(p.metrics(), "metadata-version", "aioproducer-metrics")
    await until(
        lambda: value_of(p.metrics(), "metadata-version", "aioproducer-metrics") > version,
        "its answer",
    )


def failure(fut: RecordFuture) -> KafkaError:
    exc = fut.exception()
    assert isinstance(exc, KafkaError), exc
    return exc


def headers(w: World, partition: int = 0) -> list[tuple[int, int, int, int]]:
    """(producer id, epoch, base sequence, records) of the partition's batches, as received."""
    return [b.header for b in batches_of(w, partition)]


def pid_of(w: World) -> int:
    """The producer id of the first batch t0-0 received (the producer's)."""
    pid = batches_of(w, 0)[0].producer_id
    assert pid >= 0
    return pid


def answered_before(later: ProduceSeen, earlier: ProduceSeen) -> bool:
    """``earlier``'s answer left the broker before ``later`` arrived. (A broker answers when
    a request arrives: for this to say anything, ``earlier``'s answer must be held back, see
    :func:`slow_answers`.)"""
    return earlier.answered_at is not None and earlier.answered_at < later.at


def slow_answers(delay_s: float = 0.02) -> ProduceRule:
    """Every answer leaves the broker ``delay_s`` late: a request sent before the answer to an
    earlier one arrives while that answer is held back."""
    reply = Reply(delay_s=delay_s)

    def rule(req: ProduceSeen) -> Reply:
        return reply

    return rule


@dataclass
class Sent:
    """What :func:`sends` saw: the world after the run, the futures in send order, and
    ``Producer.metrics()`` once the last round had resolved."""

    world: World
    futs: list[RecordFuture] = field(default_factory=list)
    metrics: dict[MetricName, float] = field(default_factory=dict)

    def offsets(self) -> list[int]:
        return [f.result().offset for f in self.futs]


def sends(
    rules: Sequence[ProduceRule],
    *rounds: Sequence[Send],
    sim: dict[str, Any] | None = None,
    setup: Callable[[World], None] | None = None,
    **config: Any,
) -> Sent:
    """Run a scenario: the produce ``rules`` in place, each round's records sent one after the
    other (no wait between them) and awaited before the next round."""
    futs: list[RecordFuture] = []
    metrics: dict[MetricName, float] = {}

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.extend(rules)
        for records in rounds:
            for rec in records:
                partition, value = rec if isinstance(rec, tuple) else (0, rec)
                futs.append(await p.send("t0", value, partition=partition))
            await settled(futs)
        metrics.update(p.metrics())

    return Sent(run(body, sim=sim, setup=setup, **config), futs, metrics)


def slow_worker(w: World) -> None:
    w.loop.executor_delay = lambda: 0.05  # compressing takes 50 ms (virtual)


async def big_batch_in_the_compressor(p: Producer, w: World) -> list[RecordFuture]:
    """400 records of 1 kB to t0-0: one batch, being compressed in the worker thread."""
    futs = [await p.send("t0", b"%06d" % i + b"x" * 994, partition=0) for i in range(400)]
    await until(lambda: w.loop.executor_jobs, "a job in the worker thread")
    assert w.cluster.produce_seen == []  # compressing: not written yet
    return futs


__all__ = [
    "A80",
    "B80",
    "BACKOFF_500",
    "BIG",
    "C80",
    "IDEMPOTENT",
    "ONE_BROKER",
    "PLAIN",
    "SHORT",
    "Send",
    "Sent",
    "answered_before",
    "big_batch_in_the_compressor",
    "created_ms",
    "failure",
    "headers",
    "now",
    "pid_of",
    "refreshed_after",
    "sees_the_cluster_now",
    "sends",
    "settled",
    "slow_answers",
    "slow_worker",
]
