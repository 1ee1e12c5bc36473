from __future__ import annotations

import pytest

from aioproducer._core.cluster import TopicPartition
from aioproducer._core.idempotence import (
    MAX_EPOCH,
    MAX_SEQUENCE,
    IdempotenceManager,
    ProducerIdState,
    add_sequence,
)

TP = TopicPartition("t", 0)


def ready() -> IdempotenceManager:
    m = IdempotenceManager(5)
    m.transition(ProducerIdState.INITIALIZING)
    m.set_producer_id(7, 0)
    return m


def test_sequences_wrap_after_int32_max() -> None:
    assert add_sequence(MAX_SEQUENCE, 1) == 0
    assert add_sequence(MAX_SEQUENCE - 1, 3) == 1
    m = ready()
    m.partitions[TP] = m._seq(TP)
    m.partitions[TP].next_sequence = MAX_SEQUENCE - 1
    assert m.assign(TP, -1, 5, 1) == MAX_SEQUENCE - 1
    assert m.partitions[TP].next_sequence == 3
    m.returned(TP)
    m.acked(TP, MAX_SEQUENCE - 1, 5, 0)
    assert m.is_next_expected(TP, 3)


def test_epoch_overflow_asks_for_a_new_producer_id() -> None:
    m = ready()
    m.epoch = MAX_EPOCH
    m.request_bump(TP, 0)
    assert m.maybe_bump() == {TP: (0, False)}
    assert m.state is ProducerIdState.UNINITIALIZED and m.producer_id == -1


def test_bump_waits_until_nothing_is_in_flight() -> None:
    m = ready()
    m.assign(TP, -1, 1, 1)
    m.request_bump(TP, 0)
    assert not m.ready and m.maybe_bump() is None  # one batch still in flight
    m.returned(TP)
    assert m.maybe_bump() == {TP: (0, False)} and m.epoch == 1 and m.ready
    assert m.assign(TP, -1, 1, 1) == 0 and m.partitions[TP].epoch == 1


def test_a_bump_restarts_only_the_partitions_that_asked_for_it() -> None:
    other = TopicPartition("t", 1)
    m = ready()
    m.assign(TP, -1, 3, 1)
    m.assign(other, -1, 2, 1)
    m.returned(TP)
    m.returned(other)
    m.acked(other, 0, 2, 0)
    m.request_bump(TP, 0)
    assert m.maybe_bump() == {TP: (0, False)} and m.epoch == 1
    assert m.can_send(other, True, 1)  # a retry of epoch 0 may still go, alone
    m.assign(other, 2, 1, 1)
    assert not m.can_send(other, False, 1)  # a new batch waits for the old epoch to finish
    m.returned(other)
    m.acked(other, 2, 1, 0)
    assert m.can_send(other, False, 1)
    assert m.assign(other, -1, 1, 1) == 0  # then the partition starts epoch 1 at 0
    assert m.partitions[other].epoch == 1


def test_state_changes_are_checked() -> None:
    m = IdempotenceManager(5)
    with pytest.raises(AssertionError, match="uninitialized -> ready"):
        m.transition(ProducerIdState.READY)
    m.transition(ProducerIdState.FATAL)
    with pytest.raises(AssertionError):
        m.transition(ProducerIdState.INITIALIZING)


def test_a_late_ack_of_an_older_batch_never_moves_the_last_acked_sequence_back() -> None:
    """Seed 53144: a retried batch (sequence 20) was acknowledged after batches up to 25
    were; ``last_acked`` went back to 20, so the next batch's OUT_OF_ORDER_SEQUENCE_NUMBER
    looked "not head of line" and it was retried until its delivery timeout: a wedge. Java
    moves the last acknowledged sequence forward only."""
    m = ready()
    m.acked(TP, 21, 5, 0)  # up to 25
    m.acked(TP, 20, 1, 0)  # the late one
    assert m.partitions[TP].last_acked == 25
    assert m.is_next_expected(TP, 26)
    m.partitions[TP].last_acked = MAX_SEQUENCE - 1
    m.acked(TP, 0, 2, 0)  # wrapped: 0..1 follows 2**31 - 2
    assert m.partitions[TP].last_acked == 1
