"""The sender's wake-up: an event the sender sleeps on with a timeout, set from anywhere."""

from __future__ import annotations

import asyncio

from .backend import running_loop

#: "No deadline" in the sender's millisecond timeouts (about 12 days).
FOREVER = 1 << 30


class Wakeup:
    """Wakes the sender: ``set()`` from anywhere; ``wait(timeout)`` in the sender only."""

    __slots__ = ("_deadline", "_flag", "_fut", "_loop")

    def __init__(self) -> None:
        self._loop = running_loop()
        self._fut: asyncio.Future[None] | None = None
        self._flag = False
        self._deadline = 0.0  # loop time the sender sleeps until, while it sleeps

    def within(self, timeout_s: float) -> None:
        """Wake the sender if it sleeps past ``timeout_s`` from now (a sender turn run outside
        its task computed that deadline)."""
        fut = self._fut
        if fut is not None and not fut.done() and self._loop.time() + timeout_s < self._deadline:
            self.set()

    def set(self) -> None:
        self._flag = True
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def wait(self, timeout_s: float) -> None:
        if self._flag:
            self._flag = False
            return
        self._fut = fut = self._loop.create_future()
        self._deadline = self._loop.time() + timeout_s
        handle = self._loop.call_at(self._deadline, _resolve, fut)
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
