"""The response rules (``aioproducer/_core/outcome.py``): every branch of Java's
``Sender.completeBatch``/``canRetry`` and of the idempotence rules, as values, time as an
argument."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aioproducer._broker_errors import (
    MessageTooLargeError,
    NotLeaderOrFollowerError,
    OutOfOrderSequenceNumberError,
    ProducerFencedError,
    UnknownProducerIdError,
)
from aioproducer._core.cluster import TopicPartition
from aioproducer._core.idempotence import IdempotenceManager, ProducerIdState
from aioproducer._core.outcome import (
    Action,
    Decision,
    Retry,
    failed_attempt,
    failure,
    partition_error,
)
from aioproducer.errors import (
    BrokerProtocolError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    PersistedStatus,
    RecordTooLargeError,
)

TP = TopicPartition("t", 0)
POLICY = Retry(retries=10, delivery_timeout_ms=120_000)
NOW = 1_000
NOT_LEADER = 6
REQUEST_TIMED_OUT = 7
MESSAGE_TOO_LARGE = 10
INVALID_RECORD = 87
OUT_OF_ORDER = 45
DUPLICATE = 46
UNKNOWN_PRODUCER = 59
INVALID_EPOCH = 47
FENCED = 90


@dataclass
class Batch:
    tp: TopicPartition = TP
    attempts: int = 1
    created_ms: int = 0
    maybe_written: bool = False
    final: bool = False
    record_count: int = 3
    base_sequence: int = -1
    producer_epoch: int = -1
    ordinal: int = 7


def idem(epoch: int = 0, last_acked: int = -1) -> IdempotenceManager:
    """An idempotence state with producer id 1000 in ``epoch``; the partition's last
    acknowledged sequence ``last_acked``."""
    m = IdempotenceManager(max_in_flight=5)
    m.transition(ProducerIdState.INITIALIZING)
    m.set_producer_id(1000, epoch)
    if last_acked >= 0:
        m.assign(TP, -1, last_acked + 1, node=0)
        m.returned(TP)
        m.acked(TP, 0, last_acked + 1, epoch)
    return m


def sequenced(base_sequence: int = 0, epoch: int = 0, **kw: object) -> Batch:
    return Batch(base_sequence=base_sequence, producer_epoch=epoch, **kw)  # type: ignore[arg-type]


def status(d: Decision) -> PersistedStatus:
    assert isinstance(d.error, KafkaError)
    assert d.error.persisted_status is not None
    return d.error.persisted_status


# -- partition_error: the idempotence rules ---------------------------------------------------


def test_a_duplicate_of_a_sequenced_batch_is_a_success_whose_sequence_advances() -> None:
    d = partition_error(sequenced(), DUPLICATE, None, None, POLICY, NOW, idem())
    assert d.action is Action.COMPLETE
    assert d.ack_sequence and d.error is None and d.bump is None


def test_a_duplicate_without_idempotence_is_a_plain_failure() -> None:
    d = partition_error(Batch(), DUPLICATE, None, None, POLICY, NOW, None)
    assert d.action is Action.FAIL and not d.ack_sequence
    assert status(d) is PersistedStatus.NOT_PERSISTED


def test_out_of_order_for_a_batch_of_an_older_epoch_resequences_the_partition() -> None:
    batch = sequenced(base_sequence=5, epoch=0, maybe_written=True)
    d = partition_error(batch, OUT_OF_ORDER, None, None, POLICY, NOW, idem(epoch=1))
    assert d.action is Action.RETRY
    assert d.forget_sequences
    assert not d.maybe_written  # the broker says it was not written
    assert not d.failed_attempt  # it leaves its sequence behind
    assert d.bump is None


def test_out_of_order_for_an_older_epoch_past_its_timeout_fails_without_a_bump() -> None:
    batch = sequenced(base_sequence=5, epoch=0, maybe_written=True)
    late = POLICY.delivery_timeout_ms + 1
    d = partition_error(batch, OUT_OF_ORDER, None, None, POLICY, late, idem(epoch=1))
    assert d.action is Action.FAIL and d.forget_sequences and d.bump is None
    assert status(d) is PersistedStatus.NOT_PERSISTED


def test_out_of_order_behind_a_failed_batch_retries_with_its_sequence() -> None:
    # Acked up to 9: a batch at 20 is not the next expected; one before it failed.
    d = partition_error(sequenced(20), OUT_OF_ORDER, None, None, POLICY, NOW, idem(last_acked=9))
    assert d.action is Action.RETRY
    assert d.failed_attempt and not d.forget_sequences and d.bump is None


def test_out_of_order_at_the_head_of_line_fails_and_bumps_from_the_batch() -> None:
    batch = sequenced(10)
    d = partition_error(batch, OUT_OF_ORDER, "gap", None, POLICY, NOW, idem(last_acked=9))
    assert d.action is Action.FAIL
    assert d.bump == (batch.ordinal, False)
    assert isinstance(d.error, OutOfOrderSequenceNumberError)
    assert status(d) is PersistedStatus.NOT_PERSISTED
    assert "t-0: gap" in str(d.error)


def test_unknown_producer_id_restarts_the_partition_and_retries() -> None:
    d = partition_error(sequenced(10), UNKNOWN_PRODUCER, None, None, POLICY, NOW, idem())
    assert d.action is Action.RETRY and d.failed_attempt
    assert d.bump == (0, True)


def test_unknown_producer_id_past_the_timeout_fails_and_still_restarts_the_partition() -> None:
    late = POLICY.delivery_timeout_ms
    d = partition_error(sequenced(10), UNKNOWN_PRODUCER, None, None, POLICY, late, idem())
    assert d.action is Action.FAIL and isinstance(d.error, UnknownProducerIdError)
    assert d.bump == (0, True)  # its own (ordinal 7) merged into the restart from 0


def test_unknown_producer_id_for_a_batch_already_failed_is_ignored_but_restarts() -> None:
    d = partition_error(
        sequenced(10, final=True), UNKNOWN_PRODUCER, None, None, POLICY, NOW, idem()
    )
    assert d.action is Action.IGNORE and d.bump == (0, True)


# -- partition_error: Java's completeBatch ---------------------------------------------------


@pytest.mark.parametrize("code", [INVALID_EPOCH, FENCED])
def test_a_fenced_producer_fails_the_batch_and_stops(code: int) -> None:
    d = partition_error(sequenced(), code, None, None, POLICY, NOW, idem())
    assert d.action is Action.FAIL
    assert d.fatal is not None and "fenced" in str(d.fatal)
    assert d.bump == (7, False)
    if code == FENCED:
        assert isinstance(d.fatal, ProducerFencedError)


def test_a_batch_too_large_for_the_broker_is_split() -> None:
    d = partition_error(Batch(record_count=2), MESSAGE_TOO_LARGE, None, None, POLICY, NOW, None)
    assert d.action is Action.SPLIT


@pytest.mark.parametrize(
    "batch",
    [Batch(record_count=1), Batch(maybe_written=True)],
    ids=["one record", "maybe written"],
)
def test_a_batch_too_large_that_cannot_be_split_fails(batch: Batch) -> None:
    d = partition_error(batch, MESSAGE_TOO_LARGE, None, None, POLICY, NOW, None)
    assert d.action is Action.FAIL
    assert isinstance(d.error, MessageTooLargeError) and isinstance(d.error, RecordTooLargeError)
    expected = (
        PersistedStatus.POSSIBLY_PERSISTED if batch.maybe_written else PersistedStatus.NOT_PERSISTED
    )
    assert status(d) is expected


def test_a_retriable_error_retries_and_refreshes_metadata() -> None:
    d = partition_error(Batch(), NOT_LEADER, None, None, POLICY, NOW, None)
    assert d.action is Action.RETRY and d.refresh_metadata and not d.skip_backoff
    assert isinstance(d.error, NotLeaderOrFollowerError)


def test_a_retry_to_a_leader_the_response_named_skips_the_backoff() -> None:
    d = partition_error(Batch(), NOT_LEADER, None, None, POLICY, NOW, None, leader_moved=True)
    assert d.action is Action.RETRY and d.skip_backoff


def test_an_ambiguous_error_marks_the_batch_possibly_written() -> None:
    d = partition_error(Batch(), REQUEST_TIMED_OUT, None, None, POLICY, NOW, None)
    assert d.action is Action.RETRY and d.maybe_written
    spent = Retry(retries=1, delivery_timeout_ms=120_000)
    d = partition_error(Batch(attempts=1), REQUEST_TIMED_OUT, None, None, spent, NOW, None)
    assert d.action is Action.FAIL and status(d) is PersistedStatus.POSSIBLY_PERSISTED


def test_record_errors_fail_each_record_with_its_own_message() -> None:
    d = partition_error(
        Batch(), INVALID_RECORD, "bad", [(0, "no key"), (2, None)], POLICY, NOW, None
    )
    assert d.action is Action.FAIL and d.record_errors is not None
    assert sorted(d.record_errors) == [0, 2]
    assert "no key" in str(d.record_errors[0])
    for e in d.record_errors.values():
        assert isinstance(e, KafkaError) and e.persisted_status is PersistedStatus.NOT_PERSISTED


def test_a_late_answer_for_a_batch_already_failed_is_ignored() -> None:
    d = partition_error(Batch(final=True), NOT_LEADER, None, None, POLICY, NOW, None)
    assert d.action is Action.IGNORE
    d = partition_error(Batch(final=True), MESSAGE_TOO_LARGE, None, None, POLICY, NOW, None)
    assert d.action is Action.IGNORE  # not split either


# -- failed_attempt: canRetry ----------------------------------------------------------------


@pytest.mark.parametrize("exc", [KafkaConnectionError("lost"), KafkaTimeoutError("timed out")])
def test_an_attempt_without_an_answer_may_have_written_the_batch(exc: KafkaError) -> None:
    d = failed_attempt(Batch(), exc, POLICY, NOW, None)
    assert d.action is Action.RETRY and d.maybe_written
    d = failed_attempt(Batch(), exc, POLICY, NOW, None, written=False)  # never sent
    assert d.action is Action.RETRY and not d.maybe_written


@pytest.mark.parametrize(
    ("policy", "batch", "now"),
    [
        (Retry(retries=3, delivery_timeout_ms=120_000), Batch(attempts=3), NOW),
        (POLICY, Batch(created_ms=0), POLICY.delivery_timeout_ms),
        (Retry(retries=10, delivery_timeout_ms=120_000, closing=True), Batch(), NOW),
    ],
    ids=["no attempts left", "delivery timeout", "closing"],
)
def test_no_retry_when_the_policy_refuses(policy: Retry, batch: Batch, now: int) -> None:
    d = failed_attempt(batch, KafkaConnectionError("lost"), policy, now, None)
    assert d.action is Action.FAIL
    assert status(d) is PersistedStatus.POSSIBLY_PERSISTED


def test_a_retried_sequenced_batch_counts_a_failed_attempt() -> None:
    d = failed_attempt(sequenced(), BrokerProtocolError("no answer"), POLICY, NOW, idem())
    assert d.action is Action.RETRY and d.failed_attempt


def test_a_non_retriable_error_fails_at_once() -> None:
    d = failed_attempt(Batch(), KafkaError("bad"), POLICY, NOW, None)
    assert d.action is Action.FAIL


# -- failure ---------------------------------------------------------------------------------


def test_a_failed_sequenced_batch_bumps_the_epoch_from_its_ordinal() -> None:
    d = failure(sequenced(), KafkaTimeoutError("expired"), idem())
    assert d.action is Action.FAIL and d.bump == (7, False)


def test_a_failed_batch_without_a_sequence_bumps_nothing() -> None:
    assert failure(Batch(), KafkaTimeoutError("expired"), idem()).bump is None
    assert failure(sequenced(), KafkaTimeoutError("expired"), None).bump is None


def test_a_batch_already_failed_keeps_its_outcome() -> None:
    exc = KafkaTimeoutError("expired")
    d = failure(sequenced(final=True), exc, idem())
    assert d.error is exc and d.bump is None


def test_the_error_is_a_stamped_copy_and_other_exceptions_pass_unchanged() -> None:
    exc = KafkaTimeoutError("expired")
    d = failure(Batch(maybe_written=True), exc, None)
    assert d.error is not exc and exc.persisted_status is not PersistedStatus.POSSIBLY_PERSISTED
    assert status(d) is PersistedStatus.POSSIBLY_PERSISTED
    other = RuntimeError("boom")
    assert failure(Batch(), other, None).error is other


# -- properties over every code --------------------------------------------------------------


@given(
    code=st.integers(-1, 120).filter(lambda c: c != 0),
    attempts=st.integers(0, 12),
    age=st.integers(0, 200_000),
    seq=st.sampled_from([-1, 0, 10]),
    maybe_written=st.booleans(),
    final=st.booleans(),
    records=st.integers(1, 3),
    closing=st.booleans(),
)
def test_every_decision_keeps_the_invariants(
    code: int,
    attempts: int,
    age: int,
    seq: int,
    maybe_written: bool,
    final: bool,
    records: int,
    closing: bool,
) -> None:
    policy = Retry(retries=10, delivery_timeout_ms=120_000, closing=closing)
    batch = Batch(
        attempts=attempts,
        maybe_written=maybe_written,
        final=final,
        record_count=records,
        base_sequence=seq,
        producer_epoch=0 if seq >= 0 else -1,
    )
    d = partition_error(batch, code, None, None, policy, age, idem(last_acked=9))
    # Once possibly written, always possibly written (unless the broker says otherwise).
    assert d.maybe_written or not maybe_written or d.forget_sequences
    if d.action is Action.RETRY:
        assert policy.allows(batch, age) and not final
    if d.action is Action.SPLIT:
        assert records > 1 and not maybe_written and not final
    if final:
        assert d.action in (Action.IGNORE, Action.FAIL, Action.COMPLETE)
    if d.action is Action.FAIL and not final and isinstance(d.error, KafkaError):
        expected = (
            PersistedStatus.POSSIBLY_PERSISTED if d.maybe_written else PersistedStatus.NOT_PERSISTED
        )
        assert d.error.persisted_status is expected
    if d.bump is not None:
        assert seq >= 0  # only a sequenced batch can leave a gap
    if d.fatal is not None:
        assert code in (INVALID_EPOCH, FENCED)


def test_a_transactional_producer_does_not_retry_unknown_producer_id() -> None:
    # Java's TransactionManager.canRetry: the batch fails (the transaction must abort) and
    # the abort bumps the epoch for the partition's restart, instead of a local bump + retry.
    txn_policy = Retry(retries=10, delivery_timeout_ms=120_000, transactional=True)
    d = partition_error(sequenced(10), UNKNOWN_PRODUCER, None, None, txn_policy, NOW, idem())
    assert d.action is Action.FAIL
    assert d.bump == (0, True)
    assert status(d) is PersistedStatus.NOT_PERSISTED
