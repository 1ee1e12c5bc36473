"""Which async library the producer runs on, and the waits that differ between them.

The shell (this package) is written against a subset of asyncio's event loop. On asyncio
(any loop: the default one, uvloop, anyio's asyncio backend) :func:`running_loop` returns the
running loop itself, so the asyncio path costs what it always did. Under trio it returns this
trio run's :class:`~aioproducer._io.anyio_loop.AnyioLoop`, which provides the same subset on
anyio. Anywhere else it raises :class:`UnsupportedAsyncLibraryError`.

Beyond the loop, the shell needs a few waits (``asyncio.wait_for``, ``gather``, ``wait``, a
shielded wait, cleanup shielded from cancellation) and the class of a cancellation:
:func:`ops_for` gives them for a loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, cast

from ..errors import UnsupportedAsyncLibraryError

#: The async libraries the producer runs on.
SUPPORTED = "asyncio (the default loop, uvloop, anyio's asyncio backend) and trio"

#: The exceptions a cancelled task sees, on every backend in use (for ``except`` clauses of
#: the shell's coroutines; trio's ``Cancelled`` joins once a trio run uses the producer).
CANCELLED: tuple[type[BaseException], ...] = (asyncio.CancelledError,)
#: ``anyio_loop.current_loop`` once a trio run has used the producer: the fast way back to a
#: run's loop (sniffio is not needed again).
_current_anyio_loop: Callable[[], Any] | None = None


class Ops(Protocol):
    """The waits of the shell that asyncio's loop does not provide as methods."""

    cancelled: tuple[type[BaseException], ...]

    async def wait_for(self, aw: Any, limit_s: float | None) -> Any: ...

    async def wait_quietly(self, aws: list[Any]) -> None: ...

    async def shielded(self, fn: Callable[[], Awaitable[None]]) -> None: ...

    async def wait_done(self, fut: Any, limit_s: float | None) -> bool: ...

    async def wait_many(self, futs: list[Any], limit_s: float | None) -> int: ...

    def current_task(self) -> Any: ...

    async def to_thread(self, fn: Callable[[], Any]) -> Any: ...

    def make_lock(self) -> Any: ...


class AsyncioOps:
    """:class:`Ops` on asyncio."""

    cancelled: tuple[type[BaseException], ...] = (asyncio.CancelledError,)

    async def wait_for(self, aw: Any, limit_s: float | None) -> Any:
        return await asyncio.wait_for(aw, limit_s)

    async def wait_quietly(self, aws: list[Any]) -> None:
        """Wait until every task or future of ``aws`` is done, whatever its outcome."""
        await asyncio.gather(*aws, return_exceptions=True)

    async def shielded(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn()`` to its end, cleanup that must finish: a cancellation meanwhile is
        raised once it has (anyio's cancel scopes cancel a task again at every await inside
        them, so one ``except CancelledError`` is not enough)."""
        task = asyncio.ensure_future(fn())
        cancelled = False
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError()
        task.result()

    async def wait_done(self, fut: Any, limit_s: float | None) -> bool:
        """Wait up to ``limit_s`` seconds for ``fut`` to be done, never cancelling it: done or not.
        Raises the caller's cancellation."""
        try:
            await asyncio.wait_for(asyncio.shield(fut), limit_s)
        except asyncio.TimeoutError:
            return False
        except asyncio.CancelledError:
            if fut.cancelled():
                return True  # the awaited task itself was cancelled (by someone else)
            raise
        except Exception:
            pass  # done, with an error: its owner reports it
        return True

    async def wait_many(self, futs: list[Any], limit_s: float | None) -> int:
        """Wait up to ``limit_s`` seconds for every future of ``futs``; how many are not done."""
        _, not_done = await asyncio.wait(futs, timeout=limit_s)
        return len(not_done)

    def current_task(self) -> Any:
        return asyncio.current_task()

    async def to_thread(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.to_thread(fn)

    def make_lock(self) -> Any:
        """An ``async with`` lock for the running library."""
        return asyncio.Lock()


ASYNCIO_OPS = AsyncioOps()


def ops_for(loop: Any) -> Ops:
    """The waits for ``loop`` (the loop :func:`running_loop` returned)."""
    if getattr(loop, "aioproducer_anyio", False):
        return cast(Ops, loop)
    return ASYNCIO_OPS


def current_library() -> str:
    """The async library running the current task, as sniffio names it, or "no async library"."""
    try:
        import sniffio
    except ImportError:  # without sniffio, neither trio nor anyio is installed
        return "no async library"
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return "no async library"


def running_loop() -> asyncio.AbstractEventLoop:
    """The loop of the running task (see the module's docstring);
    :class:`UnsupportedAsyncLibraryError` outside the supported libraries."""
    global CANCELLED, _current_anyio_loop
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    if _current_anyio_loop is not None:  # trio was seen: its loop, when in its run
        loop = _current_anyio_loop()
        if loop is not None:
            return cast(asyncio.AbstractEventLoop, loop)
    library = current_library()
    if library == "trio":
        try:
            from .anyio_loop import AnyioLoop, current_loop, run_loop
        except ImportError as exc:
            raise UnsupportedAsyncLibraryError(
                f"the producer needs anyio to run under trio ({exc}): "
                "pip install 'aioproducer[trio]'"
            ) from None
        CANCELLED = AnyioLoop.cancelled
        _current_anyio_loop = current_loop
        return cast(asyncio.AbstractEventLoop, run_loop())
    raise UnsupportedAsyncLibraryError(
        f"the producer was started under {library}; it runs on {SUPPORTED}"
    )


def current_task() -> Any:
    """The running task as the shell's loop knows it (asyncio's, or the AnyioLoop's), or None."""
    loop = running_loop_or_none()
    return None if loop is None else ops_for(loop).current_task()


class Later:
    """A background job after a delay (a token refresh, a TGT renewal): a timer on the shell's
    loop, then the coroutine its ``start`` returns as a task, unless the last one still runs.
    :meth:`cancel` stops whichever is pending."""

    __slots__ = ("task", "timer")

    def __init__(self) -> None:
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    def after(self, delay_s: float, start: Callable[[], Coroutine[Any, Any, None] | None]) -> None:
        """In ``delay_s`` seconds, call ``start()`` (replacing a timer still pending)."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer = running_loop().call_later(delay_s, self._fire, start)

    def _fire(self, start: Callable[[], Coroutine[Any, Any, None] | None]) -> None:
        self.timer = None
        coro = start()
        if coro is None:
            return
        if self.task is not None and not self.task.done():
            coro.close()  # the last one is still at work
            return
        self.task = running_loop().create_task(coro)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()


def running_loop_or_none() -> asyncio.AbstractEventLoop | None:
    """:func:`running_loop`, or None outside the supported libraries."""
    try:
        return running_loop()
    except UnsupportedAsyncLibraryError:
        return None


__all__ = [
    "ASYNCIO_OPS",
    "CANCELLED",
    "SUPPORTED",
    "AsyncioOps",
    "Later",
    "Ops",
    "current_library",
    "current_task",
    "ops_for",
    "running_loop",
    "running_loop_or_none",
]
