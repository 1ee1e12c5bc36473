from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from aioproducer._core.memory import MemoryPool


class W:
    def __init__(self) -> None:
        self.granted = False
        self.cancelled = False

    def done(self) -> bool:
        return self.granted or self.cancelled

    def set_result(self, _: None) -> None:
        assert not self.done()
        self.granted = True


def test_fifo_hand_off_without_thundering_herd() -> None:
    pool = MemoryPool(100)
    assert pool.try_allocate(100)
    a, b, c = W(), W(), W()
    pool.enqueue(60, a)
    pool.enqueue(30, b)
    pool.enqueue(10, c)
    assert not pool.try_allocate(1)  # someone queued first: no barging
    pool.release(50)
    assert not a.granted and not b.granted  # a (60) is first and not satisfiable: b waits
    pool.release(10)
    assert a.granted and not b.granted and pool.available == 0
    pool.release(40)
    assert b.granted and c.granted and pool.available == 0


def test_withdraw_after_timeout_lets_the_next_waiter_through() -> None:
    pool = MemoryPool(100)
    assert pool.try_allocate(90)
    big, small = W(), W()
    pool.enqueue(50, big)
    pool.enqueue(5, small)
    assert not small.granted
    big.cancelled = True
    assert pool.withdraw(big)
    assert small.granted and pool.available == 5


def test_a_granted_waiter_is_not_withdrawn() -> None:
    pool = MemoryPool(10)
    w = W()
    pool.enqueue(10, w)
    assert w.granted and not pool.withdraw(w)
    pool.release(10)
    assert pool.available == 10


def test_over_release_and_oversized_requests_are_bugs() -> None:
    pool = MemoryPool(10)
    with pytest.raises(AssertionError):
        pool.release(1)
    with pytest.raises(ValueError, match="11 bytes"):
        pool.try_allocate(11)


class PoolMachine(RuleBasedStateMachine):
    """Bytes are conserved and waiters are served in order, whatever the interleaving."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = MemoryPool(100)
        self.held: list[int] = []
        self.queue: list[tuple[int, W]] = []

    @rule(size=st.integers(1, 100))
    def allocate(self, size: int) -> None:
        if self.pool.try_allocate(size):
            self.held.append(size)
        else:
            w = W()
            self.pool.enqueue(size, w)
            self.queue.append((size, w))

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if self.held:
            size = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
            self.pool.release(size)

    @rule(data=st.data())
    def give_up(self, data: st.DataObject) -> None:
        waiting = [(s, w) for s, w in self.queue if not w.done()]
        if waiting:
            _size, w = waiting[data.draw(st.integers(0, len(waiting) - 1))]
            w.cancelled = True
            assert self.pool.withdraw(w)

    @invariant()
    def conserved(self) -> None:
        for size, w in self.queue:
            if w.granted:
                self.held.append(size)
        self.queue = [(s, w) for s, w in self.queue if not w.done()]
        assert self.pool.available + sum(self.held) == 100
        # Granting is FIFO: if the oldest waiter is not served, it did not fit.
        if self.queue:
            assert self.queue[0][0] > self.pool.available


TestPoolMachine = PoolMachine.TestCase


def test_full_allocation_strategy_reserves_a_batch_size_when_a_batch_opens() -> None:
    """buffer_memory_allocation_strategy="full" (Java's default): the first record of a batch
    takes batch_size from the pool, later ones nothing, until the batch completes."""
    from aioproducer import ConfigError, ProducerConfig
    from aioproducer._core.cluster import TopicPartition

    from .fakes import make_accumulator

    assert ProducerConfig().buffer_memory_allocation_strategy == "full"
    assert ProducerConfig.from_properties({"buffer.memory.allocation.strategy": "full"})
    other: Any = "chunked"
    with pytest.raises(ConfigError, match="buffer_memory_allocation_strategy='chunked'"):
        ProducerConfig(buffer_memory_allocation_strategy=other)
    pool = MemoryPool(10_000)
    acc = make_accumulator(batch_size=1000, pool=pool)
    tp = TopicPartition("t", 0)
    reserve = acc.reservation_for(20)
    assert reserve == 1000 and pool.try_allocate(reserve)
    acc.append_new_batch(tp, 0, None, b"x" * 20, None, None, 0, reserve, waited=False)
    (batch,) = acc.batches[tp]
    for _ in range(5):
        assert batch.try_append(0, None, b"y" * 20, None, None) is not None
    assert pool.used == 1000  # charged once, in full, whatever the batch holds
    acc.done(batch)
    assert pool.used == 0


def test_incremental_allocation_reserves_chunks_as_a_batch_grows_up_to_batch_size() -> None:
    """buffer_memory_allocation_strategy="incremental" (Java 4.4): a batch takes 16 KiB
    chunks from the pool as its records need them, not batch_size up front; a record beyond
    its memory is refused with ``_need`` set (more memory, not a new batch), and once given
    the chunk the same batch takes it; it stops at batch_size and gives everything back."""
    from aioproducer import ProducerConfig
    from aioproducer._core.accumulator import CHUNK_BYTES
    from aioproducer._core.cluster import TopicPartition

    from .fakes import make_accumulator

    cfg = ProducerConfig.from_properties({"buffer.memory.allocation.strategy": "incremental"})
    assert cfg.buffer_memory_allocation_strategy == "incremental"
    pool = MemoryPool(1 << 20)
    acc = make_accumulator(batch_size=65536, pool=pool, incremental=True, max_request_size=1 << 20)
    tp = TopicPartition("t", 0)
    reserve = acc.reservation_for(1000)
    assert reserve == CHUNK_BYTES and pool.try_allocate(reserve)
    acc.append_new_batch(tp, 0, None, b"x" * 1000, None, None, 0, reserve, waited=False)
    (batch,) = acc.batches[tp]
    appended, extensions = 1, 0
    while True:
        handle = batch.try_append(0, None, b"y" * 1000, None, None)
        if handle is not None:
            appended += 1
            continue
        need = batch.builder._need
        if not need:
            break  # full: batch_size reached
        extra = acc.extension_for(batch, need)
        assert extra == CHUNK_BYTES  # one chunk at a time for 1 KB records
        assert pool.try_allocate(extra)
        acc.give_memory(batch, extra)
        extensions += 1
    assert extensions == 3 and batch.reserved == 65536 == pool.used
    assert batch.builder.estimated_size() <= 65536 and batch.builder._need == 0
    assert appended == (65536 - 61) // 1009  # every 1 KB record of a full-size batch
    assert list(acc.batches[tp]) == [batch]  # one batch, grown
    acc.done(batch)
    assert pool.used == 0


def test_incremental_allocation_of_a_small_batch_size_or_a_large_record() -> None:
    """A batch_size under 16 KiB is the chunk (incremental is then full); a record larger
    than batch_size takes its whole batch, as with full allocation."""
    from .fakes import make_accumulator

    acc = make_accumulator(batch_size=4096, incremental=True)
    assert acc.chunk == 4096 and acc.reservation_for(10) == 4096
    big = make_accumulator(batch_size=65536, incremental=True, max_request_size=1 << 20)
    assert big.reservation_for(16384) == 32768  # two chunks
    assert big.reservation_for(200_000) == 200_000 + 61  # the record's own batch, whole
