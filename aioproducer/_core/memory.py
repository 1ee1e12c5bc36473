"""The memory pool: a byte budget shared by every buffered batch (Java's ``BufferPool``).

Rules: allocations are granted in FIFO order; memory released goes straight to the oldest
waiter whose request it can satisfy (a hand-off, so no waiter wakes only to find the memory
taken: no thundering herd). A waiter is any object with ``done()`` and ``set_result(None)``
(the asyncio shell passes a future). Nothing here blocks or reads a clock.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol


class Waiter(Protocol):
    def done(self) -> bool: ...

    def set_result(self, result: None, /) -> None: ...


class MemoryPool:
    __slots__ = ("_waiters", "available", "exhausted_total", "total", "wait_time_ns_total")

    def __init__(self, total: int) -> None:
        self.total = total
        self.available = total
        self._waiters: deque[tuple[int, Waiter]] = deque()
        #: Java's ``bufferpool-wait-time-ns-total`` and ``buffer-exhausted-total``: the time
        #: senders spent waiting for memory, and the waits that ended in a timeout (kept by
        #: the shell, which owns the clock).
        self.wait_time_ns_total = 0
        self.exhausted_total = 0

    def try_allocate(self, size: int) -> bool:
        """Take ``size`` bytes now if nobody is queued before us and they are free."""
        if size > self.total:
            raise ValueError(f"cannot allocate {size} bytes from a pool of {self.total}")
        if not self._waiters and self.available >= size:
            self.available -= size
            return True
        return False

    def enqueue(self, size: int, waiter: Waiter) -> None:
        """Queue a request; ``waiter.set_result(None)`` is called once the bytes are granted."""
        self._waiters.append((size, waiter))
        self._grant()

    def withdraw(self, waiter: Waiter) -> bool:
        """A waiter gave up (timeout, cancellation): remove it from the queue.

        Returns False when it was no longer queued, i.e. its bytes were already granted: the
        caller must then :meth:`release` them.
        """
        for i, (_size, w) in enumerate(self._waiters):
            if w is waiter:
                del self._waiters[i]
                self._grant()  # the next waiter may now be satisfiable
                return True
        return False

    def release(self, size: int) -> None:
        self.available += size
        if self.available > self.total:
            raise AssertionError(f"memory pool over-released: {self.available} > {self.total}")
        self._grant()

    def _grant(self) -> None:
        waiters = self._waiters
        while waiters and self.available >= waiters[0][0]:
            size, w = waiters.popleft()
            if w.done():  # cancelled meanwhile; its owner will withdraw() and find it gone
                continue
            self.available -= size
            w.set_result(None)

    @property
    def queued(self) -> int:
        """Number of senders waiting for memory (``ready`` treats the pool as exhausted)."""
        return len(self._waiters)

    @property
    def used(self) -> int:
        return self.total - self.available
