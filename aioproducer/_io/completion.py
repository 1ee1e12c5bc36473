"""A batch's completion on the event loop: what ``await`` of a record waits on, and the loop
the record handles' Future protocol schedules on (``_core/record_future.py``)."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from typing import Any

from .backend import running_loop


def _cancelled_error(msg: Any) -> BaseException:
    """What a cancelled handle's result() raises (asyncio's, with cancel()'s message)."""
    return asyncio.CancelledError() if msg is None else asyncio.CancelledError(msg)


class Completion:
    """Per pending batch: hands out one private future per ``await`` of one of its records
    (cancelling one awaiting task never cancels another's wait), and one per ``flush()``."""

    __slots__ = ("_done", "_loop", "_records", "_waiters", "native_await")

    def __init__(self, loop: asyncio.AbstractEventLoop, done: Finished) -> None:
        self._loop = loop
        self._done = done
        self.native_await = done.native_await
        #: flush(): resolved when the batch is final.
        self._waiters: list[asyncio.Future[None]] | None = None
        #: await of a record: resolved when the batch is final, or by wake_records().
        self._records: list[asyncio.Future[None]] | None = None

    def wait(self) -> asyncio.Future[None]:
        fut = self._loop.create_future()
        if self._waiters is None:
            self._waiters = [fut]
        else:
            self._waiters.append(fut)
        return fut

    def wait_record(self) -> asyncio.Future[None]:
        fut = self._loop.create_future()
        if self._records is None:
            self._records = [fut]
        else:
            self._records.append(fut)
        return fut

    def wake_records(self) -> None:
        """A record's handle was cancelled, or the batch split: every task awaiting one of its
        records checks its record again (and waits again if it is still pending)."""
        _resolve_all(self._records)
        self._records = None

    def fire(self) -> Finished:
        if self._records is not None:  # checked here: most batches have nobody waiting
            _resolve_all(self._records)
        if self._waiters is not None:
            _resolve_all(self._waiters)
        self._records = self._waiters = None
        return self._done

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    cancelled_error = staticmethod(_cancelled_error)


def _resolve_all(futures: list[asyncio.Future[None]] | None) -> None:
    if futures:
        for f in futures:
            if not f.done():
                f.set_result(None)


class Finished:
    """The completion a final batch keeps: one per producer, holding its loop weakly (a
    compiled handle is not tracked by the cyclic GC, so nothing it reaches may hold the loop)."""

    __slots__ = ("_loop", "native_await")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        #: asyncio's loop (uvloop's too), not the anyio-based one under trio.
        self.native_await = not getattr(loop, "aioproducer_anyio", False)

    def wait(self) -> Any:
        raise AssertionError("a final batch is not waited on")

    wait_record = wait

    def wake_records(self) -> None:
        pass

    def fire(self) -> Finished:
        return self

    def get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop()
        return loop if loop is not None else running_loop()

    cancelled_error = staticmethod(_cancelled_error)


def completions_on(loop: asyncio.AbstractEventLoop) -> Callable[[], Completion]:
    """``new_completion()`` for the accumulator: a producer's batches on its event loop (a
    ``partial``: no Python frame of its own per batch)."""
    return functools.partial(Completion, loop, Finished(loop))


__all__ = ["Completion", "Finished", "completions_on"]
