from __future__ import annotations

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
