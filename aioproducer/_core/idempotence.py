"""Idempotent-producer state (KIP-98, KIP-360): producer id, epoch, per-partition sequences.

Rules:
* A batch gets its base sequence when it is drained, not when it is created, and keeps it
  across retries; producer id and epoch are stamped at the same time.
* Per partition, a second batch may be in flight only after the partition has seen a
  successful response (franz-go's rule): a failure of the first request can then never let a
  later batch overtake it. At most ``max_in_flight`` (<= 5, the broker's dedupe window)
  batches per partition are in flight.
* A retried batch (one that already has a sequence) is sent again only when nothing else of
  its partition is in flight, so retries go out in sequence order.
* A partition follows a new leader only once none of its batches is in flight to the old one.
* A failed attempt puts the partition back to one batch in flight until its next success
  (``ok_once`` is cleared): the retry goes alone, and no newer batch travels beside it. A
  broker that checks sequences would refuse the newer batch anyway (OUT_OF_ORDER_SEQUENCE);
  one that does not (librdkafka's mock, for a producer without a transactional id) would
  write it ahead of the retry. Java's drain stops behind a queued retry for the same reason.
* An epoch bump (UNKNOWN_PRODUCER_ID, a head-of-line OUT_OF_ORDER_SEQUENCE_NUMBER, a sent
  batch that failed or expired and so left a gap) waits until no batch of the producer is in
  flight; then the epoch goes up by one (a new producer id when it would overflow). A queued
  batch behind the gap, in a partition that asked for the bump, is sequenced again in the new
  epoch (Java's ``partitionsToRewriteSequences``). Every other queued retry keeps its epoch
  and sequence — it may have been written, and only under them can the broker recognise it
  and not write it twice. A partition moves to the new epoch, at sequence 0, once nothing of
  the old one is in flight or queued ahead. Never a wedge.
* The state is a table-checked enum; FATAL (fenced) and DISABLED (the broker cannot grant a
  producer id and idempotence was only the default) are final.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .cluster import TopicPartition

MAX_SEQUENCE = 2**31 - 1
MAX_EPOCH = 2**15 - 1


class ProducerIdState(enum.Enum):
    UNINITIALIZED = "uninitialized"
    INITIALIZING = "initializing"
    READY = "ready"
    DISABLED = "disabled"
    FATAL = "fatal"


_ALLOWED = {
    ProducerIdState.UNINITIALIZED: {
        ProducerIdState.INITIALIZING,
        ProducerIdState.DISABLED,
        ProducerIdState.FATAL,
    },
    ProducerIdState.INITIALIZING: {
        ProducerIdState.READY,
        ProducerIdState.UNINITIALIZED,
        ProducerIdState.DISABLED,
        ProducerIdState.FATAL,
    },
    ProducerIdState.READY: {ProducerIdState.UNINITIALIZED, ProducerIdState.FATAL},
    ProducerIdState.DISABLED: set(),
    ProducerIdState.FATAL: set(),
}


@dataclass(slots=True)
class PartitionSequence:
    #: Base sequence the next new batch gets.
    next_sequence: int = 0
    #: Last sequence the broker acknowledged (-1: none yet in this epoch).
    last_acked: int = -1
    #: Batches of this partition written and not yet answered.
    in_flight: int = 0
    #: A success was seen in this epoch, and no failure since: more than one batch may now be
    #: in flight.
    ok_once: bool = False
    #: The producer epoch these sequences belong to. Behind the producer's after a bump that
    #: did not rewrite this partition: its retries finish in the old epoch first.
    epoch: int = -1
    #: The broker the batches in flight went to. After a leader change the partition follows
    #: the new leader only once nothing is in flight to the old one (franz-go's
    #: ``inflightOnSink``): a batch sent to the new leader could otherwise be written ahead
    #: of one still on its way to the old leader, if that one is retried.
    node: int = -1


def add_sequence(seq: int, n: int) -> int:
    """Sequences wrap to 0 after 2**31 - 1 (Java ``DefaultRecordBatch.incrementSequence``)."""
    return (seq + n) % (MAX_SEQUENCE + 1)


class IdempotenceManager:
    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.state = ProducerIdState.UNINITIALIZED
        self.producer_id = -1
        self.epoch = -1
        self.partitions: dict[TopicPartition, PartitionSequence] = {}
        #: An epoch bump was requested; it happens once nothing is in flight.
        self.bump_pending = False
        #: Per partition whose sequences the pending bump restarts: the first batch (by the
        #: accumulator's creation ordinal) to sequence again, those before it keeping theirs;
        #: and whether a batch that may have been written is sequenced again too (only when
        #: the broker lost the producer's state: it could not recognise a resend anyway).
        self.rewrite: dict[TopicPartition, tuple[int, bool]] = {}
        self.total_in_flight = 0
        self.bumps = 0

    def transition(self, new: ProducerIdState) -> None:
        if new is self.state:
            return
        if new not in _ALLOWED[self.state]:
            raise AssertionError(
                f"invalid producer id state change {self.state.value} -> {new.value}"
            )
        self.state = new

    @property
    def ready(self) -> bool:
        return self.state is ProducerIdState.READY and not self.bump_pending

    def set_producer_id(self, producer_id: int, epoch: int) -> None:
        self.transition(ProducerIdState.READY)
        self.producer_id = producer_id
        self.epoch = epoch
        self.partitions.clear()
        self.rewrite.clear()

    def _seq(self, tp: TopicPartition) -> PartitionSequence:
        ps = self.partitions.get(tp)
        if ps is None:
            ps = self.partitions[tp] = PartitionSequence(epoch=self.epoch)
        return ps

    def can_send(self, tp: TopicPartition, has_sequence: bool, node: int) -> bool:
        """May the head batch of ``tp`` be drained now, for broker ``node``?"""
        if not self.ready:
            return False
        ps = self.partitions.get(tp)
        if ps is None or ps.in_flight == 0:
            return True
        if ps.node != node:  # the leader moved: what is in flight to the old one resolves first
            return False
        if has_sequence:  # a retry waits for everything of its partition to come back
            return False
        if ps.epoch != self.epoch:  # the old epoch's batches come back first
            return False
        return ps.ok_once and ps.in_flight < self.max_in_flight

    def assign(self, tp: TopicPartition, base_sequence: int, record_count: int, node: int) -> int:
        """Count a batch as in flight to broker ``node``; give it a base sequence (in the
        current epoch) if it has none. Returns it."""
        ps = self._seq(tp)
        ps.node = node
        if base_sequence < 0:
            if ps.epoch != self.epoch:
                # Nothing of the old epoch is in flight (can_send): start the new one at 0.
                ps.epoch, ps.next_sequence, ps.last_acked, ps.ok_once = self.epoch, 0, -1, False
            base_sequence = ps.next_sequence
            ps.next_sequence = add_sequence(base_sequence, record_count)
        ps.in_flight += 1
        self.total_in_flight += 1
        return base_sequence

    def returned(self, tp: TopicPartition) -> None:
        """A batch of ``tp`` is no longer in flight (answered, failed or expired)."""
        ps = self.partitions.get(tp)
        if ps is not None and ps.in_flight > 0:
            ps.in_flight -= 1
            self.total_in_flight -= 1

    def failed_attempt(self, tp: TopicPartition) -> None:
        """An attempt of a batch of ``tp`` failed and will be retried: one batch in flight
        until the next success."""
        ps = self.partitions.get(tp)
        if ps is not None:
            ps.ok_once = False

    def acked(self, tp: TopicPartition, base_sequence: int, record_count: int, epoch: int) -> None:
        """The broker wrote the batch (``base_sequence``, ``record_count``) of ``epoch``."""
        ps = self.partitions.get(tp)
        if ps is None:
            if epoch != self.epoch:
                return  # its partition was rewritten since: nothing to advance
            ps = self._seq(tp)
        if ps.epoch != epoch:
            return
        last = add_sequence(base_sequence, record_count - 1)
        # Only forward (Java's maybeUpdateLastAckedSequence): a retried batch can be answered
        # after later ones, and a step back would make the next batch look out of line.
        # Sequences wrap, so "forward" is less than half the sequence space ahead.
        if (
            ps.last_acked < 0
            or (last - ps.last_acked) % (MAX_SEQUENCE + 1) < (MAX_SEQUENCE + 1) // 2
        ):
            ps.last_acked = last
        ps.ok_once = True

    def is_next_expected(self, tp: TopicPartition, base_sequence: int) -> bool:
        """True when ``base_sequence`` directly follows the last acknowledged one."""
        ps = self.partitions.get(tp)
        last = -1 if ps is None else ps.last_acked
        return base_sequence == add_sequence(last, 1) if last >= 0 else base_sequence == 0

    def request_bump(self, tp: TopicPartition, from_ordinal: int, state_lost: bool = False) -> None:
        """The sequences of ``tp`` have a gap at the batch of creation ordinal
        ``from_ordinal`` (or the broker lost the producer's state: ``state_lost``): bump the
        epoch once nothing is in flight, and sequence that partition's queued batches from
        that one on again."""
        if self.state is ProducerIdState.READY:
            self.bump_pending = True
            old = self.rewrite.get(tp, (from_ordinal, state_lost))
            self.rewrite[tp] = (min(from_ordinal, old[0]), state_lost or old[1])

    def maybe_bump(self) -> dict[TopicPartition, tuple[int, bool]] | None:
        """Perform a pending bump if nothing is in flight. Returns, per partition, the
        creation ordinal from which the caller sequences queued batches again (None: no bump).
        A bump past the maximum epoch asks for a new producer id instead (state
        UNINITIALIZED), after which every partition restarts."""
        if not self.bump_pending or self.total_in_flight > 0:
            return None
        self.bump_pending = False
        rewrite, self.rewrite = self.rewrite, {}
        self.bumps += 1
        if self.epoch >= MAX_EPOCH:
            self.transition(ProducerIdState.UNINITIALIZED)
            self.producer_id, self.epoch = -1, -1
            self.partitions.clear()
        else:
            # Every partition is now behind the epoch; each moves on at its next new batch.
            self.epoch += 1
        return rewrite
