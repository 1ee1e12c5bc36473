"""The transaction state machine (``_core/transactions.py``): the table, misuse, partitions,
error classes. Pure: time is an argument, no event loop."""

from __future__ import annotations

import itertools

import pytest

from aioproducer._broker_errors import (
    ConcurrentTransactionsError,
    CoordinatorLoadInProgressError,
    InvalidProducerEpochError,
    InvalidTxnStateError,
    NotCoordinatorError,
    ProducerFencedError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from aioproducer._core.cluster import TopicPartition
from aioproducer._core.transactions import TRANSITIONS, TransactionManager, TxnState
from aioproducer._core.txn_errors import ErrorKind, classify, txn_error
from aioproducer.errors import KafkaError, TransactionStateError

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)
TP2 = TopicPartition("u", 0)


def state(txn: TransactionManager) -> TxnState:
    """The state, read through a call (mypy would narrow ``txn.state`` across calls)."""
    return txn.state


def ready(v2: bool = False) -> TransactionManager:
    txn = TransactionManager("tid", 60_000)
    txn.begin_init()
    txn.initialized(v2)
    return txn


def test_the_table_is_javas() -> None:
    S = TxnState
    expected = {
        S.UNINITIALIZED: {S.INITIALIZING},
        S.INITIALIZING: {S.READY, S.UNINITIALIZED},
        S.READY: {S.IN_TRANSACTION},
        S.IN_TRANSACTION: {S.COMMITTING, S.ABORTING, S.ABORTABLE_ERROR, S.PREPARED},
        S.PREPARED: {S.COMMITTING, S.ABORTING},
        S.COMMITTING: {S.READY, S.ABORTABLE_ERROR},
        S.ABORTING: {S.READY},
        S.ABORTABLE_ERROR: {S.ABORTING, S.ABORTABLE_ERROR},
    }
    for state, targets in expected.items():
        assert TRANSITIONS[state] == frozenset(targets | {S.FATAL_ERROR}), state
    assert TRANSITIONS[S.FATAL_ERROR] == frozenset()


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(TxnState, TxnState)))
def test_every_move_outside_the_table_is_refused(src: TxnState, dst: TxnState) -> None:
    txn = TransactionManager("tid", 1000)
    txn.state = src
    if dst in TRANSITIONS[src] or dst is src:
        txn.transition(dst)
        assert state(txn) is dst
    else:
        with pytest.raises(AssertionError, match="invalid transaction state change"):
            txn.transition(dst)
        assert state(txn) is src


def test_a_transaction_commits_and_the_next_begins() -> None:
    txn = ready()
    txn.begin(now_ms=10)
    assert txn.in_transaction and txn.began_ms == 10
    txn.check_can_send()
    txn.begin_commit()
    assert state(txn) is TxnState.COMMITTING
    txn.completed()
    assert state(txn) is TxnState.READY and txn.transactions == 1
    txn.begin(now_ms=20)
    txn.begin_abort()
    txn.completed()
    assert state(txn) is TxnState.READY and txn.transactions == 2


def test_misuse_raises_a_typed_error_and_changes_nothing() -> None:
    txn = ready()
    with pytest.raises(TransactionStateError, match="only inside a transaction"):
        txn.check_can_send()
    with pytest.raises(TransactionStateError, match="no transaction to commit"):
        txn.begin_commit()
    with pytest.raises(TransactionStateError, match="no transaction to abort"):
        txn.begin_abort()
    assert state(txn) is TxnState.READY
    txn.begin(0)
    with pytest.raises(TransactionStateError, match="already in progress"):
        txn.begin(1)
    assert state(txn) is TxnState.IN_TRANSACTION and txn.began_ms == 0
    # A TransactionStateError is a KafkaError and a RuntimeError (Java's IllegalStateException).
    assert issubclass(TransactionStateError, KafkaError)
    assert issubclass(TransactionStateError, RuntimeError)


def test_before_init_nothing_is_allowed() -> None:
    txn = TransactionManager("tid", 1000)
    with pytest.raises(TransactionStateError, match="uninitialized"):
        txn.begin(0)


def test_an_abortable_error_refuses_sends_and_commit_but_allows_abort() -> None:
    txn = ready()
    txn.begin(0)
    boom = TopicAuthorizationFailedError("t-0")
    txn.abortable(boom)
    assert state(txn) is TxnState.ABORTABLE_ERROR and txn.last_error is boom
    with pytest.raises(TransactionStateError, match="must be aborted") as info:
        txn.check_can_send()
    assert info.value.__cause__ is boom
    with pytest.raises(TransactionStateError, match="cannot commit a failed transaction"):
        txn.begin_commit()
    txn.begin_abort()
    txn.completed()
    assert state(txn) is TxnState.READY
    txn.begin(5)  # and the producer goes on


def test_a_failure_during_commit_is_abortable() -> None:
    txn = ready()
    txn.begin(0)
    txn.begin_commit()
    txn.abortable(KafkaError("record failed"))
    assert state(txn) is TxnState.ABORTABLE_ERROR


def test_an_abortable_error_outside_a_transaction_changes_nothing() -> None:
    txn = ready()
    txn.abortable(KafkaError("late"))
    assert state(txn) is TxnState.READY


def test_fatal_is_final() -> None:
    txn = ready()
    txn.begin(0)
    fenced = ProducerFencedError("x")
    txn.fatal(fenced)
    assert state(txn) is TxnState.FATAL_ERROR
    txn.abortable(KafkaError("later"))
    assert state(txn) is TxnState.FATAL_ERROR and txn.last_error is fenced
    with pytest.raises(TransactionStateError, match="must be closed"):
        txn.begin_abort()
    with pytest.raises(AssertionError):
        txn.transition(TxnState.READY)


def test_v1_partitions_are_added_in_one_request_per_turn_before_their_batches() -> None:
    txn = ready(v2=False)
    txn.begin(0)
    txn.saw_partitions([TP0, TP1])
    assert not txn.can_drain(TP0)
    first = txn.take_pending()
    assert first == [TP0, TP1]
    txn.saw_partitions([TP0, TP2])  # TP0 is being added: not again; TP2 waits its turn
    assert txn.take_pending() == []  # one request at a time
    assert txn.partitions_added({TP0: 0, TP1: 0}) is ErrorKind.OK
    assert txn.can_drain(TP0) and txn.can_drain(TP1) and not txn.can_drain(TP2)
    assert txn.take_pending() == [TP2]
    assert txn.needs_end_txn()


def test_v1_partitions_to_retry_go_back_to_pending() -> None:
    txn = ready()
    txn.begin(0)
    txn.saw_partitions([TP0, TP1])
    txn.take_pending()
    kind = txn.partitions_added({TP0: ConcurrentTransactionsError.code, TP1: 0})
    assert kind is ErrorKind.RETRY
    assert txn.pending == {TP0} and txn.partitions == {TP1}
    txn.take_pending()
    txn.adding_failed()
    assert txn.pending == {TP0} and not txn.adding


def test_v1_the_worst_error_of_a_request_wins() -> None:
    txn = ready()
    txn.begin(0)
    txn.saw_partitions([TP0, TP1, TP2])
    txn.take_pending()
    kind = txn.partitions_added(
        {TP0: TopicAuthorizationFailedError.code, TP1: ProducerFencedError.code}
    )
    assert kind is ErrorKind.FATAL  # TP2 missing from the answer: not attempted, retried


def test_v2_partitions_join_implicitly() -> None:
    txn = ready(v2=True)
    txn.begin(0)
    assert not txn.needs_end_txn()
    txn.saw_partitions([TP0])
    assert txn.can_drain(TP0) and txn.take_pending() == []
    assert txn.needs_end_txn()


def test_an_empty_transaction_needs_no_end_txn_but_offsets_do() -> None:
    txn = ready()
    txn.begin(0)
    assert not txn.needs_end_txn()
    txn.offsets_added = True
    assert txn.needs_end_txn()
    txn.begin_commit()
    txn.completed()
    assert not txn.needs_end_txn() and not txn.offsets_added


def test_partitions_seen_outside_a_transaction_are_ignored() -> None:
    txn = ready()
    txn.saw_partitions([TP0])
    assert not txn.pending


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (0, ErrorKind.OK),
        (NotCoordinatorError.code, ErrorKind.FIND_COORDINATOR),
        (CoordinatorLoadInProgressError.code, ErrorKind.RETRY),
        (ConcurrentTransactionsError.code, ErrorKind.RETRY),
        (ProducerFencedError.code, ErrorKind.FATAL),
        (InvalidProducerEpochError.code, ErrorKind.FATAL),
        (TransactionalIdAuthorizationFailedError.code, ErrorKind.FATAL),
        (InvalidTxnStateError.code, ErrorKind.ABORTABLE),
        (UnknownTopicOrPartitionError.code, ErrorKind.RETRY),  # retriable: retried
        (TopicAuthorizationFailedError.code, ErrorKind.ABORTABLE),
    ],
)
def test_classify(code: int, kind: ErrorKind) -> None:
    assert classify(code) is kind


def test_fencing_codes_raise_producer_fenced() -> None:
    for code in (ProducerFencedError.code, InvalidProducerEpochError.code):
        err = txn_error(code, "EndTxn")
        assert type(err) is ProducerFencedError
        assert "fenced" in str(err) and str(code) in str(err)
    assert type(txn_error(InvalidTxnStateError.code, "EndTxn")) is InvalidTxnStateError


def test_the_timeout_hint_names_transaction_timeout_ms() -> None:
    txn = ready()
    txn.begin(now_ms=1_000)
    assert txn.timeout_hint(now_ms=2_000) == ""
    assert "transaction_timeout_ms=60000" in txn.timeout_hint(now_ms=70_000)
