"""The transactional producer's state (KIP-98, KIP-447, KIP-890): a table of allowed moves.

Rules:
* The states are Java's ``TransactionManager`` states. Every change goes through
  :meth:`TransactionManager.transition`, checked against ``TRANSITIONS`` (data, not branches).
  FATAL_ERROR can be entered from anywhere and never left: the producer must be closed.
* A misuse by the caller (send or commit outside a transaction, two transactions at once)
  raises :class:`TransactionStateError` and changes nothing.
* ABORTABLE_ERROR: a record of the transaction failed (or an offset commit, or a partition
  could not be added). Nothing more is sent in the transaction; commit raises the error;
  abort is the way out, after which the producer goes on.
* Partitions join a transaction before its first batch to them is sent. With transactions v1
  that is an AddPartitionsToTxn request, batched per sender turn (the partitions seen since the
  last request go in one); with v2 (KIP-890: Produce v12, EndTxn v5) the broker adds them when
  it writes the batch, and every EndTxn bumps the producer epoch, answering the new one.
* EndTxn is sent only for a transaction that touched the broker (a partition or offsets were
  added): an empty transaction commits and aborts locally, as in Java.
* Two-phase commit (KIP-939, ``transaction_two_phase_commit_enable``): ``prepare_transaction()``
  flushes, then moves IN_TRANSACTION -> PREPARED and answers the transaction's
  :class:`PreparedTxnState` (producer id and epoch). A prepared transaction takes no records and
  ends only by commit or abort; ``complete_transaction(state)`` commits when ``state`` is the
  prepared one and aborts otherwise. The coordinator never aborts a 2PC transaction for its
  age, so no timeout hint is given.
* Coordinator errors are values: ``txn_errors.classify`` says whether to look up the
  coordinator again, retry after a backoff, abort, or stop the producer.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from .._broker_errors import (
    OperationNotAttemptedError,
)
from ..errors import (
    TransactionStateError,
)
from .cluster import TopicPartition
from .txn_errors import ErrorKind, classify


class TxnState(enum.Enum):
    UNINITIALIZED = "uninitialized"
    INITIALIZING = "initializing"
    READY = "ready"
    IN_TRANSACTION = "in transaction"
    PREPARED = "prepared transaction"
    COMMITTING = "committing"
    ABORTING = "aborting"
    ABORTABLE_ERROR = "abortable error"
    FATAL_ERROR = "fatal error"


S = TxnState
_MOVES: dict[TxnState, frozenset[TxnState]] = {
    S.UNINITIALIZED: frozenset({S.INITIALIZING}),
    S.INITIALIZING: frozenset({S.READY, S.UNINITIALIZED}),
    S.READY: frozenset({S.IN_TRANSACTION}),
    S.IN_TRANSACTION: frozenset({S.COMMITTING, S.ABORTING, S.ABORTABLE_ERROR, S.PREPARED}),
    S.PREPARED: frozenset({S.COMMITTING, S.ABORTING}),
    S.COMMITTING: frozenset({S.READY, S.ABORTABLE_ERROR}),
    S.ABORTING: frozenset({S.READY}),
    S.ABORTABLE_ERROR: frozenset({S.ABORTING, S.ABORTABLE_ERROR}),
    S.FATAL_ERROR: frozenset(),
}
#: From each state, the states it may move to: the moves above, and FATAL_ERROR from every
#: state but itself (Java's ``isTransitionValid``).
TRANSITIONS: dict[TxnState, frozenset[TxnState]] = {
    s: t if s is S.FATAL_ERROR else t | {S.FATAL_ERROR} for s, t in _MOVES.items()
}


@dataclass(frozen=True, slots=True)
class PreparedTxnState:
    """A transaction prepared for two-phase commit (KIP-939, Java's ``PreparedTxnState``): the
    producer id and epoch it was written with. An external transaction manager stores
    ``str(state)`` (``"<producer id>:<epoch>"``, ``""`` for no transaction) with its own
    decision, and gives it back, read with :meth:`parse`, to
    :meth:`Producer.complete_transaction`, which commits only a transaction with this state."""

    producer_id: int = -1
    epoch: int = -1

    def __post_init__(self) -> None:
        pid, epoch = self.producer_id, self.epoch
        for name, value in (("producer_id", pid), ("epoch", epoch)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"PreparedTxnState.{name} must be an int, got {value!r}")
        if not ((pid >= 0 and 0 <= epoch <= 32767) or (pid == -1 and epoch == -1)):
            raise ValueError(
                f"PreparedTxnState({pid}, {epoch}): the producer id and epoch must both be "
                ">= 0 (epoch <= 32767), or both -1 (no transaction)"
            )

    @classmethod
    def parse(cls, text: str) -> PreparedTxnState:
        """The state :func:`str` wrote: ``"<producer id>:<epoch>"``, or ``""`` for none."""
        if not isinstance(text, str):
            raise TypeError(f"PreparedTxnState.parse() takes a str, got {text!r}")
        if not text:
            return cls()
        pid, sep, epoch = text.partition(":")
        try:
            if not sep:
                raise ValueError
            return cls(int(pid), int(epoch))
        except ValueError:
            raise ValueError(
                f"not a prepared transaction state: {text!r} (expected '<producer id>:<epoch>')"
            ) from None

    @property
    def has_transaction(self) -> bool:
        return self.producer_id != -1

    def __str__(self) -> str:
        return f"{self.producer_id}:{self.epoch}" if self.has_transaction else ""


_PREPARED_ONLY_ENDS = (
    "the transaction is prepared (two-phase commit): it takes no more records; end it with "
    "complete_transaction(), commit_transaction() or abort_transaction()"
)


class TransactionManager:
    """The transaction's state, pure: time is an argument, nothing here does IO."""

    def __init__(self, transactional_id: str, timeout_ms: int, two_pc: bool = False) -> None:
        self.transactional_id = transactional_id
        self.timeout_ms = timeout_ms
        #: Two-phase commit (KIP-939): transactions may be prepared, and never time out.
        self.two_pc = two_pc
        #: The prepared transaction's state (PREPARED only).
        self.prepared: PreparedTxnState | None = None
        self.state = TxnState.UNINITIALIZED
        #: The error behind ABORTABLE_ERROR or FATAL_ERROR.
        self.last_error: BaseException | None = None
        #: KIP-890 transactions v2: partitions join implicitly, EndTxn bumps the epoch.
        self.v2 = False
        #: Partitions known to the coordinator in this transaction (v1: added; v2: written to).
        self.partitions: set[TopicPartition] = set()
        #: Partitions with a batch queued that the next AddPartitionsToTxn request adds (v1).
        self.pending: set[TopicPartition] = set()
        #: Partitions of the AddPartitionsToTxn request in flight (v1).
        self.adding: set[TopicPartition] = set()
        #: A group's offsets were added (AddOffsetsToTxn): EndTxn is needed even without data.
        self.offsets_added = False
        #: When the transaction began (for the transaction-timeout hint in errors).
        self.began_ms = 0
        #: The partitions' sequences have a gap (UNKNOWN_PRODUCER_ID, a failed sequenced
        #: batch): the abort must bump the epoch (v1: InitProducerId with the current id and
        #: epoch, KIP-360; v2: EndTxn bumps it anyway).
        self.epoch_bump_required = False
        self.transactions = 0

    # -- the table ---------------------------------------------------------------------------

    def transition(self, new: TxnState, error: BaseException | None = None) -> None:
        if new not in TRANSITIONS[self.state] and new is not self.state:
            raise AssertionError(
                f"invalid transaction state change {self.state.value} -> {new.value}"
            )
        self.state = new
        if error is not None:
            self.last_error = error

    @property
    def in_transaction(self) -> bool:
        return self.state is TxnState.IN_TRANSACTION

    def _misuse(self, what: str) -> TransactionStateError:
        extra = ""
        if self.state is TxnState.ABORTABLE_ERROR:
            extra = f"; the transaction must be aborted: {self.last_error}"
        elif self.state is TxnState.FATAL_ERROR:
            extra = f"; the producer must be closed: {self.last_error}"
        return TransactionStateError(
            f"{what} (transactional_id={self.transactional_id!r}, state: {self.state.value}{extra})"
        )

    def check_can_send(self) -> None:
        """Raise the error that refuses a record now (None: a record may be sent)."""
        if self.state is TxnState.IN_TRANSACTION:
            return
        if self.state is TxnState.ABORTABLE_ERROR and isinstance(self.last_error, BaseException):
            raise self._misuse("cannot send in a failed transaction") from self.last_error
        if self.state is TxnState.PREPARED:
            raise self._misuse(_PREPARED_ONLY_ENDS)
        raise self._misuse(
            "a transactional producer sends only inside a transaction: call "
            "begin_transaction() or use 'async with producer.transaction():'"
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def begin_init(self) -> None:
        self.transition(TxnState.INITIALIZING)

    def initialized(self, v2: bool) -> None:
        self.v2 = v2
        self.transition(TxnState.READY)

    def begin(self, now_ms: int) -> None:
        """``begin_transaction()``: READY -> IN_TRANSACTION, or a :class:`TransactionStateError`."""
        if self.state is not TxnState.READY:
            if self.state in (TxnState.IN_TRANSACTION, TxnState.PREPARED):
                raise self._misuse("a transaction is already in progress")
            raise self._misuse("cannot begin a transaction now")
        self.transition(TxnState.IN_TRANSACTION)
        self.partitions.clear()
        self.pending.clear()
        self.adding.clear()
        self.offsets_added = False
        self.began_ms = now_ms

    def begin_commit(self) -> None:
        if self.state is TxnState.ABORTABLE_ERROR:
            raise self._misuse("cannot commit a failed transaction") from self.last_error
        if self.state is TxnState.COMMITTING:
            return  # a commit that timed out, called again: it resumes
        if self.state not in (TxnState.IN_TRANSACTION, TxnState.PREPARED):
            raise self._misuse("no transaction to commit")
        self.transition(TxnState.COMMITTING)

    def begin_abort(self) -> None:
        if self.state is TxnState.ABORTING:
            return  # an abort that timed out, called again: it resumes
        if self.state not in (TxnState.IN_TRANSACTION, TxnState.ABORTABLE_ERROR, TxnState.PREPARED):
            raise self._misuse("no transaction to abort")
        self.transition(TxnState.ABORTING)

    def check_prepare(self) -> None:
        """Raise the error that refuses ``prepare_transaction()`` now (before its flush)."""
        if not self.two_pc:
            raise self._misuse(
                "prepare_transaction() needs two-phase commit: set "
                "transaction_two_phase_commit_enable=True"
            )
        if self.state is TxnState.PREPARED:
            raise self._misuse("the transaction is already prepared")
        if self.state is TxnState.ABORTABLE_ERROR:
            raise self._misuse("cannot prepare a failed transaction") from self.last_error
        if self.state is not TxnState.IN_TRANSACTION:
            raise self._misuse("no transaction to prepare")

    def prepare(self, producer_id: int, epoch: int) -> PreparedTxnState:
        """The flushed transaction is prepared: IN_TRANSACTION -> PREPARED, its state."""
        self.check_prepare()
        self.transition(TxnState.PREPARED)
        self.prepared = PreparedTxnState(producer_id, epoch)
        return self.prepared

    def completion_for(self, state: PreparedTxnState) -> bool:
        """``complete_transaction(state)``: commit (True) when ``state`` is the prepared
        transaction's, abort (False) otherwise."""
        if not isinstance(state, PreparedTxnState):
            raise TypeError(f"complete_transaction() takes a PreparedTxnState, got {state!r}")
        if self.state is not TxnState.PREPARED or self.prepared is None:
            raise self._misuse("no prepared transaction to complete: call prepare_transaction()")
        return state == self.prepared

    def needs_end_txn(self) -> bool:
        """Whether the coordinator knows of this transaction (else it ends locally)."""
        return bool(self.partitions) or bool(self.adding) or self.offsets_added

    def completed(self) -> None:
        """EndTxn succeeded (or was not needed): READY for the next transaction."""
        self.transition(TxnState.READY)
        self.partitions.clear()
        self.pending.clear()
        self.adding.clear()
        self.offsets_added = False
        self.prepared = None
        self.transactions += 1

    # -- errors --------------------------------------------------------------------------------

    def abortable(self, error: BaseException) -> None:
        """A record, an offset commit or a partition failed: the transaction must abort."""
        if self.state in (TxnState.IN_TRANSACTION, TxnState.COMMITTING, TxnState.ABORTABLE_ERROR):
            self.transition(TxnState.ABORTABLE_ERROR, error)

    def fatal(self, error: BaseException) -> None:
        if self.state is not TxnState.FATAL_ERROR:
            self.transition(TxnState.FATAL_ERROR, error)

    def request_failed(self, error: BaseException) -> bool:
        """A transactional request (EndTxn, the offsets' commit) failed with ``error``. True:
        the error is fatal, the caller stops the producer. Otherwise a retriable error leaves
        the state as it is (calling again resumes) and any other makes the transaction
        abortable (an abort that failed stays ABORTING: calling abort again resumes)."""
        code = getattr(error, "code", None)
        if isinstance(code, int) and classify(code) is ErrorKind.FATAL:
            return True
        if not getattr(error, "retriable", False) and self.state is not TxnState.ABORTING:
            self.abortable(error)
        return False

    def timeout_hint(self, now_ms: int) -> str:
        """A note for errors: the transaction outlived transaction_timeout_ms (the broker
        aborts it then, and fences the epoch)."""
        age = now_ms - self.began_ms
        if self.two_pc:
            return ""  # a 2PC transaction never times out
        if self.state is not TxnState.UNINITIALIZED and age > self.timeout_ms:
            return (
                f" (the transaction ran {age} ms, more than transaction_timeout_ms="
                f"{self.timeout_ms}: the coordinator aborted it)"
            )
        return ""

    # -- partitions ----------------------------------------------------------------------------

    def saw_partitions(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions with a batch queued in this transaction: v1 adds the new ones to the
        next AddPartitionsToTxn; v2 counts them as part of the transaction."""
        if self.state is not TxnState.IN_TRANSACTION and self.state is not TxnState.COMMITTING:
            return
        known, adding = self.partitions, self.adding
        for tp in tps:
            if tp not in known and tp not in adding:
                if self.v2:
                    known.add(tp)
                else:
                    self.pending.add(tp)

    def can_drain(self, tp: TopicPartition) -> bool:
        """May a batch of ``tp`` be sent now (its partition is in the transaction)?"""
        return tp in self.partitions

    def take_pending(self) -> list[TopicPartition]:
        """The partitions for the next AddPartitionsToTxn request (v1), now in flight."""
        if self.adding or not self.pending:
            return []
        batch = sorted(self.pending, key=lambda tp: (tp.topic, tp.partition))
        self.adding = set(batch)
        self.pending.clear()
        return batch

    def partitions_added(self, results: dict[TopicPartition, int]) -> ErrorKind:
        """The answer to AddPartitionsToTxn: per partition, an error code. Returns the worst
        kind; partitions to retry go back to pending, added ones join the transaction."""
        worst = ErrorKind.OK
        order = [
            ErrorKind.OK,
            ErrorKind.RETRY,
            ErrorKind.FIND_COORDINATOR,
            ErrorKind.ABORTABLE,
            ErrorKind.FATAL,
        ]
        for tp in self.adding:
            code = results.get(tp, OperationNotAttemptedError.code)
            kind = classify(code)
            if kind is ErrorKind.OK:
                self.partitions.add(tp)
            else:
                self.pending.add(tp)
            if order.index(kind) > order.index(worst):
                worst = kind
        self.adding = set()
        return worst

    def adding_failed(self) -> None:
        """The AddPartitionsToTxn request got no answer: its partitions are pending again."""
        self.pending |= self.adding
        self.adding = set()


__all__ = [
    "TRANSITIONS",
    "PreparedTxnState",
    "TransactionManager",
    "TxnState",
]
