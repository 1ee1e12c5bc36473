"""Waiting on a condition, for tests: poll it up to a bound instead of sleeping a guessed time
and then asserting. On a loaded machine a sleep is too short; on an idle one it is wasted.

A failure says what was awaited (and, with ``state``, what was seen instead). The async
:func:`wait_until` counts time on the running event loop's clock: wall time on a real loop,
virtual time in the simulator (``tests/sim``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

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
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if result:
            return result
        if loop.time() >= deadline:
            raise _timed_out(what, timeout, state)
        await asyncio.sleep(interval)


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
