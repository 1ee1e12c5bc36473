"""The shell's event loop under trio: the part of asyncio's loop the shell uses, on anyio.

The shell (``_io/``) is written against a small subset of asyncio's event loop: ``time``,
``call_soon``/``call_later``/``call_at`` (handles with ``cancel()``), ``create_future``,
``create_task``, ``run_in_executor`` and ``create_connection`` with a protocol. On asyncio
(uvloop included) that is the running loop itself, at no cost. Under trio, :class:`AnyioLoop`
provides the same subset:

* one *runner* task per trio run (a trio system task, since a producer may be started and
  closed outside any nursery of the user's) runs callbacks and timers, and owns an anyio task
  group holding every task the shell creates — so nothing outlives the run;
* futures whose ``await`` blocks the trio task on an anyio event (cancelling the awaiting task
  cancels the future, as asyncio does);
* connections on anyio streams (TCP, TLS through ``anyio.streams.tls``), read and written by
  two tasks that feed the unchanged ``BrokerConnection`` protocol;
* big batches compressed in anyio's worker threads.

Callbacks of a future run from the runner, never inside ``set_result()``: the shell relies on
asyncio's rule that a done callback runs later, on a clean stack.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import ssl
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import trio
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSAttribute

log = logging.getLogger("aioproducer")

_PENDING, _DONE, _CANCELLED = 0, 1, 2
_CANCELLED_EXC = (asyncio.CancelledError, trio.Cancelled)


class Handle:
    """A scheduled callback; ``cancel()`` keeps it from running."""

    __slots__ = ("args", "callback", "when")

    def __init__(self, when: float, callback: Callable[..., Any] | None, args: tuple[Any, ...]):
        self.when = when
        self.callback = callback
        self.args = args

    def cancel(self) -> None:
        self.callback, self.args = None, ()

    def cancelled(self) -> bool:
        return self.callback is None


class Future:
    """asyncio's Future protocol on the runner; ``await`` blocks the calling trio task."""

    __slots__ = ("_callbacks", "_event", "_exception", "_loop", "_result", "_state")

    def __init__(self, loop: AnyioLoop) -> None:
        self._loop = loop
        self._state = _PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Any], Any]] = []
        self._event: anyio.Event | None = None

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> Any:
        if self._state == _CANCELLED:
            raise asyncio.CancelledError()
        if self._state == _PENDING:
            raise asyncio.InvalidStateError("result is not set")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        if self._state == _CANCELLED:
            raise asyncio.CancelledError()
        if self._state == _PENDING:
            raise asyncio.InvalidStateError("exception is not set")
        return self._exception

    def set_result(self, result: Any) -> None:
        if self._state != _PENDING:
            raise asyncio.InvalidStateError("the future is done")
        self._result = result
        self._finish(_DONE)

    def set_exception(self, exception: BaseException) -> None:
        if self._state != _PENDING:
            raise asyncio.InvalidStateError("the future is done")
        self._exception = exception
        self._finish(_DONE)

    def cancel(self, msg: Any = None) -> bool:
        if self._state != _PENDING:
            return False
        self._finish(_CANCELLED)
        return True

    def add_done_callback(self, fn: Callable[[Any], Any], *, context: Any = None) -> None:
        if self._state != _PENDING:
            self._loop.call_soon(fn, self)
        else:
            self._callbacks.append(fn)

    def remove_done_callback(self, fn: Callable[[Any], Any]) -> int:
        before = len(self._callbacks)
        self._callbacks = [cb for cb in self._callbacks if cb != fn]
        return before - len(self._callbacks)

    def _finish(self, state: int) -> None:
        self._state = state
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            self._loop.call_soon(cb, self)
        if self._event is not None:
            self._event.set()

    async def wait_done(self) -> None:
        """Wait until done, without cancelling the future when the wait is cancelled."""
        if self._state == _PENDING:
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()

    def __await__(self) -> Generator[Any, None, Any]:
        if self._state == _PENDING:
            try:
                yield from self.wait_done().__await__()
            except BaseException:
                self.cancel()  # asyncio's rule: a cancelled await cancels what it awaits
                raise
        return self.result()


class Task(Future):
    """A coroutine run in the runner's task group, with asyncio's Task interface."""

    __slots__ = ("_coro", "_must_cancel", "_scope", "name")

    def __init__(self, loop: AnyioLoop, coro: Coroutine[Any, Any, Any], name: str | None):
        super().__init__(loop)
        self._coro = coro
        self.name = name
        self._scope: anyio.CancelScope | None = None
        self._must_cancel = False

    def cancel(self, msg: Any = None) -> bool:
        if self._state != _PENDING:
            return False
        self._must_cancel = True
        if self._scope is not None:
            self._scope.cancel()
        return True

    async def run(self) -> None:
        tasks, me = self._loop.tasks, trio.lowlevel.current_task()
        tasks[me] = self
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self._must_cancel:
                    scope.cancel()
                try:
                    result = await self._coro
                except _CANCELLED_EXC:
                    self._finish(_CANCELLED)
                    return
                except BaseException as exc:
                    self._exception = exc
                    self._finish(_DONE)
                    return
            if self._state == _PENDING:
                self._result = result
                self._finish(_DONE)
        finally:
            del tasks[me]


class StreamTransport:
    """asyncio's transport interface over an anyio byte stream, for a ``asyncio.Protocol``:
    a reader task feeds ``data_received``, a writer task sends what ``write()`` buffered."""

    def __init__(self, loop: AnyioLoop, stream: ByteStream, protocol: asyncio.Protocol) -> None:
        self._loop = loop
        self._stream = stream
        self._protocol = protocol
        self._buffer: list[bytes] = []
        self._has_data = anyio.Event()
        self._closing = False
        self._scopes = (anyio.CancelScope(), anyio.CancelScope())

    def start(self) -> None:
        self._loop.spawn(self._read)
        self._loop.spawn(self._write)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._stream.extra(SocketAttribute.raw_socket, default)
        if name == "cipher":
            return self._stream.extra(TLSAttribute.cipher, default)
        if name == "ssl_object":
            return self._stream.extra(TLSAttribute.ssl_object, default)
        return default

    def is_closing(self) -> bool:
        return self._closing

    def write(self, data: bytes) -> None:
        if not self._closing:
            self._buffer.append(data)
            self._has_data.set()

    def abort(self) -> None:
        self._lost(None)

    close = abort

    def _lost(self, exc: BaseException | None) -> None:
        if self._closing:
            return
        self._closing = True
        self._buffer.clear()
        for scope in self._scopes:
            scope.cancel()
        self._loop.spawn(self._close_stream)
        self._loop.call_soon(self._protocol.connection_lost, exc)

    async def _close_stream(self) -> None:
        await anyio.aclose_forcefully(self._stream)

    async def _read(self) -> None:
        with self._scopes[0]:
            try:
                while True:
                    data = await self._stream.receive(262_144)
                    self._protocol.data_received(data)
            except anyio.EndOfStream:
                self._lost(None)
            except Exception as exc:
                self._lost(exc)

    async def _write(self) -> None:
        with self._scopes[1]:
            try:
                while True:
                    if not self._buffer:
                        self._has_data = anyio.Event()
                        await self._has_data.wait()
                        continue
                    buffer = self._buffer
                    data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
                    buffer.clear()
                    await self._stream.send(data)
            except Exception as exc:
                self._lost(exc)


class AnyioLoop:
    """The subset of an asyncio event loop the shell uses, running on anyio under trio."""

    #: How backend.py tells this loop from an asyncio one.
    aioproducer_anyio = True

    def __init__(self) -> None:
        self._ready: deque[Handle] = deque()
        self._timers: list[tuple[float, int, Handle]] = []
        self._seq = itertools.count()
        self._wake: anyio.Event | None = None
        self._group: Any = None  # the runner's task group, once it runs
        self._unstarted: list[Callable[[], Coroutine[Any, Any, Any]]] = []
        #: The shell's tasks by the trio task running each (for current_task()).
        self.tasks: dict[Any, Task] = {}
        self.time: Callable[[], float] = trio.current_time
        trio.lowlevel.spawn_system_task(self._runner, name="aioproducer-anyio-runner")

    # -- scheduling ------------------------------------------------------------------------------

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> Handle:
        handle = Handle(0.0, callback, args)
        self._ready.append(handle)
        if self._wake is not None:
            self._wake.set()
        return handle

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle(when, callback, args)
        timers = self._timers
        heapq.heappush(timers, (when, next(self._seq), handle))
        if timers[0][2] is handle and self._wake is not None:
            self._wake.set()
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Handle:
        return self.call_at(self.time() + delay, callback, *args)

    def create_future(self) -> Future:
        return Future(self)

    def create_task(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> Task:
        task = Task(self, coro, name)
        self.spawn(task.run)
        return task

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        if self._group is None:
            self._unstarted.append(fn)
        else:
            self._group.start_soon(fn)

    def run_in_executor(self, executor: Any, fn: Callable[..., Any], *args: Any) -> Future:
        fut = Future(self)

        async def work() -> None:
            try:
                result = await anyio.to_thread.run_sync(fn, *args)
            except BaseException as exc:
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(result)

        self.spawn(work)
        return fut

    async def create_connection(
        self,
        protocol_factory: Callable[[], asyncio.Protocol],
        host: str,
        port: int,
        *,
        ssl: Any = None,
        server_hostname: str | None = None,
    ) -> tuple[StreamTransport, asyncio.Protocol]:
        try:
            stream: ByteStream = await anyio.connect_tcp(
                host,
                port,
                ssl_context=ssl,
                tls_hostname=server_hostname,
                tls_standard_compatible=False,
            )
        except anyio.BrokenResourceError as exc:
            # A TLS handshake that failed on an alert or EOF: the ssl error is the cause.
            if isinstance(exc.__cause__, (OSError, _SSLError)):
                raise exc.__cause__ from None
            raise ConnectionResetError(str(exc) or "connection reset") from exc
        protocol = protocol_factory()
        transport = StreamTransport(self, stream, protocol)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        transport.start()
        return transport, protocol

    # -- the runner ------------------------------------------------------------------------------

    async def _runner(self) -> None:
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                for fn in self._unstarted:
                    group.start_soon(fn)
                self._unstarted.clear()
                await self._run_callbacks()
        except _CANCELLED_EXC:
            pass  # the trio run ends: every task of the shell was cancelled with the group
        except BaseException:  # never crash the trio run from a system task
            log.exception("aioproducer's anyio runner failed")

    async def _run_callbacks(self) -> None:
        ready, timers = self._ready, self._timers
        while True:
            now = self.time()
            while timers and timers[0][0] <= now:
                handle = heapq.heappop(timers)[2]
                if handle.callback is not None:
                    ready.append(handle)
            for _ in range(len(ready)):
                handle = ready.popleft()
                callback, args = handle.callback, handle.args
                if callback is None:
                    continue
                try:
                    callback(*args)
                except Exception:
                    log.exception("exception in callback %r", callback)
            if ready:
                await anyio.lowlevel.checkpoint()
                continue
            while timers and timers[0][2].callback is None:
                heapq.heappop(timers)
            delay = timers[0][0] - self.time() if timers else math.inf
            if delay <= 0:
                await anyio.lowlevel.checkpoint()
                continue
            self._wake = wake = anyio.Event()
            with anyio.move_on_after(delay):
                await wake.wait()
            self._wake = None

    # -- the waits the shell needs beyond the loop (backend.Ops) ------------------------------

    cancelled = _CANCELLED_EXC

    async def wait_for(self, aw: Any, limit_s: float | None) -> Any:
        """``asyncio.wait_for``: ``aw`` is cancelled after ``limit_s`` s (TimeoutError)."""
        with anyio.move_on_after(math.inf if limit_s is None else limit_s) as scope:
            return await aw
        if scope.cancelled_caught:
            raise asyncio.TimeoutError()
        return None  # pragma: no cover  (the scope ends only by return or by its deadline)

    async def wait_quietly(self, aws: list[Any]) -> None:
        """Wait until every future or task of ``aws`` is done, whatever its outcome."""
        for fut in aws:
            await fut.wait_done()

    async def shielded(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``fn()`` to its end, shielded from cancellation (cleanup that must finish)."""
        with anyio.CancelScope(shield=True):
            await fn()

    async def wait_done(self, fut: Any, limit_s: float | None) -> bool:
        """Wait up to ``limit_s`` s for ``fut`` to be done, never cancelling it: done or not."""
        with anyio.move_on_after(math.inf if limit_s is None else limit_s):
            await fut.wait_done()
        return bool(fut.done())

    def current_task(self) -> Task | None:
        return self.tasks.get(trio.lowlevel.current_task())

    async def to_thread(self, fn: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(fn)

    def make_lock(self) -> anyio.Lock:
        return anyio.Lock()

    async def wait_many(self, futs: list[Any], limit_s: float | None) -> int:
        """Wait up to ``limit_s`` seconds for every future of ``futs``; how many are not done."""
        with anyio.move_on_after(math.inf if limit_s is None else limit_s):
            for fut in futs:
                await fut.wait_done()
        return sum(1 for f in futs if not f.done())


_SSLError = ssl.SSLError
#: trio's own RunVar, not anyio's: read once per new batch (send()'s loop check), it costs a
#: dict lookup.
_LOOP: trio.lowlevel.RunVar[AnyioLoop | None] = trio.lowlevel.RunVar(
    "aioproducer_anyio_loop", default=None
)


def run_loop() -> AnyioLoop:
    """This trio run's loop (made, and its runner started, on first use)."""
    loop = _LOOP.get()
    if loop is None:
        loop = AnyioLoop()
        _LOOP.set(loop)
    return loop


def current_loop() -> AnyioLoop | None:
    """This trio run's loop if it was made, else None (also outside trio)."""
    try:
        return _LOOP.get()
    except RuntimeError:  # not in a trio run
        return None


__all__ = ["AnyioLoop", "Future", "Handle", "StreamTransport", "Task", "current_loop", "run_loop"]
