"""The record accumulator (Java's ``RecordAccumulator``): per-partition deques of batches.

Rules, each a unit test with a fake clock:

* ``append`` adds to the last batch of the partition's deque, or a new batch once the shell has
  reserved its memory. A new batch or a full batch is the only reason to wake the sender —
  never one record.
* ``ready(now)``: a partition is sendable when its deque holds more than one batch or its first
  batch is full, the linger has expired, memory is exhausted with senders waiting, the
  producer is closing, a flush is in progress, or ``send_and_wait`` asked for it — and it is
  not backing off after a failure. Returns the ready leaders, topics without a known leader,
  and when to look again.
* ``drain(node, now)``: at most one batch per partition, up to ``max_request_size``, starting
  from a per-node rotating index so no partition starves; drained batches are sealed
  (compressed). Only batches that are sendable by the rule above go: a young, open batch does
  not ride along because another partition of the node is ready (Java's drain takes it; with
  the sticky partitioner that cut the batch being filled short, and the rest of its stint
  made runt batches: half the batches, measured at 100 B. librdkafka waits too).
* ``reenqueue``: a retried batch goes back at the head of its deque, with exponential backoff
  and jitter (KIP-580).
* ``expire(now)``: batches not in flight whose ``delivery_timeout_ms`` has passed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .._records.codecs import Codec
from .._records.reader import BATCH_OVERHEAD
from .._records.record_batch import RecordBatchBuilder
from .cluster import Cluster, TopicPartition
from .memory import MemoryPool
from .producer_batch import Callback, Completion, ProducerBatch, RecordFuture
from .split import relay_completion, split_too_large

_NEVER = 1 << 62

#: Java's COMPRESSION_RATIO_IMPROVING_STEP / DETERIORATE_STEP for the per-topic ratio estimate.
_IMPROVING_STEP = 0.005
_DETERIORATE_STEP = 0.05


@dataclass(slots=True)
class ReadyResult:
    nodes: set[int] = field(default_factory=set)
    #: Per ready node, how many of its partitions have a sendable head batch.
    heads: dict[int, int] = field(default_factory=dict)
    #: Milliseconds until some batch may become ready (linger or backoff); large if none.
    next_ready_ms: int = 1 << 30
    unknown_leader_topics: set[str] = field(default_factory=set)


def head_wait_ms(
    head: ProducerBatch, queued: int, now_ms: int, forced: bool, linger_ms: int
) -> int:
    """The sendability rule, for ``ready()`` and ``drain()`` alike: 0 when the head batch of a
    partition (``queued`` batches) may be sent now, else the milliseconds until it may.

    Java's ``RecordAccumulator.ready``: a batch backing off after a failure waits for its
    backoff; else it is sendable when it is a retry, when every batch is (memory exhausted,
    closing, flushing: ``forced``), when it was sealed to go now, when another batch follows it
    or it is full, or once it has lingered ``linger_ms``."""
    if head.retry_at_ms > now_ms:
        return head.retry_at_ms - now_ms
    if head.attempts > 0 or forced or head.send_now or queued > 1 or head.is_full():
        return 0
    waited = now_ms - head.created_ms
    return 0 if waited >= linger_ms else linger_ms - waited


def backoff_ms(attempts: int, base_ms: int, max_ms: int, rand: Callable[[], float]) -> int:
    """KIP-580: ``base * 2^(attempts-1)``, capped at ``max``, with ±20 % jitter."""
    if max_ms < base_ms:
        max_ms = base_ms
    exp = base_ms * (2 ** max(0, attempts - 1)) if attempts < 32 else max_ms
    value = min(exp, max_ms)
    jittered = value * (0.8 + 0.4 * rand())
    return int(min(jittered, max_ms))


class IncompleteBatches(dict[ProducerBatch, None]):
    """A set of batches that iterates in the order they were added (a dict's keys): what
    close() fails, it fails in creation order, and a simulated run does not depend on where
    the batches happen to sit in memory."""

    __slots__ = ()

    def add(self, batch: ProducerBatch) -> None:
        self[batch] = None

    def discard(self, batch: ProducerBatch) -> None:
        self.pop(batch, None)


#: Java 4.4's chunk of incremental allocation (``ChunkedRecordAccumulator.CHUNK_SIZE``); a
#: batch_size below it is the chunk.
CHUNK_BYTES = 16384


def _round_up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


class RecordAccumulator:
    def __init__(
        self,
        *,
        batch_size: int,
        codec: Codec,
        linger_ms: int,
        retry_backoff_ms: int,
        retry_backoff_max_ms: int,
        delivery_timeout_ms: int,
        max_request_size: int,
        pool: MemoryPool,
        new_completion: Callable[[], Completion],
        rand: Callable[[], float],
        incremental: bool = False,
    ) -> None:
        self.batch_size = batch_size
        #: buffer_memory_allocation_strategy="incremental" (Java 4.4): a new batch reserves
        #: whole chunks for its first record, and more chunks as records come, up to
        #: batch_size; "full" (False) reserves batch_size when it opens.
        self.incremental = incremental
        self.chunk = min(CHUNK_BYTES, batch_size)
        self.codec = codec
        self.linger_ms = linger_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.retry_backoff_max_ms = retry_backoff_max_ms
        self.delivery_timeout_ms = delivery_timeout_ms
        self.max_request_size = max_request_size
        self.pool = pool
        self.new_completion = new_completion
        self.rand = rand
        self.batches: dict[TopicPartition, deque[ProducerBatch]] = {}
        #: Every batch not yet completed (queued or in flight): what flush and close wait for.
        self.incomplete = IncompleteBatches()
        #: Since this turn's ready(): the (node, partition) of every head drain() took, and
        #: whether a batch went back into a queue (see ready_after_drain).
        self._drained: list[tuple[int, TopicPartition]] = []
        self._requeued = False
        self._ready_forced = False
        self._ordinal = 0
        #: No incomplete batch reaches its delivery timeout before this (a lower bound): a new
        #: batch's deadline is later than every older one's, so the expiry scans, O(batches),
        #: run only once it is reached, then move it to the oldest deadline left. With 1,000
        #: partitions and a slow broker they scanned hundreds of batches every sender turn.
        self.expiry_floor_ms = _NEVER
        self.flushes_in_progress = 0
        self.closed = False
        self._drain_index: dict[int, int] = {}
        #: Per node: last time it had a sendable batch, and last time one was drained for it.
        self.node_ready_ms: dict[int, int] = {}
        self.node_drain_ms: dict[int, int] = {}
        self._ratios: dict[str, float] = {}
        #: Batches are written with the transactional attribute (a transactional producer).
        self.transactional = False

    # -- appending -------------------------------------------------------------------------------

    def reservation_for(self, record_size: int) -> int:
        """Bytes to reserve for a new batch that must hold a record of ``record_size``:
        batch_size (or the record's batch, if larger); with incremental allocation, the whole
        chunks that batch takes (a larger record's batch whole)."""
        whole = max(self.batch_size, record_size + BATCH_OVERHEAD)
        if not self.incremental:
            return whole
        return min(whole, _round_up(record_size + BATCH_OVERHEAD, self.chunk))

    def extension_for(self, batch: ProducerBatch, record_bytes: int) -> int:
        """Incremental allocation: the pool bytes to add to ``batch`` (whole chunks, up to
        batch_size in all) for its records to reach ``record_bytes``; 0 when none would do."""
        target = min(
            self.batch_size, _round_up(batch.builder.batch_bytes_for(record_bytes), self.chunk)
        )
        return max(0, target - batch.reserved)

    def give_memory(self, batch: ProducerBatch, extra: int) -> None:
        """``extra`` pool bytes granted to ``batch`` (:meth:`extension_for`)."""
        batch.reserved += extra
        batch.builder.set_memory(batch.reserved)

    def append_new_batch(
        self,
        tp: TopicPartition,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None,
        callback: Callback | None,
        now_ms: int,
        reserved: int,
        waited: bool = True,
    ) -> tuple[RecordFuture, int]:
        """Append in a new batch backed by ``reserved`` pool bytes.

        Returns the record's handle and the bytes to give back to the pool (all of them when
        another batch was opened while the caller ``waited`` for memory and took the record).
        """
        dq = self.batches.get(tp)
        if waited and dq:
            handle = dq[-1].try_append(timestamp, key, value, headers, callback)
            if handle is not None:
                return handle, reserved
        builder = self.new_builder(self.batch_size, self._ratios.get(tp.topic, 1.0))
        if self.incremental and reserved < self.batch_size:
            builder.set_memory(reserved)
        batch = ProducerBatch(tp, builder, self.new_completion(), now_ms, reserved)
        self._ordinal += 1
        batch.ordinal = self._ordinal
        handle = batch.try_append(timestamp, key, value, headers, callback)
        if handle is None:  # an empty batch takes any record within max_request_size
            raise AssertionError("a record checked against max_request_size did not fit")
        if dq is None:
            dq = self.batches[tp] = deque()
        dq.append(batch)
        self.incomplete[batch] = None  # .add(), as a C call: once per batch
        self.expiry_floor_ms = min(self.expiry_floor_ms, now_ms + self.delivery_timeout_ms)
        return handle, 0

    # -- readiness -------------------------------------------------------------------------------

    def ready(self, cluster: Cluster, now_ms: int) -> ReadyResult:
        result = ReadyResult()
        heads = result.heads
        forced = self._forced()
        linger = self.linger_ms
        for tp, dq in self.batches.items():
            if not dq:
                continue
            leader = cluster.leader_for(tp)
            if leader >= 0:
                self.node_ready_ms[leader] = now_ms
                self.node_drain_ms.setdefault(leader, now_ms)  # stats start at first sight
            if leader < 0:
                result.unknown_leader_topics.add(tp.topic)
                continue
            # A node already ready is still visited: a lingering batch of another of its
            # partitions is not drained with it, and its deadline must wake the sender.
            wait = head_wait_ms(dq[0], len(dq), now_ms, forced, linger)
            if wait == 0:
                result.nodes.add(leader)
                heads[leader] = heads.get(leader, 0) + 1
            elif wait < result.next_ready_ms:
                result.next_ready_ms = wait
        self._drained = []
        self._requeued = False
        self._ready_forced = forced
        return result

    def ready_after_drain(self, before: ReadyResult, cluster: Cluster, now_ms: int) -> ReadyResult:
        """What ``ready()`` would answer now, after this turn's ``drain()``, without another
        pass over every partition: ``before`` (this turn's ``ready()``) with the heads the drain
        took replaced by the batches behind them. A turn in which a batch went back into a
        queue (a write that failed at once), or in which every batch became sendable or stopped
        being so (memory given back by an acks=0 write, say), takes the full pass instead."""
        forced = self._forced()
        if self._requeued or forced != self._ready_forced:
            return self.ready(cluster, now_ms)
        result = ReadyResult(set(), dict(before.heads), before.next_ready_ms)
        heads = result.heads
        linger = self.linger_ms
        for node, tp in self._drained:
            heads[node] -= 1
            dq = self.batches.get(tp)
            if dq:
                wait = head_wait_ms(dq[0], len(dq), now_ms, forced, linger)
                if wait == 0:
                    heads[node] += 1
                elif wait < result.next_ready_ms:
                    result.next_ready_ms = wait
        result.nodes = {node for node, n in heads.items() if n > 0}
        return result

    def _forced(self) -> bool:
        """Every batch is sendable now: memory is exhausted with senders waiting, the producer
        is closing, or a flush is in progress."""
        return self.pool.queued > 0 or self.closed or self.flushes_in_progress > 0

    def has_undrained(self) -> bool:
        return any(self.batches.values())

    # -- draining --------------------------------------------------------------------------------

    def drain(
        self,
        cluster: Cluster,
        nodes: set[int],
        now_ms: int,
        can_drain: Callable[[ProducerBatch], bool] | None = None,
    ) -> dict[int, list[ProducerBatch]]:
        """Batches to send per node; ``can_drain(head batch)`` lets idempotence hold a
        partition back (the ordering rules of ``idempotence.py``)."""
        out: dict[int, list[ProducerBatch]] = {}
        for node in nodes:
            batches = self._drain_node(cluster, node, now_ms, can_drain)
            if batches:
                out[node] = batches
                self.node_drain_ms[node] = now_ms
        return out

    def _drain_node(
        self,
        cluster: Cluster,
        node: int,
        now_ms: int,
        can_drain: Callable[[ProducerBatch], bool] | None,
    ) -> list[ProducerBatch]:
        parts = cluster.partitions_for_node(node)
        if not parts:
            return []
        n = len(parts)
        start = self._drain_index.get(node, 0) % n
        batches = self.batches
        if len(batches) * 4 < n:
            # Few partitions have batches (a node leading 1,000 partitions, say): visit those
            # in the same round-robin order instead of every partition the node leads.
            pos = cluster.positions_for_node(node)
            order = [
                tp for _, tp in sorted(((pos[tp] - start) % n, tp) for tp in batches if tp in pos)
            ]
        else:
            order = parts[start:] + parts[:start]
        size = 0
        ready: list[ProducerBatch] = []
        forced = self._forced()
        linger = self.linger_ms
        for tp in order:
            dq = batches.get(tp)
            if not dq:
                continue
            first = dq[0]
            if head_wait_ms(first, len(dq), now_ms, forced, linger):
                continue  # backing off, or still filling: not sendable on its own
            if can_drain is not None and not can_drain(first):
                continue
            estimate = first.builder.estimated_size()
            if ready and size + estimate > self.max_request_size:
                # Resume from this partition next time so it does not starve.
                self._drain_index[node] = cluster.positions_for_node(node)[tp]
                return ready
            dq.popleft()
            self._drained.append((node, tp))
            if not dq:
                del batches[tp]
            # Sealed (compressed) by the sender, possibly off the event loop: count the estimate.
            size += first.builder.estimated_size()
            ready.append(first)
        self._drain_index[node] = (start + 1) % n
        return ready

    def observe_ratio(self, batch: ProducerBatch) -> None:
        """Feed a sealed batch's compression ratio into the topic's estimate."""
        self._update_ratio(batch)

    def _update_ratio(self, batch: ProducerBatch) -> None:
        if not self.codec.id or batch.attempts:
            return
        observed = batch.builder.compression_ratio
        current = self._ratios.get(batch.tp.topic, 1.0)
        if observed > current:
            self._ratios[batch.tp.topic] = max(current + _DETERIORATE_STEP, observed)
        elif observed < current:
            self._ratios[batch.tp.topic] = max(current - _IMPROVING_STEP, observed)

    # -- retries, splitting, expiry --------------------------------------------------------------

    def reenqueue(self, batch: ProducerBatch, now_ms: int, skip_backoff: bool = False) -> None:
        """Put a failed batch back at the head of its deque, backing off before the next try
        (unless ``skip_backoff``: the partition has a new leader, KIP-951)."""
        batch.attempts += 1
        batch.retry_at_ms = now_ms
        if not skip_backoff:
            batch.retry_at_ms += backoff_ms(
                batch.attempts, self.retry_backoff_ms, self.retry_backoff_max_ms, self.rand
            )
        self._insert_in_order(batch)

    def _insert_in_order(self, batch: ProducerBatch) -> None:
        """Put ``batch`` back into its partition's deque, which stays sorted by creation (and
        split pieces by their place in the batch they came from): a
        retry goes ahead of every newer batch and behind every older retry, whatever order the
        failures came in. Sequences are handed out in deque order, so this is also sequence
        order (Java's ``insertInSequenceOrder``)."""
        self._requeued = True
        dq = self.batches.get(batch.tp)
        if dq is None:
            dq = self.batches[batch.tp] = deque()
        i = 0
        n = len(dq)
        ordinal = batch.ordinal
        while i < n and dq[i].ordinal < ordinal:
            i += 1
        # The pieces of a split batch share its ordinal; their place among them orders them.
        piece = batch.piece
        while i < n and dq[i].ordinal == ordinal and dq[i].piece <= piece:
            i += 1
        dq.insert(i, batch)

    def reset_sequences(
        self, rewrite: dict[TopicPartition, tuple[int, bool]] | None = None
    ) -> None:
        """After an epoch bump: the queued batches of each partition of ``rewrite`` from the
        given creation ordinal on get new sequences when next drained (every queued batch
        when ``rewrite`` is None: a new producer id).

        Unless the broker lost the producer's state, a batch an earlier attempt may have
        written keeps its epoch and sequence, and so does every batch ahead of it: only under
        them can the broker recognise it (and not write it twice), and an older epoch cannot
        follow a newer one. If it was not written after all, the broker refuses it
        (OUT_OF_ORDER_SEQUENCE) and the sender sequences it again then."""
        for tp, dq in self.batches.items():
            if rewrite is None:
                start, everything = 0, True
            elif tp in rewrite:
                start, everything = rewrite[tp]
            else:
                continue
            if not everything:
                for b in dq:
                    if b.ordinal >= start and b.maybe_written and b.base_sequence >= 0:
                        start = b.ordinal + 1
            for b in dq:
                if b.ordinal >= start:
                    b.base_sequence = -1

    def forget_sequences(self, tp: TopicPartition) -> None:
        """The broker refused a batch of ``tp`` kept in an older epoch: none of its queued
        batches was written; they get new sequences when next drained."""
        for b in self.batches.get(tp, ()):
            b.base_sequence = -1
            b.maybe_written = False

    def new_builder(self, batch_size: int, ratio: float) -> RecordBatchBuilder:
        """An empty record buffer for one of this producer's batches (a new batch, or a piece
        of a split one)."""
        return RecordBatchBuilder(
            self.codec, batch_size, self.max_request_size, ratio, self.transactional
        )

    def split_and_reenqueue(self, batch: ProducerBatch, now_ms: int) -> int:
        """MESSAGE_TOO_LARGE: the batch's records in smaller batches (``split.py``'s rule), put
        at the head of the deque in its place. Returns the new batch count."""
        waiting = batch.completion
        ratio = max(1.0, self._ratios.get(batch.tp.topic, 1.0))
        new = split_too_large(batch, self.batch_size, ratio, self.new_builder, self.new_completion)
        self.incomplete.discard(batch)
        for b in new:
            self.incomplete.add(b)
            deadline = b.created_ms + self.delivery_timeout_ms
            self.expiry_floor_ms = min(self.expiry_floor_ms, deadline)
            b.retry_at_ms = now_ms
            self._insert_in_order(b)
        # Whoever awaited records of the old batch waits on the new ones: re-point the waiters.
        relay_completion(waiting, new)
        return len(new)

    def expire(self, now_ms: int) -> list[ProducerBatch]:
        """Remove and return queued batches past their delivery timeout. Once the expiry floor
        is reached, also move it up to the oldest deadline of the batches left, in flight
        included (the sender expires those after this call)."""
        if now_ms < self.expiry_floor_ms:
            return []
        expired: list[ProducerBatch] = []
        timeout = self.delivery_timeout_ms
        for tp in list(self.batches):
            dq = self.batches[tp]
            # Deques are kept in creation order, so expired batches form a run at the head;
            # still, every batch past its deadline goes, or the expiry floor (computed over
            # every batch) would stay in the past and the sender would never sleep.
            if any(b.created_ms + timeout <= now_ms for b in dq):
                keep = [b for b in dq if b.created_ms + timeout > now_ms]
                expired.extend(b for b in dq if b.created_ms + timeout <= now_ms)
                dq.clear()
                dq.extend(keep)
            if not dq:
                del self.batches[tp]
        gone = set(expired)
        self.expiry_floor_ms = min(
            (b.created_ms + timeout for b in self.incomplete if b not in gone), default=_NEVER
        )
        return expired

    def next_expiry_ms(self, now_ms: int) -> int:
        """Milliseconds until a batch may reach its delivery timeout (the expiry floor)."""
        return max(0, min(self.expiry_floor_ms - now_ms, 1 << 30))

    def done(self, batch: ProducerBatch) -> None:
        """A batch is complete: return its memory to the pool."""
        self.incomplete.pop(batch, None)  # .discard(), as a C call: once per batch
        if batch.reserved:
            self.pool.release(batch.reserved)
            batch.reserved = 0

    def abort_undrained(self) -> list[ProducerBatch]:
        """Remove every queued batch (forced close); the caller completes them."""
        out = [b for dq in self.batches.values() for b in dq]
        self.batches.clear()
        return out
