"""buffer_memory_allocation_strategy="incremental" (Java 4.4) on the simulated cluster: the
pool is charged 16 KiB chunks as batches grow, so memory follows the data buffered, not the
number of partitions written to; a batch short of memory grows in place (waiting for memory
when the pool is short) instead of being cut, and the records keep their order."""

from __future__ import annotations

import pytest

from aioproducer import KafkaTimeoutError, Producer
from aioproducer._core.cluster import TopicPartition
from aioproducer.metrics import value_of
from tests.sim.scenario import log_of, run
from tests.sim.world import World
from tests.unit.sending import slow_answers

KIB = 1024


@pytest.mark.parametrize("strategy", ["full", "incremental"])
def test_memory_follows_the_data_not_the_partitions(strategy: str) -> None:
    used: list[int] = []
    batches: list[int] = []

    async def body(p: Producer, w: World) -> None:
        futs = [await p.send("t0", b"%d" % i + b"x" * 99, partition=i) for i in range(3)]
        used.append(p._pool.used)  # one small record per partition
        futs += [await p.send("t0", b"%04d" % i + b"y" * 996, partition=0) for i in range(100)]
        used.append(p._pool.used)  # ~100 KB more in partition 0
        acc = p._accumulator
        assert acc is not None
        batches.append(len(acc.batches[TopicPartition("t0", 0)]))
        await p.flush()
        assert all(f.done() and f.exception() is None for f in futs)
        used.append(p._pool.used)

    w = run(
        body,
        batch_size=256 * KIB,
        linger_ms=60_000,
        buffer_memory_allocation_strategy=strategy,
    )
    if strategy == "incremental":
        # 3 x one chunk; then partition 0's batch grown to the chunks its ~101 KB need.
        assert used[:2] == [3 * 16 * KIB, 2 * 16 * KIB + 112 * KIB]
    else:
        assert used[:2] == [3 * 256 * KIB, 3 * 256 * KIB]
    assert batches == [1] and used[2] == 0  # one batch for partition 0, grown in place
    log = log_of(w, 0)
    assert log[0] == b"0" + b"x" * 99 and log[1:] == [b"%04d" % i + b"y" * 996 for i in range(100)]


def test_a_batch_short_of_memory_waits_for_it_and_keeps_record_order() -> None:
    """The pool (64 KiB) holds less than the records sent to one partition (200 KB): each
    extension waits for a completed batch's memory, and every record lands in order."""
    values = [b"%04d" % i + b"z" * 996 for i in range(200)]
    waited: list[float] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(slow_answers(0.05))
        futs = [await p.send("t0", v, partition=0) for v in values]
        await p.flush()
        assert [f.result().offset for f in futs] == list(range(200))
        waited.append(value_of(p.metrics(), "bufferpool-wait-time-ns-total"))
        assert p._pool.used == 0

    w = run(
        body,
        batch_size=64 * KIB,
        buffer_memory=64 * KIB,
        buffer_memory_allocation_strategy="incremental",
    )
    assert log_of(w, 0) == values
    assert waited[0] > 0


def test_an_extension_not_granted_within_max_block_ms_times_out_naming_the_partition() -> None:
    sent: list[int] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(slow_answers(10.0))
        futs = []
        with pytest.raises(KafkaTimeoutError, match=r"t0-0 within max_block_ms=200"):
            for i in range(100):
                # one at a time: the records sent before the timeout are kept
                futs.append(await p.send("t0", b"%04d" % i + b"w" * 996, partition=0))  # noqa: PERF401
        sent.append(len(futs))
        assert [(await f).offset for f in futs] == list(range(len(futs)))

    w = run(
        body,
        batch_size=64 * KIB,
        buffer_memory=48 * KIB,
        max_block_ms=200,
        buffer_memory_allocation_strategy="incremental",
    )
    [n] = sent
    assert 0 < n < 100
    assert len(log_of(w, 0)) == n


def test_send_many_grows_batches_in_place_too() -> None:
    """send_many's per-record step (``_put``) hands a record short of memory to the same slow
    path as send(): the records land in order, in batches grown chunk by chunk."""
    values = [b"%04d" % i + b"m" * 996 for i in range(150)]

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(slow_answers(0.02))
        futs = await p.send_many("t0", values, partition=0)
        await p.flush()
        assert [f.result().offset for f in futs] == list(range(150))
        assert p._pool.used == 0

    w = run(
        body,
        batch_size=64 * KIB,
        buffer_memory=80 * KIB,
        buffer_memory_allocation_strategy="incremental",
    )
    assert log_of(w, 0) == values
    # 150 KB in batches of up to 64 KiB: grown in place, not cut at each 16 KiB chunk.
    part = w.cluster.partition("t0", 0)
    assert part is not None and len(part.batches) <= 4
