"""A batch's completion on the event loop: what ``await`` of a record waits on."""

from __future__ import annotations

import asyncio


class Completion:
    """Per batch: hands out one private future per ``await`` of one of its records."""

    __slots__ = ("_loop", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: list[asyncio.Future[None]] | None = None

    def wait(self) -> asyncio.Future[None]:
        fut = self._loop.create_future()
        if self._waiters is None:
            self._waiters = [fut]
        else:
            self._waiters.append(fut)
        return fut

    def fire(self) -> None:
        waiters, self._waiters = self._waiters, None
        if waiters:
            for f in waiters:
                if not f.done():
                    f.set_result(None)


__all__ = ["Completion"]
