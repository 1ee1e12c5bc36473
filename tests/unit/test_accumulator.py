"""Every rule of the record accumulator, with time as an argument and no sockets."""

from __future__ import annotations

import pytest

from aioproducer._core.accumulator import RecordAccumulator, backoff_ms
from aioproducer._core.cluster import TopicPartition
from aioproducer._core.memory import MemoryPool
from aioproducer._core.partitioner import load_stats
from aioproducer._records.reader import read_batches
from aioproducer.errors import KafkaTimeoutError

from .fakes import FakeCompletion, make_accumulator, make_cluster, try_append

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)
CLUSTER = make_cluster({"t": [1, 2, 1]})


def append(acc: RecordAccumulator, tp: TopicPartition, value: bytes, now: int) -> None:
    if try_append(acc, tp, now, None, value, None) is None:
        reserve = acc.reservation_for(len(value) + 20)
        assert acc.pool.try_allocate(reserve)
        _handle, give_back = acc.append_new_batch(tp, now, None, value, None, None, now, reserve)
        if give_back:
            acc.pool.release(give_back)


def test_a_fresh_batch_waits_for_linger() -> None:
    acc = make_accumulator(linger_ms=10)
    append(acc, T0, b"x", now=0)
    r = acc.ready(CLUSTER, 5)
    assert r.nodes == set() and r.next_ready_ms == 5
    assert acc.ready(CLUSTER, 10).nodes == {1}


def test_a_full_batch_is_ready_at_once() -> None:
    acc = make_accumulator(batch_size=200, linger_ms=10_000)
    append(acc, T0, b"x" * 150, now=0)  # alone it reaches batch_size: the batch is full
    assert acc.batches[T0][0].is_full() and len(acc.batches[T0]) == 1
    assert acc.ready(CLUSTER, 0).nodes == {1}


def test_more_than_one_batch_in_the_deque_is_ready() -> None:
    acc = make_accumulator(batch_size=200, linger_ms=10_000)
    for _ in range(2):
        append(acc, T0, b"x" * 70, now=0)
    assert len(acc.batches[T0]) == 2 and not acc.batches[T0][0].is_full()
    assert acc.ready(CLUSTER, 0).nodes == {1}


@pytest.mark.parametrize("flag", ["closed", "flush", "exhausted", "send_now"])
def test_linger_is_skipped_when(flag: str) -> None:
    acc = make_accumulator(linger_ms=10_000, pool=MemoryPool(5000))
    append(acc, T0, b"x", now=0)
    assert acc.ready(CLUSTER, 1).nodes == set()
    if flag == "closed":
        acc.closed = True
    elif flag == "flush":
        acc.flushes_in_progress = 1
    elif flag == "exhausted":
        acc.pool.enqueue(5000, _Waiter())  # a sender waits for memory
    else:
        acc.batches[T0][0].send_now = True
    assert acc.ready(CLUSTER, 1).nodes == {1}


class _Waiter:
    def done(self) -> bool:
        return False

    def set_result(self, _: None) -> None:
        raise AssertionError


def test_unknown_leader_is_reported_not_ready() -> None:
    acc = make_accumulator(linger_ms=0)
    append(acc, TopicPartition("t", 0), b"x", now=0)
    r = acc.ready(make_cluster({"t": [-1]}), 100)
    assert r.nodes == set() and r.unknown_leader_topics == {"t"}


def test_backing_off_batch_is_not_ready_until_its_retry_time() -> None:
    acc = make_accumulator(linger_ms=0, retry_backoff_ms=100, retry_backoff_max_ms=100)
    append(acc, T0, b"x", now=0)
    [batch] = acc.drain(CLUSTER, {1}, 0)[1]
    acc.reenqueue(batch, now_ms=0)
    assert 80 <= batch.retry_at_ms <= 100  # 100 ms with -20 % jitter, capped at the max
    r = acc.ready(CLUSTER, 10)
    assert r.nodes == set() and r.next_ready_ms == batch.retry_at_ms - 10
    assert acc.ready(CLUSTER, batch.retry_at_ms).nodes == {1}


def test_retry_goes_back_to_the_head_of_its_partition() -> None:
    acc = make_accumulator(linger_ms=0, batch_size=100)
    append(acc, T0, b"a" * 60, now=0)
    [first] = acc.drain(CLUSTER, {1}, 0)[1]
    append(acc, T0, b"b" * 60, now=1)
    append(acc, T0, b"c" * 60, now=2)
    acc.reenqueue(first, now_ms=3)
    assert acc.batches[T0][0] is first and len(acc.batches[T0]) == 3


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    assert [backoff_ms(a, 100, 1000, lambda: 0.5) for a in (1, 2, 3, 4, 5, 10)] == [
        100,
        200,
        400,
        800,
        1000,
        1000,
    ]
    assert backoff_ms(1, 100, 1000, lambda: 0.0) == 80
    assert backoff_ms(1, 100, 1000, lambda: 1.0) == 120
    assert backoff_ms(4, 100, 1000, lambda: 1.0) == 960
    assert backoff_ms(5, 100, 1000, lambda: 1.0) == 1000  # never above the max


def test_drain_takes_one_batch_per_partition_up_to_max_request_size() -> None:
    acc = make_accumulator(linger_ms=0, batch_size=400, max_request_size=1000)
    tps = [TopicPartition("u", p) for p in range(6)]
    cluster = make_cluster({"u": [1] * 6})
    for tp in tps:
        append(acc, tp, b"x" * 300, now=0)
        append(acc, tp, b"x" * 300, now=0)  # a second batch per partition
    drained = acc.drain(cluster, {1}, 0)[1]
    assert len(drained) == 2  # 2 x ~370 bytes fit in 1000, a third does not
    assert len({b.tp for b in drained}) == len(drained)  # never two of one partition
    second = acc.drain(cluster, {1}, 0)[1]
    # The rotation resumes where the last drain stopped: no partition starves.
    assert {b.tp for b in second}.isdisjoint({b.tp for b in drained})


def test_a_filling_batch_does_not_ride_along_with_a_ready_partition() -> None:
    """T0 (node 1) has a full batch; T2 (node 1 too) a young open one. Draining node 1 takes
    only T0's: T2's waits for its linger, its fill, a flush, or memory pressure."""
    acc = make_accumulator(batch_size=200, linger_ms=10)
    t2 = TopicPartition("t", 2)
    append(acc, T0, b"x" * 150, now=0)  # full on its own
    append(acc, t2, b"y", now=0)
    assert acc.ready(CLUSTER, 1).nodes == {1}
    assert [b.tp for b in acc.drain(CLUSTER, {1}, 1).get(1, [])] == [T0]
    assert acc.drain(CLUSTER, {1}, 5) == {}  # T2 is still lingering
    assert [b.tp for b in acc.drain(CLUSTER, {1}, 10)[1]] == [t2]  # its linger is over


def test_a_refused_record_closes_its_batch_and_memory_pressure_forces_all() -> None:
    acc = make_accumulator(batch_size=200, linger_ms=10_000)
    t2 = TopicPartition("t", 2)
    append(acc, T0, b"x", now=0)
    append(acc, t2, b"y", now=0)
    acc.batches[T0][0].closed = True  # what the producer does when a record does not fit
    assert [b.tp for b in acc.drain(CLUSTER, {1}, 0)[1]] == [T0]
    acc.flushes_in_progress += 1  # forced: every batch goes
    assert [b.tp for b in acc.drain(CLUSTER, {1}, 0)[1]] == [t2]


def test_drain_rotates_the_start_partition() -> None:
    acc = make_accumulator(linger_ms=0, batch_size=400, max_request_size=100_000)
    cluster = make_cluster({"u": [1] * 4})
    starts = []
    for round_ in range(4):
        for p in range(4):
            append(acc, TopicPartition("u", p), b"x", now=round_)
        starts.append(acc.drain(cluster, {1}, round_)[1][0].tp.partition)
    assert sorted(starts) == [0, 1, 2, 3]


@pytest.mark.parametrize("busy", [3, 40])
def test_drain_order_is_the_same_with_few_or_many_busy_partitions(busy: int) -> None:
    """A node leading 100 partitions: with few of them holding batches the drain visits only
    those (not all 100), in the same round-robin order as the full pass."""
    n = 100
    cluster = make_cluster({"u": [1] * n})
    busy_parts = sorted({(7 * i + 5) % n for i in range(busy)})

    def drains() -> list[list[int]]:
        acc = make_accumulator(linger_ms=0, batch_size=400, max_request_size=1200)
        for p in busy_parts:
            append(acc, TopicPartition("u", p), b"x" * 300, now=0)
            append(acc, TopicPartition("u", p), b"x" * 300, now=0)
        acc._drain_index[1] = 37
        out = []
        while acc.batches:
            out.append([b.tp.partition for b in acc.drain(cluster, {1}, 0).get(1, [])])
        return out

    got = drains()
    expected: list[list[int]] = []
    # The reference: a full pass from the drain index, up to 3 batches (max_request_size).
    queues = {p: 2 for p in busy_parts}
    start = 37
    while queues:
        req: list[int] = []
        stop = None
        for i in range(n):
            p = (start + i) % n
            if p in queues:
                if len(req) == 3:
                    stop = p
                    break
                req.append(p)
        for p in req:
            queues[p] -= 1
            if not queues[p]:
                del queues[p]
        expected.append(req)
        start = stop if stop is not None else (start + 1) % n
    assert got == expected


def test_drained_batches_are_sealed_and_decodable() -> None:
    acc = make_accumulator(linger_ms=0)
    append(acc, T0, b"hello", now=7)
    [b] = acc.drain(CLUSTER, {1}, 7)[1]
    [decoded] = read_batches(b.builder.build())
    assert decoded.records[0].value == b"hello"
    assert T0 not in acc.batches


def test_batches_past_delivery_timeout_expire() -> None:
    acc = make_accumulator(delivery_timeout_ms=5000, linger_ms=10_000)
    append(acc, T0, b"x", now=0)
    append(acc, T1, b"x", now=3000)
    assert acc.expire(4999) == []
    assert acc.next_expiry_ms(4999) == 1
    [gone] = acc.expire(5000)
    assert gone.tp == T0 and T0 not in acc.batches
    assert [b.tp for b in acc.expire(8000)] == [T1]


def test_the_expiry_floor_skips_scans_until_a_batch_can_expire() -> None:
    acc = make_accumulator(delivery_timeout_ms=5000, linger_ms=0)
    assert acc.next_expiry_ms(0) == 1 << 30  # nothing queued
    append(acc, T0, b"x", now=0)
    append(acc, T1, b"x", now=3000)
    assert acc.expiry_floor_ms == 5000 and acc.next_expiry_ms(1000) == 4000
    [in_flight] = acc.drain(CLUSTER, {1}, 3000)[1]  # T0's batch leaves the queue, in flight
    assert in_flight.tp == T0
    acc.batches[T1][0].created_ms = -10  # a scan would find it: the floor says none is due
    assert acc.expire(4999) == []
    acc.batches[T1][0].created_ms = 3000
    assert acc.expire(5000) == []  # the floor is reached: a scan; only T0's, in flight, is due
    assert acc.expiry_floor_ms == 5000  # ... and it stays the floor until the sender fails it
    acc.done(in_flight)
    assert acc.expire(5001) == [] and acc.expiry_floor_ms == 8000
    [gone] = acc.expire(8000)
    assert gone.tp == T1 and acc.expiry_floor_ms == 1 << 62


def test_done_returns_memory_to_the_pool() -> None:
    pool = MemoryPool(10_000)
    acc = make_accumulator(pool=pool, batch_size=1000, linger_ms=0)
    append(acc, T0, b"x", now=0)
    assert pool.available == 9000
    [b] = acc.drain(CLUSTER, {1}, 0)[1]
    b.complete(5, -1, None)
    acc.done(b)
    assert pool.available == 10_000 and not acc.incomplete


def test_split_keeps_every_record_and_its_handle() -> None:
    acc = make_accumulator(linger_ms=0, batch_size=100, max_request_size=100_000)
    handles = []
    first = try_append(acc, T0, 0, None, b"v", None)
    assert first is None
    assert acc.pool.try_allocate(5000)
    h, _ = acc.append_new_batch(T0, 0, b"k0", b"v0", None, None, 0, 5000)
    handles.append(h)
    big = acc.batches[T0][0]
    big.builder.batch_size = 10_000  # pretend it grew beyond what the broker takes
    big.builder.set_ratio(1.0)
    for i in range(1, 20):
        h2 = try_append(acc, T0, i, b"k%d" % i, b"v%d" % i * 10, [("h", b"x")])
        assert h2 is not None
        handles.append(h2)
    [drained] = acc.drain(CLUSTER, {1}, 0)[1]
    n = acc.split_and_reenqueue(drained, now_ms=1)
    assert n > 1 and len(acc.batches[T0]) == n
    assert sum(b.record_count for b in acc.batches[T0]) == 20
    seen = []
    for b in acc.batches[T0]:
        [dec] = read_batches(b.builder.build())
        seen += [(r.key, r.value, r.timestamp) for r in dec.records]
    assert seen == [(b"k0", b"v0", 0)] + [(b"k%d" % i, b"v%d" % i * 10, i) for i in range(1, 20)]
    # Each old handle now points at its new batch and offset.
    for i, h in enumerate(handles):
        [dec] = read_batches(h.batch.builder.build())
        assert dec.records[h.relative_offset].key == (b"k%d" % i)
    # The reservation moved: completing all the new batches returns all memory.
    for b in list(acc.batches[T0]):
        b.complete(0, -1, None)
        acc.done(b)
    assert acc.pool.available == acc.pool.total


def test_expiry_error_is_a_timeout_naming_the_partition() -> None:
    # The sender builds the message; here we only check the type users catch.
    assert issubclass(KafkaTimeoutError, TimeoutError)
    assert FakeCompletion().fired == 0


def test_load_stats_skip_partitions_of_a_node_that_stopped_draining() -> None:
    acc = make_accumulator(linger_ms=0)
    cluster = make_cluster({"t": [1, 2, 1]})
    for p in (0, 1, 1):
        append(acc, TopicPartition("t", p), b"x" * 600, now=0)
    acc.ready(cluster, 0)
    acc.drain(cluster, {1}, 0)
    assert load_stats(acc, "t", cluster, 0) == ([0, 1, 2], [0, 2, 0])
    acc.ready(cluster, 5000)  # node 2 has been ready for 5 s and never drained
    assert load_stats(acc, "t", cluster, 1000) == ([0, 2], [0, 0])
    assert load_stats(acc, "t", cluster, 10_000) == ([0, 1, 2], [0, 2, 0])


def test_retried_batches_go_back_in_creation_order_whatever_order_they_failed_in() -> None:
    """Two batches of a partition failed in flight (a dropped connection fails them in
    request order). Before the fix each went to the very head of the deque, so the newer
    one ended up in front and the partition was reordered by the retry."""
    acc = make_accumulator(batch_size=100, linger_ms=0)
    for v in (b"a", b"b", b"c"):
        append(acc, T0, v * 80, now=0)
    drained = acc.drain(CLUSTER, {1}, 0)[1] + acc.drain(CLUSTER, {1}, 0)[1]
    a, b = drained[0], drained[1]
    acc.reenqueue(a, 1)  # answers come in request order: the older fails first
    acc.reenqueue(b, 1)
    assert list(acc.batches[T0])[:2] == [a, b]


def test_a_deque_holding_an_expired_batch_behind_a_younger_one_expires_it() -> None:
    """Before the fix only a run of expired batches at the head of a deque expired, while
    the expiry floor counted every batch: a younger head kept an expired batch queued, the
    floor stayed in the past and the sender turned at once, forever (100 % CPU)."""
    acc = make_accumulator(batch_size=100, linger_ms=0, delivery_timeout_ms=1000)
    append(acc, T0, b"a" * 80, now=0)
    append(acc, T0, b"b" * 80, now=500)
    old, young = list(acc.batches[T0])
    acc.batches[T0].clear()
    acc.batches[T0].extend([young, old])  # however it came about
    assert acc.expire(1200) == [old]
    assert acc.next_expiry_ms(1200) == 300


def test_an_idempotent_split_keeps_the_sequences_of_the_batch_it_replaces() -> None:
    """MESSAGE_TOO_LARGE on a sequenced batch: the pieces take the original's sequences
    (Java's splitAndReenqueue). Before the fix they had none, were sequenced after every
    later batch, and the broker (still expecting the original's sequence) answered
    OUT_OF_ORDER_SEQUENCE_NUMBER until their delivery timeout."""
    acc = make_accumulator(batch_size=300, linger_ms=0)
    for i in range(10):
        append(acc, T0, b"%02d" % i + b"x" * 40, now=0)
    [big] = acc.drain(CLUSTER, {1}, 0)[1]
    big.base_sequence, big.producer_id, big.producer_epoch = 40, 7, 3
    total = big.record_count
    acc.batch_size = 100
    n = acc.split_and_reenqueue(big, 10)
    pieces = list(acc.batches[T0])[:n]
    assert n > 1
    seqs = [p.base_sequence for p in pieces]
    counts = [p.record_count for p in pieces]
    assert seqs[0] == 40, (seqs, counts)
    assert all(seqs[i + 1] == seqs[i] + counts[i] for i in range(n - 1)), (seqs, counts)
    assert sum(counts) == total
    assert {(p.producer_id, p.producer_epoch) for p in pieces} == {(7, 3)}


def test_a_lingering_batch_beside_a_ready_partition_of_its_node_keeps_its_deadline() -> None:
    """Seed 814 (acks=0, so no answer wakes the sender): t-1's batch was ready, t-0's (same
    node) was still lingering. ``ready()`` skipped the rest of a node once it was ready, so
    t-0's linger deadline was never reported; the drain took only t-1's batch and the sender
    slept until the delivery timeout with t-0's batch unsent."""
    acc = make_accumulator(linger_ms=5)
    cluster = make_cluster({"t": [1, 1]})
    append(acc, T1, b"old", now=0)
    append(acc, T0, b"new", now=4)
    r = acc.ready(cluster, 5)
    assert r.nodes == {1} and r.next_ready_ms == 4


def test_a_split_piece_takes_no_new_record() -> None:
    """Seed 70949: the last piece of a split batch was the deque's last batch, so the next
    record was appended to it, beyond the sequence range it had taken over: two batches then
    claimed the same sequences and the partition looped on OUT_OF_ORDER_SEQUENCE_NUMBER."""
    acc = make_accumulator(batch_size=300, linger_ms=0)
    for i in range(4):
        append(acc, T0, b"%02d" % i + b"x" * 40, now=0)
    [big] = acc.drain(CLUSTER, {1}, 0)[1]
    big.base_sequence, big.producer_id, big.producer_epoch = 0, 7, 0
    n = acc.split_and_reenqueue(big, 10)
    last = acc.batches[T0][-1]
    count = last.record_count
    assert try_append(acc, T0, 0, None, b"new", None) is None
    assert last.record_count == count and len(acc.batches[T0]) == n
