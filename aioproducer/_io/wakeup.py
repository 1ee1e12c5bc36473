"""The sender's wake-up: an event the sender sleeps on with a timeout, set from anywhere."""

from __future__ import annotations

import asyncio

from .backend import running_loop

#: "No deadline" in the sender's millisecond timeouts (about 12 days).
FOREVER = 1 << 30


class Wakeup:
    """Wakes the sender: ``set()`` from anywhere; ``wait(timeout)`` in the sender only."""

    __slots__ = ("_covered", "_deadline", "_flag", "_fut", "_loop")

    def __init__(self) -> None:
        self._loop = running_loop()
        self._fut: asyncio.Future[None] | None = None
        self._flag = False
        self._deadline = 0.0  # loop time the sender sleeps until, while it sleeps
        #: Loop time the next turn is due, set by a turn run outside the sender's task
        #: (Sender.turn_now) that covered every wake-up set before it; -1: none since.
        self._covered = -1.0

    def covered(self, timeout_s: float) -> None:
        """A sender turn just ran outside the sender's task and found the next one due in
        ``timeout_s``: a wake-up set before it has nothing left to do (the sender sleeps on,
        until that deadline), and a sleep past that deadline is cut short to it. Any later
        ``set()`` makes the sender take its turn as usual."""
        due = self._loop.time() + timeout_s
        self._covered = due
        fut = self._fut
        if fut is not None and not fut.done() and due < self._deadline:
            fut.set_result(None)

    def set(self) -> None:
        self._flag = True
        self._covered = -1.0
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def wait(self, timeout_s: float) -> None:
        deadline = self._loop.time() + timeout_s
        while True:
            if self._flag:
                self._flag = False
            else:
                await self._sleep(deadline)
            covered, self._covered = self._covered, -1.0
            if covered < 0 or covered <= self._loop.time():
                return
            deadline = covered  # woken for what a turn outside the task already did

    async def _sleep(self, deadline: float) -> None:
        self._fut = fut = self._loop.create_future()
        self._deadline = deadline
        handle = self._loop.call_at(deadline, _resolve, fut)
        try:
            await fut
        finally:
            handle.cancel()
            self._fut = None
            self._flag = False


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


__all__ = ["FOREVER", "Wakeup"]
