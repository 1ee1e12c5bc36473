"""A virtual-time asyncio event loop with in-memory transports.

Why not ``looptime`` (PyPI, v0.9, evaluated by reading its source)? It fast-forwards the clock
of a *real* selector loop: it still polls real file descriptors, runs ``run_in_executor`` in
real threads and walks *real* time in small steps while they run, and when nothing is scheduled
(``select(None)``) it idles in real-time steps until an idle timeout injects
``IdleTimeoutError`` into the tasks. It has no in-memory transports, so ``create_connection``
would still need replacing. For the simulator we want the opposite trade-offs: no file
descriptors at all, executor work done inline (deterministic), and a deadlock (nothing ready,
nothing scheduled) reported at once as a failure. That is ~150 lines on top of
``asyncio.BaseEventLoop``, so we own it.

How it works: ``BaseEventLoop._run_once`` asks ``self._selector.select(timeout)`` to wait for
I/O until the next timer; our selector advances the virtual clock by ``timeout`` and returns
no events. ``timeout is None`` means nothing is ready and nothing is scheduled: the simulation
can never progress again, :class:`SimDeadlock`. Busy loops are caught by iteration budgets
(:class:`SimBusyLoop`): too many iterations without the clock moving, or in total.

What tests read and steer here: :attr:`SimLoop.connect_attempts` (every ``create_connection``
call: virtual time, host, port, whatever its outcome), :attr:`SimLoop.executor_jobs` (how many
jobs went to the "worker thread"), :attr:`SimLoop.executor_delay` (how long a job takes, in
virtual seconds) and :attr:`SimLoop.executor_cancel` (called per job: ``True`` cancels the
job's future instead of resolving it, as a shut-down executor does).
"""

from __future__ import annotations

import asyncio
import socket
import time as _time
from collections.abc import Callable
from typing import Any

#: Iterations of the loop without virtual time advancing before we call it a busy loop.
STUCK_ITERATIONS = 50_000
#: Iterations in one run, all told.
MAX_ITERATIONS = 3_000_000
#: Wall-clock seconds one run may take (a guard; a healthy run takes well under a second).
MAX_WALL_S = 60.0


class SimFailure(Exception):
    """The simulation itself cannot go on (deadlock, busy loop)."""


class SimDeadlock(SimFailure):
    pass


class SimBusyLoop(SimFailure):
    pass


class _VirtualSelector:
    """Stands in for ``selectors.BaseSelector``: no file descriptors, only the clock."""

    def __init__(self, loop: SimLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        loop = self._loop
        if timeout is None:
            raise SimDeadlock(
                f"deadlock at t={loop.time():.3f}s: nothing is ready and no timer is scheduled "
                "(some task waits for an event that can never happen)"
            )
        if timeout > 0:
            loop._advance(timeout)
        return []

    def close(self) -> None:
        pass

    def get_map(self) -> dict[Any, Any]:
        return {}


class SimLoop(asyncio.BaseEventLoop):
    """Virtual clock starting at 0.0; ``create_connection`` goes to ``network``."""

    def __init__(self, network: Any = None, executor_delay: Callable[[], float] | None = None):
        super().__init__()
        self._selector = _VirtualSelector(self)
        self._now = 0.0
        self.network = network
        self.iterations = 0
        self._stuck = 0
        self._wall_start = _time.monotonic()
        self.errors: list[dict[str, Any]] = []  # contexts given to the exception handler
        #: Virtual seconds a worker-thread job takes (drawn per job).
        self.executor_delay: Callable[[], float] = executor_delay or (lambda: 0.0)
        #: Per job: True cancels its future instead of resolving it.
        self.executor_cancel: Callable[[], bool] = lambda: False
        self.executor_jobs = 0
        #: Every create_connection call: (virtual time, host, port).
        self.connect_attempts: list[tuple[float, str | None, int | None]] = []
        self.set_exception_handler(self._record_error)
        self.trace: Callable[[str, str], None] | None = None
        self._clock_resolution = 1e-9

    # -- time --------------------------------------------------------------------------------

    def time(self) -> float:
        return self._now

    def _advance(self, dt: float) -> None:
        self._now += dt
        self._stuck = 0

    def _run_once(self) -> None:
        self.iterations += 1
        self._stuck += 1
        if self._stuck > STUCK_ITERATIONS:
            raise SimBusyLoop(
                f"busy loop at t={self._now:.3f}s: {STUCK_ITERATIONS} loop iterations without "
                f"virtual time advancing; ready: {self._describe_ready()}"
            )
        if self.iterations > MAX_ITERATIONS:
            raise SimBusyLoop(f"run exceeded {MAX_ITERATIONS} loop iterations")
        if not self.iterations & 0xFFF and _time.monotonic() - self._wall_start > MAX_WALL_S:
            raise SimBusyLoop(f"run exceeded {MAX_WALL_S}s of wall-clock time")
        super()._run_once()  # type: ignore[misc]  # private in CPython, absent from typeshed

    def _describe_ready(self) -> str:
        names = []
        for h in list(self._ready)[:5]:  # type: ignore[attr-defined]
            cb = getattr(h, "_callback", None)
            owner = getattr(cb, "__self__", None)
            if isinstance(owner, asyncio.Task):
                coro = owner.get_coro()
                frame = getattr(coro, "cr_frame", None)
                where = (
                    f" at {frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}"
                    if frame
                    else ""
                )
                names.append(
                    f"task {owner.get_name()} {getattr(coro, '__qualname__', coro)}{where}"
                )
            else:
                names.append(repr(cb))
        return "; ".join(names) or "nothing"

    # The override takes any callback (typeshed's signature is generic over the callback's
    # argument types, which Python 3.10's typing cannot spell here); behaviour is the base one.
    def call_at(  # type: ignore[override]
        self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        if self.trace is not None:
            mod = getattr(callback, "__module__", "") or ""
            if not mod.startswith("tests.sim"):
                name = getattr(callback, "__qualname__", None) or repr(callback)
                self.trace("timer", f"+{(when - self._now) * 1000:.3f}ms {name}")
        return super().call_at(when, callback, *args, context=context)

    # -- abstract hooks of BaseEventLoop ------------------------------------------------------

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass  # call_soon_threadsafe: nothing to wake, we never block

    def _record_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.errors.append(context)
        if self.trace is not None:
            self.trace(
                "loop-error", str(context.get("message")) + " " + repr(context.get("exception"))
            )

    # -- I/O ------------------------------------------------------------------------------------

    async def create_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        ssl: Any = None,
        server_hostname: str | None = None,
        **kwargs: Any,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        self.connect_attempts.append((self._now, host, port))
        if port is not None and not 0 <= port <= 65535:
            # What the real loop raises (from getaddrinfo/socket.connect).
            raise OverflowError("getsockaddrarg: port must be 0-65535.")
        if ssl is not None:
            raise NotImplementedError("the simulated network has no TLS")
        if self.network is None:
            raise ConnectionRefusedError(111, "Connection refused (no simulated network)")
        conn: tuple[asyncio.Transport, asyncio.BaseProtocol]
        conn = await self.network.connect(self, protocol_factory, host, port)
        return conn

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        """Every name resolves, to itself: the simulated network decides at connect time
        whether anyone is there (as a name resolving to a dead address)."""
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]

    def run_in_executor(  # type: ignore[override]  # generic in typeshed, as call_at above
        self, executor: Any, func: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        """Run ``func`` now, inline; its future resolves after a seeded virtual delay (so the
        producer's compression offload path still interleaves with other events)."""
        fut = self.create_future()
        self.executor_jobs += 1
        delay = self.executor_delay()
        if self.executor_cancel():
            self.call_later(delay, fut.cancel)
            return fut
        try:
            result = func(*args)
        except BaseException as exc:
            self.call_later(delay, _set_exc, fut, exc)
        else:
            self.call_later(delay, _set_result, fut, result)
        return fut

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        return None


def _set_result(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.done():
        fut.set_result(result)


def _set_exc(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class SimTransport(asyncio.Transport):
    """The client's end of a simulated TCP connection (see :class:`tests.sim.net.Link`)."""

    def __init__(self, link: Any, peer: tuple[str, int]) -> None:
        super().__init__()
        self._link = link
        self._peer = peer
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        self._link.client_write(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(bytes(d) for d in list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self.abort()

    def abort(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._link.client_close()

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer
        if name == "sockname":
            return ("10.0.0.254", 40000 + self._link.id)
        return default

    def get_protocol(self) -> Any:
        return self._link.protocol

    def set_protocol(self, protocol: Any) -> None:
        self._link.protocol = protocol
