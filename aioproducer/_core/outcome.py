"""What to do with a batch after one attempt: the response rules, as values.

Java's ``Sender.completeBatch`` and ``canRetry`` and the idempotent producer's sequence rules
(``TransactionManager.handleFailedBatch``, KIP-360) decide, per batch and attempt, whether to
complete it, retry it, split it or fail it, and what that does to the producer's sequence state.
Here those decisions are three pure functions that read the batch, the idempotence state and
the time, change nothing, and return a :class:`Decision`; the sender applies it (see
``Sender._apply``). Every branch is a unit test of these functions (tests/unit/test_outcome.py).

- :func:`partition_error`: the broker answered the batch's partition with an error code.
- :func:`failed_attempt`: the attempt failed without a broker answer for the partition (the
  connection broke, the request timed out or was never sent, the answer lacked the partition),
  or a broker error was already turned into an exception: retry if allowed, else fail.
- :func:`failure`: the batch fails for good (also on expiry, close and fatal errors): stamp the
  error with whether the records may be in the log, and ask for an epoch bump if the batch held
  sequence numbers.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass
from typing import Any, Protocol

from .._broker_errors import (
    DuplicateSequenceNumberError,
    MessageTooLargeError,
    OutOfOrderSequenceNumberError,
    UnknownProducerIdError,
)
from ..errors import (
    BrokerResponseError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    PersistedStatus,
    for_code,
)
from .cluster import TopicPartition
from .idempotence import IdempotenceManager

_DUPLICATE_SEQUENCE = DuplicateSequenceNumberError.code
_OUT_OF_ORDER_SEQUENCE = OutOfOrderSequenceNumberError.code
_UNKNOWN_PRODUCER_ID = UnknownProducerIdError.code
_MESSAGE_TOO_LARGE = MessageTooLargeError.code


def _fenced(exc: BaseException) -> bool:
    """Another producer took over this producer id and epoch: fatal (Java)."""
    return isinstance(exc, BrokerResponseError) and exc.producer_fenced


def _maybe_persisted(exc: BaseException) -> bool:
    """A broker error after which the batch may have been appended anyway."""
    return isinstance(exc, BrokerResponseError) and exc.maybe_persisted


class Action(enum.Enum):
    COMPLETE = "complete"  # acknowledged (a duplicate: written before, offset unknown)
    RETRY = "retry"  # back at the head of its partition's queue
    SPLIT = "split"  # MESSAGE_TOO_LARGE: re-enqueued as smaller batches (KIP-126)
    FAIL = "fail"  # its records fail with ``error``
    IGNORE = "ignore"  # a late outcome for a batch already failed (expired while in flight)


class Batch(Protocol):
    """What the rules read of a batch (a :class:`ProducerBatch`); they change none of it."""

    tp: TopicPartition
    attempts: int
    created_ms: int
    maybe_written: bool
    final: bool
    base_sequence: int
    producer_epoch: int
    ordinal: int

    @property
    def record_count(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Retry:
    """The retry policy: ``retries``, ``delivery_timeout_ms``, whether the producer is
    closing without waiting (then nothing is retried), and whether it is transactional (Java's
    ``canRetry`` asks the transaction manager: a transactional producer does not bump its
    epoch locally, so a batch whose sequence state the broker lost fails, and the abort that
    follows bumps the epoch)."""

    retries: int
    delivery_timeout_ms: int
    closing: bool = False
    transactional: bool = False

    def allows(self, batch: Batch, now: int) -> bool:
        """Java's ``canRetry``: attempts left, inside the delivery timeout, not closing."""
        return (
            batch.attempts < self.retries
            and now < batch.created_ms + self.delivery_timeout_ms
            and not self.closing
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What the sender does with one batch, in this order: set ``maybe_written``; forget the
    partition's sequences; acknowledge the sequence; ask for a bump; refresh metadata; then
    the action; then stop the producer if ``fatal``."""

    action: Action
    #: The batch's ``maybe_written`` from now on (an attempt whose outcome is unknown may have
    #: written it).
    maybe_written: bool
    #: FAIL: the error for its records, stamped with the persisted status. RETRY: the
    #: attempt's error, for the log. COMPLETE: None.
    error: BaseException | None = None
    #: FAIL: per-record errors (KIP-467), stamped likewise.
    record_errors: dict[int, BaseException] | None = None
    #: The broker holds the batch's sequence range: advance the partition's next sequence.
    ack_sequence: bool = False
    #: Ask for an epoch bump that re-sequences the partition's queued batches from this
    #: creation ordinal on (``True``: the broker lost the producer's state, from the first).
    bump: tuple[int, bool] | None = None
    #: The batch was kept in an older epoch and the broker says it was not written: it and
    #: the partition's queued batches take new sequences in the current epoch.
    forget_sequences: bool = False
    #: RETRY of a sequenced batch: the partition's in-flight accounting must know.
    failed_attempt: bool = False
    #: RETRY at once, without the retry backoff (a leader the response named, KAFKA-15415).
    skip_backoff: bool = False
    refresh_metadata: bool = False
    #: Stop the producer with this error (fenced).
    fatal: BaseException | None = None


def with_status(error: BaseException, maybe_written: bool) -> BaseException:
    """A copy of ``error`` for one batch, carrying whether its records may be in the log."""
    if not isinstance(error, KafkaError):
        return error
    err = copy.copy(error)
    err.persisted_status = (
        PersistedStatus.POSSIBLY_PERSISTED if maybe_written else PersistedStatus.NOT_PERSISTED
    )
    return err


def _merge(a: tuple[int, bool] | None, b: tuple[int, bool] | None) -> tuple[int, bool] | None:
    """Two bump requests for one partition, as ``IdempotenceManager.request_bump`` merges them."""
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), a[1] or b[1])


def failure(
    batch: Batch,
    error: BaseException,
    idem: IdempotenceManager | None,
    record_errors: dict[int, BaseException] | None = None,
    *,
    maybe_written: bool | None = None,
    bump: tuple[int, bool] | None = None,
) -> Decision:
    """The batch fails with ``error``, whatever the path (a broker error, an expiry in the
    queue or in flight, a missing answer, close, a fatal error).

    A batch that was given a sequence leaves a gap the broker would refuse every later batch
    of the partition for: Java bumps the epoch (KIP-360) in this case, and so do we once
    nothing is in flight. A batch already failed (final) is left as it is."""
    written = batch.maybe_written if maybe_written is None else maybe_written
    if batch.final:
        return Decision(Action.FAIL, written, error, record_errors, bump=bump)
    if idem is not None and batch.base_sequence >= 0:
        bump = _merge(bump, (batch.ordinal, False))
    return Decision(
        Action.FAIL,
        written,
        with_status(error, written),
        {i: with_status(e, written) for i, e in record_errors.items()} if record_errors else None,
        bump=bump,
    )


def failed_attempt(
    batch: Batch,
    exc: BaseException,
    policy: Retry,
    now: int,
    idem: IdempotenceManager | None,
    record_errors: dict[int, BaseException] | None = None,
    *,
    written: bool = True,
    force_retriable: bool = False,
    skip_backoff: bool = False,
    maybe_written: bool | None = None,
    bump: tuple[int, bool] | None = None,
    forget_sequences: bool = False,
) -> Decision:
    """An attempt failed with ``exc``: retry the batch if the error and the policy allow,
    else fail it (Java's ``canRetry``).

    ``written``: the request left the client, so an attempt that ended without a clear answer
    (a broken connection, a timeout, a broker error that may follow an append) may have
    written the batch. ``maybe_written``, ``bump``, ``forget_sequences``: what the caller's
    rule already decided for this batch."""
    mw = batch.maybe_written if maybe_written is None else maybe_written
    if written and (
        isinstance(exc, (KafkaConnectionError, KafkaTimeoutError)) or _maybe_persisted(exc)
    ):
        mw = True
    if batch.final:  # expired while in flight; the late outcome is ignored
        return Decision(Action.IGNORE, mw, bump=bump, forget_sequences=forget_sequences)
    retriable = force_retriable or (isinstance(exc, KafkaError) and exc.retriable)
    refresh = isinstance(exc, KafkaError) and exc.invalid_metadata
    sequenced = idem is not None and batch.base_sequence >= 0 and not forget_sequences
    if retriable and policy.allows(batch, now):
        return Decision(
            Action.RETRY,
            mw,
            exc,
            bump=bump,
            forget_sequences=forget_sequences,
            failed_attempt=sequenced,
            skip_backoff=skip_backoff,
            refresh_metadata=refresh,
        )
    d = failure(
        batch,
        exc,
        idem if sequenced else None,
        record_errors,
        maybe_written=mw,
        bump=bump,
    )
    return Decision(
        d.action,
        d.maybe_written,
        d.error,
        d.record_errors,
        bump=d.bump,
        forget_sequences=forget_sequences,
        refresh_metadata=refresh,
    )


def partition_error(
    batch: Batch,
    code: int,
    message: str | None,
    record_errors: list[tuple[int, str | None]] | None,
    policy: Retry,
    now: int,
    idem: IdempotenceManager | None,
    *,
    leader_moved: bool = False,
) -> Decision:
    """The broker answered the batch's partition with error ``code`` (not 0).

    ``record_errors``: the answer's (batch index, message) pairs (KIP-467).
    ``leader_moved``: the answer named a new leader for the partition (KIP-951), so a retry
    goes there at once."""
    tp = batch.tp
    detail = f"{tp.topic}-{tp.partition}" + (f": {message}" if message else "")
    exc = for_code(code, detail)
    if idem is not None and batch.base_sequence >= 0:
        if code == _DUPLICATE_SEQUENCE:  # written before: success, offset unknown
            return Decision(Action.COMPLETE, batch.maybe_written, ack_sequence=True)

        def retry(**rule: Any) -> Decision:
            """The sequencing rules' retries: whatever the error's own class says."""
            return failed_attempt(batch, exc, policy, now, idem, force_retriable=True, **rule)

        if code == _OUT_OF_ORDER_SEQUENCE and batch.producer_epoch != idem.epoch:
            # A batch kept in an older epoch by a bump because it may have been written: the
            # broker says it was not, nor any batch after it. Sequence them all in the current
            # epoch and retry.
            return retry(written=False, maybe_written=False, forget_sequences=True)
        if code == _OUT_OF_ORDER_SEQUENCE and not idem.is_next_expected(tp, batch.base_sequence):
            # Not head of line: an earlier batch failed; retry after it, same sequence.
            return retry()
        if code == _UNKNOWN_PRODUCER_ID and policy.transactional:
            # Not retried (Java's TransactionManager.canRetry): the transaction must abort,
            # and its abort bumps the epoch (KIP-360) before the next one.
            return failure(batch, exc, idem, bump=(0, True))
        if code == _UNKNOWN_PRODUCER_ID:
            # The broker lost the producer's state (KIP-360): the whole partition restarts in
            # a bumped epoch once nothing is in flight; the batch is re-sequenced and retried.
            return retry(bump=(0, True))
        if code == _OUT_OF_ORDER_SEQUENCE:
            # Head of line, yet out of order: the broker refused it (not persisted, Java's
            # behaviour); bump the epoch and re-sequence the partition's batches after it.
            return failure(batch, exc, idem, bump=(batch.ordinal, False))
    if _fenced(exc):
        fenced = for_code(code, f"{detail}: the producer was fenced")
        d = failure(batch, fenced, idem)
        return Decision(d.action, d.maybe_written, d.error, bump=d.bump, fatal=fenced)
    if (
        code == _MESSAGE_TOO_LARGE
        and batch.record_count > 1
        and not batch.final
        and not batch.maybe_written
    ):
        # Split (KIP-126). Not a batch an earlier attempt may have written: its pieces could
        # not be recognised as resends, so it fails, possibly persisted.
        return Decision(Action.SPLIT, batch.maybe_written)
    errors: dict[int, BaseException] | None = (
        {i: for_code(code, f"{detail}: {m}") for i, m in record_errors} if record_errors else None
    )
    return failed_attempt(batch, exc, policy, now, idem, errors, skip_backoff=leader_moved)


__all__ = [
    "Action",
    "Batch",
    "Decision",
    "Retry",
    "failed_attempt",
    "failure",
    "partition_error",
    "with_status",
]
