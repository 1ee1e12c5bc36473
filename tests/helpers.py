"""Waiting on a condition, for tests: poll it up to a bound instead of sleeping a guessed time
and then asserting. On a loaded machine a sleep is too short; on an idle one it is wasted.

A failure says what was awaited (and, with ``state``, what was seen instead). The async
:func:`wait_until` counts time on the running event loop's clock: wall time on a real loop,
virtual time in the simulator (``tests/sim``), trio's clock under trio.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from aioproducer._io.backend import current_library, running_loop

T = TypeVar("T")


def _timed_out(what: str, timeout: float, state: Callable[[], object] | None) -> AssertionError:
    seen = f"; last seen: {state()!r}" if state is not None else ""
    return AssertionError(f"timed out after {timeout:g} s waiting for {what}{seen}")


async def wait_until(
    condition: Callable[[], T | None],
    what: str,
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
    state: Callable[[], object] | None = None,
) -> T:
    """Return ``condition()``'s first truthy value, checked now and then every ``interval``
    seconds (``interval=0``: once per event-loop iteration) for up to ``timeout`` seconds."""
    loop = running_loop()  # the asyncio loop, or under trio the producer's anyio-based one
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if result:
            return result
        if loop.time() >= deadline:
            raise _timed_out(what, timeout, state)
        await _sleep(interval)


async def _sleep(seconds: float) -> None:
    """asyncio's sleep, or trio's under trio (the producer runs on both)."""
    if current_library() == "trio":
        import trio

        await trio.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


def wait_until_sync(
    condition: Callable[[], T | None],
    what: str,
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    state: Callable[[], object] | None = None,
) -> T:
    """:func:`wait_until` for code outside an event loop (blocking helpers, subprocesses)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, state)
        time.sleep(interval)
