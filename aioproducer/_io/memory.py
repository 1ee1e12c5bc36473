"""Waiting for buffer memory: Java's ``BufferPool.allocate`` for the event loop.

The pool itself (``_core/memory.py``) is pure bookkeeping: sizes granted in FIFO order to
waiters it is handed. This module is the waiting: a ``send()`` that finds the pool short
waits, up to ``max_block_ms``, for the sender to complete batches and give memory back.
"""

from __future__ import annotations

from collections.abc import Callable

from .._core.memory import MemoryPool
from ..errors import KafkaTimeoutError
from .backend import running_loop


async def allocate(
    pool: MemoryPool,
    size: int,
    deadline_ms: int,
    max_block_ms: int,
    on_exhausted: Callable[[], None],
    what: str,
) -> None:
    """Take ``size`` bytes from ``pool``, waiting until ``deadline_ms`` (loop time, ms) when
    it is short; ``on_exhausted`` is called once when it has to wait (every queued batch
    becomes sendable then). Raises :class:`KafkaTimeoutError` naming ``what`` on timeout; a
    cancelled wait gives back what it may have been granted."""
    if pool.try_allocate(size):
        return
    loop = running_loop()
    waiter = loop.create_future()
    pool.enqueue(size, waiter)
    if waiter.done():
        return
    on_exhausted()
    timed_out = False

    def on_timeout() -> None:
        nonlocal timed_out
        if not waiter.done():
            timed_out = True
            waiter.cancel()

    handle = loop.call_at(deadline_ms / 1000, on_timeout)
    started = loop.time()
    try:
        await waiter
    except BaseException:  # cancelled: by the timeout, or our task (asyncio's or trio's)
        if waiter.cancelled() or not waiter.done():
            pool.withdraw(waiter)
        else:  # granted, but our task was cancelled: give the bytes back
            pool.release(size)
        if timed_out:
            pool.exhausted_total += 1
            raise KafkaTimeoutError(
                f"failed to allocate {size} bytes for {what} within "
                f"max_block_ms={max_block_ms} (buffer_memory={pool.total} is in use)"
            ) from None
        raise
    finally:
        handle.cancel()
        pool.wait_time_ns_total += int((loop.time() - started) * 1e9)


__all__ = ["allocate"]
