"""The per-record handle ``send()`` returns, and the :class:`RecordMetadata` it resolves to.

Java's design: one ``ProduceRequestResult`` per batch, one ``FutureRecordMetadata`` per record
pointing at it. A handle holds its batch and relative offset; its metadata is built on the
first read, once, and kept. A handle has two representations with the same behaviour: the
compiled ``_speedups.RecordHandle`` (made by the compiled record buffer, not tracked by the
cyclic GC; its success path — ``done``, ``result``, ``exception``, ``await`` of a written
record — is in C, ``_records/_handle.c``) and :class:`PyRecordFuture` (the pure-Python path).
The methods below are both's; the compiled type calls them for every other case.

The handle implements the asyncio Future protocol, so ``asyncio.isfuture()`` is true and
``asyncio.wait``, ``as_completed``, ``gather``, ``shield``, ``wait_for`` and ``wrap_future``
take it as they take a future:

* ``done()``, ``result()``, ``exception()`` — ``result()`` raises the record's error;
  while pending both raise ``RuntimeError`` (asyncio's ``InvalidStateError`` there).
* ``add_done_callback(fn, *, context=None)`` / ``remove_done_callback(fn)`` — ``fn(handle)`` is
  scheduled on the event loop (never called inline) once the record is acknowledged, failed, or
  the handle cancelled; at once when already done.
* ``cancel(msg=None)`` — **detaches this handle only**, as cancelling an aiokafka future does:
  the record stays in the producer and is delivered or fails as usual (``flush()`` and
  ``close()`` wait for it; ``send()``'s ``callback`` and the interceptors see its real outcome).
  The handle is then done and cancelled: ``result()`` raises ``asyncio.CancelledError``, its
  done callbacks run, and tasks awaiting it get ``CancelledError``. Returns False when the
  handle is already done. (Java's ``Future.cancel`` refuses instead; asyncio's timeouts and
  ``gather`` rely on cancel() working.)
* ``get_loop()`` — the producer's event loop.

Everything that needs the event loop (waiting, scheduling callbacks, ``CancelledError``) goes
through the batch's :class:`Completion`, provided by the shell (``_io/completion.py``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .._records import record_batch as _batch_impl

if TYPE_CHECKING:
    from .producer_batch import ProducerBatch


class RecordMetadata(NamedTuple):
    """Where a record was written. ``offset`` is -1 with ``acks=0``; the sizes are -1 for a
    None key or value. A named tuple, as aiokafka's is: built once per record, cheaply."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    serialized_key_size: int
    serialized_value_size: int


_new_metadata = tuple.__new__  # RecordMetadata(...) without its Python-level __new__


class Completion(Protocol):
    """The event-loop side of a batch, provided by the shell (``_io/completion.py``)."""

    @property
    def native_await(self) -> bool:
        """Its waiters are asyncio futures, which the compiled handle's ``await`` yields to
        the task itself (under trio they are the anyio-based loop's, awaited in Python)."""

    def wait(self) -> Any:
        """An awaitable resolved when the batch is final (``flush()``)."""

    def wait_record(self) -> Any:
        """An awaitable resolved when the batch is final, or earlier by :meth:`wake_records`
        (a handle cancelled, the batch split): whoever awaits a record checks again."""

    def wake_records(self) -> None: ...

    def fire(self) -> Completion:
        """The batch is final: resolve every waiter. Returns the completion the final batch
        keeps, which holds no strong reference to the event loop (see ``complete()``)."""

    def get_loop(self) -> Any: ...

    def cancelled_error(self, msg: Any) -> BaseException: ...


Callback = Callable[[RecordMetadata | None, BaseException | None], Any]
DoneCallback = Callable[[Any], object]


class _RecordFutureMethods:
    """What a record's handle does, shared by its two representations."""

    if not TYPE_CHECKING:  # mypy reads the attributes below; the subclasses have the slots
        __slots__ = ()
    else:
        batch: ProducerBatch
        relative_offset: int
        timestamp: int
        key_size: int
        value_size: int
        callback: Callback | None
        _md: RecordMetadata | None
        _callbacks: list[tuple[DoneCallback, contextvars.Context | None]] | None
        _cancelled: tuple[Any] | None

    #: asyncio.isfuture() looks for this attribute; a handle never yields itself to a task
    #: (``await`` yields a private future per awaiting task), so it stays False.
    _asyncio_future_blocking = False

    def done(self) -> bool:
        return self._cancelled is not None or self.batch.final

    def cancelled(self) -> bool:
        return self._cancelled is not None

    def exception(self) -> BaseException | None:
        if self._cancelled is not None:
            raise self.batch.completion.cancelled_error(self._cancelled[0])
        if not self.batch.final:
            raise RuntimeError("the record is not acknowledged yet")
        return self.batch.error_for(self.relative_offset)

    def result(self) -> RecordMetadata:
        exc = self.exception()
        if exc is not None:
            raise exc
        return self._md or self._metadata()

    def _metadata(self) -> RecordMetadata:
        """The record's metadata, once its batch is final (built once, then kept)."""
        md = self._md
        if md is None:
            b = self.batch
            tp = b.tp
            offset = -1 if b.base_offset < 0 else b.base_offset + self.relative_offset
            ts = b.log_append_time if b.log_append_time >= 0 else self.timestamp
            self._md = md = _new_metadata(
                RecordMetadata,
                (tp[0], tp[1], offset, ts, self.key_size, self.value_size),
            )
        return md

    def __await__(self) -> Generator[Any, None, RecordMetadata]:
        while not self.done():
            yield from self.batch.completion.wait_record().__await__()
        return self.result()

    # -- the rest of the asyncio Future protocol -------------------------------------------------

    def cancel(self, msg: Any = None) -> bool:
        if self.done():
            return False
        self._cancelled = (msg,)
        completion = self.batch.completion
        self._run_callbacks(completion.get_loop())
        completion.wake_records()
        return True

    def add_done_callback(
        self, fn: DoneCallback, *, context: contextvars.Context | None = None
    ) -> None:
        if self.done():
            self.get_loop().call_soon(fn, self, context=context)
            return
        if self._callbacks is None:
            self._callbacks = [(fn, context)]
            self.batch.watched = True
        else:
            self._callbacks.append((fn, context))

    def remove_done_callback(self, fn: DoneCallback) -> int:
        callbacks = self._callbacks
        if not callbacks:
            return 0
        kept = [(f, ctx) for f, ctx in callbacks if f != fn]
        self._callbacks = kept or None
        return len(callbacks) - len(kept)

    def get_loop(self) -> Any:
        return self.batch.completion.get_loop()

    def _run_callbacks(self, loop: Any) -> None:
        """Schedule the done callbacks, once (the handle is done)."""
        callbacks, self._callbacks = self._callbacks, None
        if callbacks:
            for fn, ctx in callbacks:
                loop.call_soon(fn, self, context=ctx)

    def __repr__(self) -> str:
        tp = self.batch.tp
        if not self.done():
            state = "pending"
        elif self._cancelled is not None:
            state = "cancelled"
        else:
            exc = self.exception()
            state = f"error={exc!r}" if exc is not None else "done"
        return f"<RecordFuture {tp.topic}-{tp.partition} {state}>"


class PyRecordFuture(_RecordFutureMethods):
    """The handle ``send()`` returns: ``await`` it for the record's :class:`RecordMetadata`."""

    __slots__ = (
        "_callbacks",
        "_cancelled",
        "_md",
        "batch",
        "callback",
        "key_size",
        "relative_offset",
        "timestamp",
        "value_size",
    )

    def __init__(
        self,
        batch: ProducerBatch,
        relative_offset: int,
        timestamp: int,
        key_size: int,
        value_size: int,
        callback: Callback | None,
    ) -> None:
        self.batch = batch
        self.relative_offset = relative_offset
        self.timestamp = timestamp
        self.key_size = key_size
        self.value_size = value_size
        self.callback = callback
        self._md = None
        self._callbacks = None
        self._cancelled = None


#: The shared methods the compiled type takes as they are, and (second) those it has in C for
#: the success path, attached under ``_py_*`` names for it to call in every other case.
_SHARED = (
    "_asyncio_future_blocking",
    "cancelled",
    "cancel",
    "add_done_callback",
    "remove_done_callback",
    "get_loop",
    "_run_callbacks",
    "__repr__",
)
_FALLBACKS = {
    "_py_result": "result",
    "_py_exception": "exception",
    "_py_metadata": "_metadata",
    "_py_await": "__await__",
}


def _compiled_handle() -> type | None:
    """The compiled handle type with the shared methods attached, or None."""
    try:
        from .._records import _speedups
    except ImportError:
        return None
    handle_type = _speedups.RecordHandle
    methods = _RecordFutureMethods.__dict__
    for name in _SHARED:
        setattr(handle_type, name, methods[name])
    for name, shared in _FALLBACKS.items():
        setattr(handle_type, name, methods[shared])
    _speedups.bind_handles(RecordMetadata)
    return handle_type  # type: ignore[no-any-return]


CRecordFuture = _compiled_handle()

if TYPE_CHECKING:
    RecordFuture = PyRecordFuture
else:
    #: The handle type ``send()`` returns (the one the selected record buffer makes).
    RecordFuture = PyRecordFuture if _batch_impl.IMPLEMENTATION == "python" else CRecordFuture


__all__ = [
    "CRecordFuture",
    "Callback",
    "Completion",
    "PyRecordFuture",
    "RecordFuture",
    "RecordMetadata",
]
