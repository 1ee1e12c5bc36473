"""A producer batch, completed once for all its records.

Java's design: one ``ProduceRequestResult`` per batch, one ``FutureRecordMetadata`` per record
pointing at it. Here a :class:`ProducerBatch` is completed once; each record's handle
(:class:`RecordFuture`, ``record_future.py``) holds its batch and relative offset and builds its
:class:`RecordMetadata` on the first read. The batch's ``completion`` is injected by the asyncio
shell and hands out a private waiter future per ``await`` — so cancelling one awaiting task
never cancels what other records wait on, and a record nobody awaits costs no future at all.

Completion order per batch (Java ``ProducerBatch.completeFutureAndFireCallbacks``): for each
record in append order, the acknowledgement hook (interceptors, then the user callback), then
the waiters are woken and the handles' done callbacks scheduled. A failing hook is logged and
does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .._records.record_batch import RecordBatchBuilder
from .cluster import TopicPartition
from .record_future import (
    Callback,
    Completion,
    CRecordFuture,
    PyRecordFuture,
    RecordFuture,
    RecordMetadata,
)

log = logging.getLogger("aioproducer")


AckHook = Callable[["RecordFuture", RecordMetadata | None, BaseException | None], None]


class ProducerBatch:
    """Records for one partition, sent together. Plain state; time is an argument."""

    __slots__ = (
        "attempts",
        "base_offset",
        "base_sequence",
        "builder",
        "closed",
        "compiled",
        "completion",
        "created_ms",
        "error",
        "final",
        "handles",
        "has_callbacks",
        "log_append_time",
        "maybe_written",
        "n_records",
        "ordinal",
        "piece",
        "producer_epoch",
        "producer_id",
        "record_errors",
        "reserved",
        "retry_at_ms",
        "send_now",
        "tp",
        "watched",
    )

    def __init__(
        self,
        tp: TopicPartition,
        builder: RecordBatchBuilder,
        completion: Completion,
        now_ms: int,
        reserved: int,
    ) -> None:
        self.tp = tp
        self.builder = builder
        # The compiled record buffer also makes the record handles (see try_append).
        self.compiled = hasattr(builder, "append_record")
        self.completion = completion
        self.created_ms = now_ms
        self.retry_at_ms = 0  # not before this time (backoff after a failed attempt)
        self.attempts = 0
        self.handles: list[RecordFuture] = []
        self.reserved = reserved  # bytes held in the memory pool until the batch is done
        self.send_now = False  # send_and_wait: do not wait for linger
        #: A record did not fit: the batch takes no more and is ready without its linger
        #: (Java's closeForRecordAppends).
        self.closed = False
        self.final = False
        self.base_offset = -1
        self.log_append_time = -1
        self.error: BaseException | None = None
        self.record_errors: dict[int, BaseException] | None = None
        # Idempotence: assigned when first drained, kept across retries (KIP-98).
        self.base_sequence = -1
        self.producer_id = -1
        self.producer_epoch = -1
        #: An attempt was written and its outcome is unknown: a failure is POSSIBLY_PERSISTED.
        self.maybe_written = False
        #: The record count, kept once the batch completes and drops its handles.
        self.n_records = 0
        #: Creation order within the accumulator: a partition's deque is kept sorted by
        #: (ordinal, piece), so retries go back in the order their records were sent.
        self.ordinal = 0
        #: A piece of a split batch: its index path among the pieces of the batch of the same
        #: ordinal (a piece of a piece has a longer path); () for a batch never split.
        self.piece: tuple[int, ...] = ()
        #: A handle of the batch has done callbacks (add_done_callback): complete() schedules
        #: them. Without any, completing the batch does not look at them.
        self.watched = False
        #: A record of the batch has a send() callback: complete() calls it. Without any (and
        #: no acknowledgement hook), completing the batch does not read its handles, which are
        #: cold in memory by then (a per-record pass cost 1.3 % of fire-and-forget, measured).
        self.has_callbacks = False

    def try_append(
        self,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None,
        callback: Callback | None,
    ) -> RecordFuture | None:
        """Append a record and return its handle; None when the batch has no room. The
        timestamp None (now) is for the compiled record buffer, which reads the clock
        (``record_batch.CLOCKED_BUFFER``); the pure one takes an int."""
        builder = self.builder
        if self.compiled:  # the record and its (untracked) handle in one C call
            return builder.append_record(  # type: ignore[attr-defined, no-any-return]
                self, timestamp, key, value, headers, callback
            )
        if timestamp is None:
            raise TypeError("the pure record buffer reads no clock: give the timestamp")
        od = builder.try_append(timestamp, key, value, headers)
        if od < 0:
            return None
        if callback is not None:
            self.has_callbacks = True
        handle = PyRecordFuture(
            self,
            od,
            timestamp,
            -1 if key is None else len(key),
            -1 if value is None else len(value),
            callback,
        )
        self.handles.append(handle)
        return handle

    @property
    def record_count(self) -> int:
        return self.n_records if self.final else len(self.handles)

    def is_full(self) -> bool:
        return self.closed or self.builder.is_full()

    def error_for(self, relative_offset: int) -> BaseException | None:
        if self.record_errors and relative_offset in self.record_errors:
            return self.record_errors[relative_offset]
        return self.error

    def complete(
        self,
        base_offset: int,
        log_append_time: int,
        error: BaseException | None,
        on_ack: AckHook | None = None,
        record_errors: dict[int, BaseException] | None = None,
    ) -> bool:
        """Complete every record once; False when the batch was already completed (a late
        response after the delivery timeout, say)."""
        if self.final:
            return False
        self.n_records = len(self.handles)
        self.final = True
        self.base_offset = base_offset if error is None else -1
        self.log_append_time = log_append_time
        self.error = error
        self.record_errors = record_errors
        for h in self.handles if on_ack is not None or self.has_callbacks else ():
            if on_ack is None and h.callback is None:
                continue  # nobody to tell now: awaiting the handle computes its metadata
            exc = self.error_for(h.relative_offset)
            md = None if exc is not None else h._metadata()
            if on_ack is not None:
                try:
                    on_ack(h, md, exc)
                except Exception:
                    log.exception("acknowledgement hook failed")
            callback = h.callback
            if callback is not None:
                h.callback = None  # called once; and no cycle through the handle survives
                try:
                    callback(md, exc)
                except Exception:
                    log.exception(
                        "send() callback failed for %s-%d", self.tp.topic, self.tp.partition
                    )
        # Done: free the record bytes now, and break the batch <-> handles cycle so both go as
        # soon as the caller drops the handles (without it, a cycle waits for the cyclic GC
        # and peak memory grew past buffer_memory: measured 55 MiB of finished batches).
        self.builder.release()
        handles, self.handles = self.handles, []
        # Nobody waits on a final batch (awaiting a done handle returns at once): what the
        # completion leaves holds no event loop. The compiled handles are not tracked by the
        # cyclic GC, so a cycle through handle -> batch -> completion -> loop -> ... -> the
        # handle's holder would never be collected (seen: every simulated world kept alive).
        self.completion = self.completion.fire()
        if self.watched:
            loop = self.completion.get_loop()
            for h in handles:
                h._run_callbacks(loop)
        return True


__all__ = [
    "AckHook",
    "CRecordFuture",
    "Callback",
    "Completion",
    "ProducerBatch",
    "PyRecordFuture",
    "RecordFuture",
    "RecordMetadata",
]
