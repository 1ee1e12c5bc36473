"""Splitting a batch the broker refused as too large (KIP-126).

Its records, read back from the batch's uncompressed buffer, are re-batched into batches of
``batch_size``; each record keeps its handle (the future ``send()`` returned), re-pointed at its
new batch and offset, and whoever awaited the old batch's records awaits the new batches. The
accumulator puts the pieces back at the head of the partition's queue
(``RecordAccumulator.split_and_reenqueue``).
"""

from __future__ import annotations

from collections.abc import Callable

from .._records.record_batch import RecordBatchBuilder
from .idempotence import add_sequence
from .producer_batch import Completion, ProducerBatch


def split_batch(
    batch: ProducerBatch,
    new_builder: Callable[[], RecordBatchBuilder],
    new_completion: Callable[[], Completion],
) -> list[ProducerBatch]:
    """``batch``'s records in new batches (from ``new_builder()``), in order; each new batch
    inherits the old one's creation time, attempts, ordinal and whether it may be written, and
    is told apart from its siblings by its place among them (``piece``)."""
    new: list[ProducerBatch] = []
    current: ProducerBatch | None = None
    for rec, handle in zip(batch.builder.records(), batch.handles, strict=True):
        od = -1
        if current is not None:
            od = current.builder.try_append(rec.timestamp, rec.key, rec.value, list(rec.headers))
        if od < 0:
            current = ProducerBatch(batch.tp, new_builder(), new_completion(), batch.created_ms, 0)
            current.attempts = batch.attempts
            current.ordinal = batch.ordinal
            current.piece = (*batch.piece, len(new))
            current.maybe_written = batch.maybe_written
            current.watched = batch.watched
            current.has_callbacks = batch.has_callbacks
            new.append(current)
            od = current.builder.append(rec.timestamp, rec.key, rec.value, list(rec.headers))
        assert current is not None
        handle.batch = current
        handle.relative_offset = od
        current.handles.append(handle)
    return new


def split_too_large(
    batch: ProducerBatch,
    batch_size: int,
    ratio: float,
    new_builder: Callable[[int, float], RecordBatchBuilder],
    new_completion: Callable[[], Completion],
) -> list[ProducerBatch]:
    """MESSAGE_TOO_LARGE: ``batch``'s records in batches of ``batch_size`` (``new_builder(size,
    compression ratio estimate)``), or of half the refused batch's size when that would not
    split it. The pieces take over the old batch's memory reservation and sequences, and are
    sealed; the old batch is gone for good (``final``)."""
    new = split_batch(batch, lambda: new_builder(batch_size, ratio), new_completion)
    if len(new) == 1:
        # The records fit one batch of batch_size, yet the broker refused them: the topic's
        # max.message.bytes is below batch_size (KAFKA-8350). Halve instead, so each split
        # makes progress, down to single records (which then fail as too large).
        half = batch.builder.uncompressed_size // 2
        new = split_batch(batch, lambda: new_builder(half, 1.0), new_completion)
    new[0].reserved = batch.reserved
    batch.reserved = 0
    batch.final = True
    if batch.base_sequence >= 0:
        # The pieces hold exactly the records the broker refused, in order: they take the
        # original's sequences (Java does the same), so later batches keep theirs.
        seq = batch.base_sequence
        for b in new:
            b.producer_id, b.producer_epoch = batch.producer_id, batch.producer_epoch
            b.base_sequence = seq
            seq = add_sequence(seq, len(b.handles))
    for b in new:
        # Sealed: a piece may end up last in the deque, where send() appends; a new record
        # in it would overrun the sequence range it took over.
        b.builder.seal()
    return new


def relay_completion(old: Completion, new: list[ProducerBatch]) -> None:
    """Fire ``old`` (the split batch's ``flush()`` waiters) once every batch of ``new`` has
    completed; whoever awaits one of its records is woken now, to wait on the record's new
    batch."""
    remaining = [len(new)]

    def fire_one() -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            old.fire()

    for b in new:
        b.completion = _Chained(b.completion, fire_one)
    old.wake_records()


class _Chained:
    __slots__ = ("_after", "_inner")

    def __init__(self, inner: Completion, after: Callable[[], None]) -> None:
        self._inner = inner
        self._after = after

    @property
    def native_await(self) -> bool:
        return self._inner.native_await

    def wait(self) -> object:
        return self._inner.wait()

    def wait_record(self) -> object:
        return self._inner.wait_record()

    def wake_records(self) -> None:
        self._inner.wake_records()

    def fire(self) -> Completion:
        done = self._inner.fire()
        self._after()
        return done

    def get_loop(self) -> object:
        return self._inner.get_loop()

    def cancelled_error(self, msg: object) -> BaseException:
        return self._inner.cancelled_error(msg)


__all__ = ["relay_completion", "split_batch", "split_too_large"]
