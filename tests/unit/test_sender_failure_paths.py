"""Regression tests for the sender's failure paths (the failure-paths issue, items 1-5, 9, 16,
17, and seeds the simulator found): each failed on the code before its fix, for the reason its
docstring gives. Each runs a real ``Producer`` against the simulated cluster with the one
scripted answer it needs (``tests/sim/script.py``), in virtual time."""

from __future__ import annotations

import itertools
from typing import Any

from aioproducer import KafkaTimeoutError, Producer, RecordFuture
from aioproducer._core.cluster import TopicPartition
from aioproducer.errors import PersistedStatus, ProtocolError
from aioproducer.metrics import MetricName, value_of
from tests.sim.scenario import leader_of, log_of, requests_for, run, until
from tests.sim.script import Answer, Reply, on_partition, on_request
from tests.sim.world import World

from . import sending
from .sending import (
    BIG,
    IDEMPOTENT,
    ONE_BROKER,
    PLAIN,
    SHORT,
    Send,
    failure,
    headers,
    now,
    pid_of,
    sees_the_cluster_now,
    sends,
    settled,
    slow_answers,
)

#: A delivery timeout several request timeouts long.
LONG: dict[str, Any] = dict(request_timeout_ms=1000, delivery_timeout_ms=6000)
#: The cluster re-read every 100 ms: a moved leader is known while a request is in flight.
FRESH: dict[str, Any] = dict(metadata_max_age_ms=100)


# -- item 1: every failure of a sequenced batch leaves the partition able to progress --------------


def test_a_retried_batch_that_expires_in_the_queue_bumps_the_epoch() -> None:
    """The request was lost, the broker stayed away past the delivery timeout: the retried
    batch (sequence 0) expired. Before the fix no epoch bump followed, the next batch got
    sequence 1 and the broker (expecting 0) answered OUT_OF_ORDER_SEQUENCE_NUMBER forever:
    the partition was wedged."""
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_request(0, Reply(fate="reset_before")))
        leader = leader_of(w, 0)
        futs.append(await p.send("t0", b"a", partition=0))
        await until(lambda: w.cluster.produce_seen, "the first request")
        w.cluster.set_leader("t0", 0, -1)  # the partition goes offline
        await settled(futs)
        w.cluster.set_leader("t0", 0, leader)
        futs.append(await p.send("t0", b"b", partition=0))
        await settled(futs)

    w = run(body, **{**IDEMPOTENT, **LONG, **FRESH})
    assert isinstance(futs[0].exception(), KafkaTimeoutError)
    pid = pid_of(w)
    assert headers(w)[0] == (pid, 0, 0, 1) and headers(w)[-1] == (pid, 1, 0, 1)
    assert futs[1].result().offset == 0 and log_of(w, 0) == [b"b"]


def test_a_sequenced_batch_failing_with_a_non_retriable_error_bumps_the_epoch() -> None:
    r = sends([on_partition("t0", 0, Answer(error=87))], [b"a"], [b"b"], **IDEMPOTENT)
    assert r.futs[0].exception() is not None and r.futs[1].result().offset == 0
    pid = pid_of(r.world)
    assert headers(r.world) == [(pid, 0, 0, 1), (pid, 1, 0, 1)]


# -- items 1 and 9: a response that lacks a partition ----------------------------------------------

OMIT_P0 = on_request(0, Reply({("t0", 0): Answer(omit=True)}))  # written, not in the answer


def test_a_partition_missing_from_the_response_is_retried_with_its_sequence() -> None:
    """The broker appended the batch, then answered without its partition. Before the fix the
    record failed at once as NOT_PERSISTED (it is in the log) and no epoch bump followed."""
    r = sends([OMIT_P0], [b"a", (1, b"b")], sim=ONE_BROKER, **IDEMPOTENT)
    w = r.world
    assert [len(r.batches) for r in w.cluster.produce_seen] == [2, 1]  # one request, a retry
    pid = pid_of(w)
    assert headers(w) == [(pid, 0, 0, 1), (pid, 0, 0, 1)]  # the same sequence: deduplicated
    assert r.offsets() == [0, 0] and log_of(w, 0) == [b"a"]


def test_a_missing_partition_that_is_not_retried_is_possibly_persisted() -> None:
    backoff = dict(retry_backoff_ms=10_000, retry_backoff_max_ms=10_000)  # past the timeout
    config = {**IDEMPOTENT, **LONG, **backoff}
    r = sends([OMIT_P0], [b"a", (1, b"b")], [b"c"], sim=ONE_BROKER, **config)
    exc = failure(r.futs[0])
    assert isinstance(exc, KafkaTimeoutError)
    assert exc.persisted_status is PersistedStatus.POSSIBLY_PERSISTED
    pid = pid_of(r.world)
    # The gap is closed by an epoch bump.
    assert headers(r.world) == [(pid, 0, 0, 1), (pid, 1, 0, 1)]
    assert log_of(r.world, 0) == [b"a", b"c"]


def test_a_missing_partition_without_retries_fails_as_a_protocol_error() -> None:
    r = sends([OMIT_P0], [b"a", (1, b"b")], sim=ONE_BROKER, retries=0, **PLAIN)
    exc = failure(r.futs[0])
    assert isinstance(exc, ProtocolError) and "no result for t0-0" in str(exc)
    assert exc.persisted_status is PersistedStatus.POSSIBLY_PERSISTED


def test_a_partition_answered_twice_with_different_results_is_possibly_persisted() -> None:
    """An answer carrying NOT_LEADER and success for one partition: the outcome is unknown.
    Before the fix the first entry decided alone (NOT_PERSISTED)."""
    twice = on_partition("t0", 0, Answer(error=6, extra=(0,)))
    r = sends([twice], [b"a"], retries=0, **PLAIN)
    assert failure(r.futs[0]).persisted_status is PersistedStatus.POSSIBLY_PERSISTED


# -- item 3: a late acknowledgement after an in-flight expiry --------------------------------------


def test_a_late_ack_after_in_flight_expiry_keeps_the_sequence_state() -> None:
    """Before the fix a completed batch's ``record_count`` read 0, so the late ack set the
    partition's last acknowledged sequence to 2**31 - 1. No answer shows it (the epoch bump
    that follows restarts the partition), so this reads the two values themselves."""
    seen: dict[str, Any] = {}

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_request(0, Reply({("t0", 0): Answer(error=6)})))
        futs = [await p.send("t0", b"a", partition=0), await p.send("t0", b"b", partition=0)]
        late = (sending.created_ms() + 1200) / 1000
        w.cluster.produce_rules.append(on_request(1, Reply(at_s=late)))  # written, late
        await settled(futs)
        await until(lambda: now() > late + 0.001, "the late answer")
        assert p._sender is not None and p._sender.idem is not None
        seen["last_acked"] = p._sender.idem.partitions[TopicPartition("t0", 0)].last_acked
        seen["record_count"] = futs[0].batch.record_count
        seen["exc"] = futs[0].exception()

    run(body, **{**IDEMPOTENT, **SHORT, "retry_backoff_ms": 500, "retry_backoff_max_ms": 500})
    assert isinstance(seen["exc"], KafkaTimeoutError)  # expired in flight
    assert seen["record_count"] == 2 and seen["last_acked"] == 1


# -- item 4: a failed batch is never written -------------------------------------------------------


def test_a_batch_that_expired_while_compressing_is_not_written() -> None:
    """Before the fix the pending write was flushed anyway: the batch (its buffers already
    released) went to the broker after its records had failed."""
    futs: list[RecordFuture] = []

    def very_slow_worker(w: World) -> None:
        w.loop.executor_delay = lambda: 2.0  # longer than the delivery timeout

    async def body(p: Producer, w: World) -> None:
        futs.extend(await sending.big_batch_in_the_compressor(p, w))
        await settled(futs)
        await until(lambda: now() > 2.5, "the compression's end")

    w = run(body, setup=very_slow_worker, **{**PLAIN, **BIG, **SHORT})
    assert isinstance(futs[0].exception(), KafkaTimeoutError)
    assert w.cluster.produce_seen == [] and log_of(w, 0) == []


def test_a_cancelled_compression_retries_the_batch() -> None:
    """Before the fix the done-callback called ``exception()`` on the cancelled future, which
    raised inside the callback (an error handed to the loop, which the run's checks report):
    the batch was left neither written nor failed."""
    futs: list[RecordFuture] = []

    def cancel_first_job(w: World) -> None:
        jobs = iter([True])
        w.loop.executor_cancel = lambda: next(jobs, False)

    async def body(p: Producer, w: World) -> None:
        futs.extend(await sending.big_batch_in_the_compressor(p, w))
        await settled(futs)

    w = run(body, setup=cancel_first_job, **{**PLAIN, **BIG})
    assert w.loop.executor_jobs == 2  # compressed again
    assert [f.result().offset for f in futs] == list(range(400))
    assert len(w.cluster.produce_seen) == 1


# -- item 5: the sender ends once nothing is left --------------------------------------------------


def test_a_closing_sender_ends_when_its_last_records_expire() -> None:
    """Before the fix the last turn expired the in-flight batches, then slept for the metadata
    refresh interval (or forever) instead of ending: ``close()`` hung."""
    futs: list[RecordFuture] = []
    closed_at: list[float] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(lambda req: Reply(fate="drop_request"))  # every one
        futs.append(await p.send("t0", b"a", partition=0))
        await until(lambda: w.cluster.produce_seen, "the first request")
        await p.close()
        closed_at.append(now())

    run(body, **{**PLAIN, **LONG})
    assert isinstance(futs[0].exception(), KafkaTimeoutError)
    assert closed_at[0] < 6.5  # at the delivery timeout


# -- items 6 and 7: connection attempts always go through the reconnect backoff --------------------

BACKOFF_50: dict[str, Any] = dict(reconnect_backoff_ms=50, reconnect_backoff_max_ms=50)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_the_bootstrap_connection_is_retried_after_its_backoff() -> None:
    """Before the fix a failed bootstrap connection left the sender asleep with no deadline:
    no second attempt was ever made (``start()`` timed out)."""

    def late_bootstrap(w: World) -> None:
        w.cluster.brokers[0].listen_from = 0.3

    async def body(p: Producer, w: World) -> None:
        await settled([await p.send("t0", b"a", partition=0)])

    w = run(body, setup=late_bootstrap, **{**PLAIN, **BACKOFF_50})
    host = w.cluster.brokers[0].host
    refused = [t for t, h, _ in w.loop.connect_attempts if h == host and t < 0.3]
    assert len(refused) >= 2 and min(gaps(refused)) >= 0.039  # 50 ms +-20 %


def bad_port(w: World) -> None:
    """t0-0 is led by broker 1, which the metadata advertises at port 70000."""
    w.cluster.set_leader("t0", 0, 1)
    w.cluster.bad_port = 1
    w.cluster.changed()


def test_an_unexpected_error_opening_a_connection_backs_off() -> None:
    """A broker advertised at port 70000: ``create_connection`` raises ``OverflowError``.
    Before the fix it escaped the connect task (never retrieved), no backoff was recorded and
    the sender retried at once, forever, at 100 % CPU."""
    r = sends([], [b"a"], setup=bad_port, **{**PLAIN, **BACKOFF_50, **SHORT})
    tries = [t for t, _, port in r.world.loop.connect_attempts if port == 70000]
    assert 2 <= len(tries) <= 30 and min(gaps(tries)) >= 0.039
    assert isinstance(r.futs[0].exception(), KafkaTimeoutError)


def test_a_broker_at_a_new_address_is_tried_without_the_old_backoff() -> None:
    """Seed 6194: a broker was advertised at a bad port, then fixed; the next attempt still
    went to the stale address, failed, and the refreshed address waited out a full reconnect
    backoff (longer than the delivery timeout). A backoff belongs to the address that failed."""
    futs: list[RecordFuture] = []
    fixed_at: list[float] = []

    async def body(p: Producer, w: World) -> None:
        futs.append(await p.send("t0", b"a", partition=0))
        await until(lambda: any(port == 70000 for _, _, port in w.loop.connect_attempts), "70000")
        w.cluster.bad_port = None
        w.cluster.changed()
        fixed_at.append(now())
        await settled(futs)

    slow = dict(reconnect_backoff_ms=1000, reconnect_backoff_max_ms=1000)
    w = run(body, setup=bad_port, **{**PLAIN, **slow, **FRESH})
    host = w.cluster.brokers[1].host
    good = [t for t, h, port in w.loop.connect_attempts if h == host and port == 9092]
    assert good and good[0] - fixed_at[0] < 0.3  # not a second later
    assert futs[0].result().offset == 0


# -- item 16: a KIP-951 leader hint skips the retry backoff ----------------------------------------


def test_a_retry_to_a_new_leader_named_in_the_response_skips_the_backoff() -> None:
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        await p.partitions_for("t0")
        new = (leader_of(w, 0) + 1) % 3
        w.cluster.set_leader("t0", 0, new)  # the producer's view is now stale
        futs.append(await p.send("t0", b"a", partition=0))
        await settled(futs)

    w = run(body, **{**PLAIN, "retry_backoff_ms": 500, "retry_backoff_max_ms": 500})
    old, retry = requests_for(w, 0)  # NOT_LEADER_OR_FOLLOWER, naming the new leader
    assert old.broker != retry.broker == leader_of(w, 0)
    assert old.answered_at is not None and retry.at - old.answered_at < 0.05  # no backoff
    assert futs[0].result().offset == 0


# -- item 17: throttling (KIP-219) -----------------------------------------------------------------


def test_a_throttled_broker_gets_nothing_until_the_throttle_has_passed() -> None:
    futs: list[RecordFuture] = []
    metrics: list[dict[MetricName, float]] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_request(0, Reply(throttle_ms=300)))
        futs.append(await p.send("t0", b"a", partition=0))
        await settled(futs)
        metrics.append(p.metrics())
        futs.append(await p.send("t0", b"b", partition=0))
        await settled(futs)

    w = run(body, **PLAIN)
    first, second = w.cluster.produce_seen
    assert first.answered_at is not None and second.at - first.answered_at >= 0.3  # held back
    assert value_of(metrics[0], "produce-throttle-time-max") == 300
    assert [f.result().offset for f in futs] == [0, 1]


def test_the_fast_response_path_reads_the_throttle_time() -> None:
    """The hand-written decoder skipped ``throttle_time_ms`` of an all-success answer."""
    from aioproducer._protocol.messages import ProduceResponse
    from aioproducer._protocol.produce import decode_produce_acks

    P = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
    resp = ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name="t", partition_responses=[P(index=0, error_code=0, base_offset=0)]
            )
        ],
        throttle_time_ms=300,
    )
    for version in (3, 8, 9, 11):
        frame = bytearray(b"\0\0\0\1")
        if version >= 9:
            frame.append(0)
        resp.encode_into(frame, version)
        acks = decode_produce_acks(bytes(frame), version)
        assert acks is None or getattr(acks, "throttle_time_ms", 0) == 300


# -- item 2: no newer batch travels beside a retry ----------------------------------------------


def test_a_new_batch_waits_for_the_retry_of_an_earlier_one_to_succeed() -> None:
    """Cause of the reorder on librdkafka's mock: after a failed attempt, the retry and a
    newer batch of the partition were in flight together; the retry failed again, the newer
    batch was written and the retry landed behind it. Now the partition is back to one batch
    in flight until the next success."""
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        futs.append(await p.send("t0", b"a" * 80, partition=0))
        await settled(futs)  # a success: pipelining allowed
        w.cluster.produce_rules += [on_partition("t0", 0, Answer(error=6)), slow_answers()]
        futs.append(await p.send("t0", b"b" * 80, partition=0))
        await until(lambda: len(w.cluster.produce_seen) == 2, "b's first attempt")
        await until(lambda: now() > w.cluster.produce_seen[1].at + 0.01, "its answer")
        futs.append(await p.send("t0", b"c" * 80, partition=0))  # while b backs off
        await settled(futs)

    w = run(body, batch_size=100, **IDEMPOTENT)
    reqs = requests_for(w, 0)
    assert [r.batches[0].base_sequence for r in reqs] == [0, 1, 1, 2]
    assert sending.answered_before(reqs[3], reqs[2])  # c waited for b's retry to succeed
    assert [f.result().offset for f in futs] == [0, 1, 2]


# -- found by the simulator ------------------------------------------------------------------------


def test_an_epoch_bump_keeps_other_partitions_retries_on_their_sequences() -> None:
    """Seed 411: t0-0's batch got NOT_ENOUGH_REPLICAS_AFTER_APPEND (written, retried); a
    batch of t0-1 failed for good and bumped the epoch. Before the fix the bump re-sequenced
    every queued batch, so t0-0's retry went out as a new batch of the new epoch and was
    written twice. A retry elsewhere keeps its epoch and sequence; its partition moves to
    the new epoch after."""
    answers = {("t0", 0): Answer(error=20, append=True), ("t0", 1): Answer(error=87)}
    rounds: list[list[Send]] = [[b"a", (1, b"b")], [b"c", (1, b"d")]]
    r = sends([on_request(0, Reply(answers))], *rounds, sim=ONE_BROKER, **IDEMPOTENT)
    w, futs = r.world, r.futs
    pid = pid_of(w)
    assert headers(w, 0) == [(pid, 0, 0, 1), (pid, 0, 0, 1), (pid, 1, 0, 1)]
    assert headers(w, 1) == [(pid, 0, 0, 1), (pid, 1, 0, 1)]
    assert futs[1].exception() is not None
    assert [futs[i].result().offset for i in (0, 2, 3)] == [0, 1, 0]
    assert log_of(w, 0) == [b"a", b"c"]  # once


def test_a_request_being_compressed_counts_against_max_in_flight() -> None:
    """Seed 948 (``max_in_flight_requests_per_connection=1``): while a big batch was being
    compressed off the loop its request was not counted, so a second request went out beside
    it and a retry was overtaken (order broken with one request in flight)."""
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(slow_answers())
        futs.extend(await sending.big_batch_in_the_compressor(p, w))
        futs.append(await p.send("t0", b"small", partition=1))
        await settled(futs)

    w = run(
        body,
        sim=ONE_BROKER,
        setup=sending.slow_worker,
        max_in_flight_requests_per_connection=1,
        **{**PLAIN, **BIG},
    )
    big, small = w.cluster.produce_seen
    assert big.batch("t0", 0) is not None and small.batch("t0", 1) is not None
    assert sending.answered_before(small, big)  # the small one waited for the big one's answer
    assert futs[-1].result().offset == 0


def test_records_in_flight_when_close_times_out_are_possibly_persisted() -> None:
    """Seeds 1085, 1319, 1399, 1837: ``close(timeout)`` failed records whose request was
    written and not answered as NOT_PERSISTED, although the broker had written them."""
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_request(0, Reply(fate="drop_response")))
        futs.append(await p.send("t0", b"a", partition=0))
        await until(lambda: w.cluster.produce_seen, "the first request")
        futs.append(await p.send("t0", b"b", partition=1))  # queued behind it
        await p.close(0.1)

    w = run(body, sim=ONE_BROKER, max_in_flight_requests_per_connection=1, **PLAIN)
    sent, queued = (failure(f) for f in futs)
    assert sent.persisted_status is PersistedStatus.POSSIBLY_PERSISTED
    assert queued.persisted_status is PersistedStatus.NOT_PERSISTED
    assert log_of(w, 0) == [b"a"] and log_of(w, 1) == []


def test_one_in_flight_keeps_order_across_a_leader_change() -> None:
    """Seed 1880 (no idempotence, ``max_in_flight_requests_per_connection=1``): a batch was
    in flight to the old leader when the partition moved; the next batch went to the new
    leader on another connection, and the first one, retried after its request timed out,
    landed behind it. Java mutes a partition with a batch in flight in this mode."""
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules += [on_request(0, Reply(fate="drop_request")), slow_answers()]
        futs.append(await p.send("t0", b"a", partition=0))
        await until(lambda: w.cluster.produce_seen, "the first request")
        w.cluster.set_leader("t0", 0, (leader_of(w, 0) + 1) % 3)
        await sees_the_cluster_now(p, w)
        futs.append(await p.send("t0", b"b", partition=0))
        await settled(futs)

    w = run(body, max_in_flight_requests_per_connection=1, **{**PLAIN, **LONG, **FRESH})
    lost, a_again, b = requests_for(w, 0)
    assert a_again.broker == b.broker == leader_of(w, 0) != lost.broker
    assert a_again.batches[0].values == (b"a",) and sending.answered_before(b, a_again)
    assert [f.result().offset for f in futs] == [0, 1] and log_of(w, 0) == [b"a", b"b"]


def test_a_lingering_batch_behind_a_drained_one_keeps_its_deadline() -> None:
    """Seed 1555 (acks=0): a full batch and a lingering one in the same partition; the
    drain took the first, and the turn went back to sleep without the second's linger
    deadline (the turn's ready() looked at the partition's head only)."""
    sent_at: list[float] = []

    async def body(p: Producer, w: World) -> None:
        await p.send("t0", b"x" * 130, partition=0)  # a full batch
        await p.send("t0", b"y" * 20, partition=0)  # did not fit: a new batch, which lingers
        sent_at.append(now())
        await until(lambda: len(w.cluster.produce_seen) == 2, "both batches", within_s=1)

    w = run(body, acks=0, batch_size=200, **{**PLAIN, "linger_ms": 5})
    full, lingering = w.cluster.produce_seen
    assert full.batches[0].values == (b"x" * 130,)
    assert lingering.at - sent_at[0] < 0.01  # its linger (5 ms) and a link's latency


def test_an_idempotent_partition_moves_to_a_new_leader_only_when_nothing_is_in_flight() -> None:
    """Seed 3832: batches of t0-0 were in flight to the old leader (its link black-holed) when
    the partition moved; the next batch went to the new leader at once, which (having lost
    the producer's state) wrote it ahead of them. A partition now follows a new leader only
    once nothing of it is in flight to the old one (franz-go's ``inflightOnSink``)."""
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        futs.append(await p.send("t0", b"a", partition=0))
        await settled(futs)  # a success: pipelining allowed
        w.cluster.produce_rules += [on_request(1, Reply(fate="drop_request")), slow_answers()]
        futs.append(await p.send("t0", b"b", partition=0))
        await until(lambda: len(w.cluster.produce_seen) == 2, "b's request")
        w.cluster.set_leader("t0", 0, (leader_of(w, 0) + 1) % 3)
        await sees_the_cluster_now(p, w)
        futs.append(await p.send("t0", b"c", partition=0))
        await settled(futs)

    w = run(body, **{**IDEMPOTENT, **LONG, **FRESH})
    _, lost, b, c = requests_for(w, 0)
    assert b.broker == c.broker == leader_of(w, 0) != lost.broker
    assert [r.batches[0].base_sequence for r in (lost, b, c)] == [1, 1, 2]  # b's retry first
    assert sending.answered_before(c, b)
    assert [f.result().offset for f in futs] == [0, 1, 2]


def test_a_batch_that_may_be_written_is_not_split_on_message_too_large() -> None:
    """Seed 16927: a batch written with NOT_ENOUGH_REPLICAS_AFTER_APPEND was refused as too
    large on its retry and split; the broker could not recognise the pieces (other sequence
    ranges), so one was refused and reported NOT_PERSISTED although it was in the log, and
    the other written twice. Such a batch now fails, possibly persisted."""
    rules = [
        on_request(0, Reply({("t0", 0): Answer(error=20, append=True)})),
        on_request(1, Reply({("t0", 0): Answer(error=10)})),
    ]
    r = sends(rules, [b"x", b"y"], **{**IDEMPOTENT, "linger_ms": 5})
    for f in r.futs:
        assert failure(f).persisted_status is PersistedStatus.POSSIBLY_PERSISTED
    assert len(requests_for(r.world, 0)) == 2 and log_of(r.world, 0) == [b"x", b"y"]


def test_an_epoch_bump_keeps_a_possibly_written_batch_of_its_own_partition() -> None:
    """Seed 8717: in one partition, batch A failed for good and batch B's outcome was unknown
    (B may be in the log). A's failure bumped the epoch, which re-sequenced B: written twice.
    B now keeps its epoch and sequence (a broker that holds it acknowledges it again as a
    duplicate); when the broker refuses it as out of order, it was not written, and it is
    sequenced in the new epoch then."""
    rules = [
        on_request(1, Reply({("t0", 0): Answer(error=87)})),  # A: fails
        on_request(2, Reply({("t0", 0): Answer(error=20)})),  # B: may be written (is not)
    ]
    # A first batch succeeds (pipelining allowed), then A and B go out together.
    r = sends(rules, [b"a" * 80], [b"b" * 80, b"B" * 80], batch_size=100, **IDEMPOTENT)
    w, futs = r.world, r.futs
    pid = pid_of(w)
    assert headers(w) == [
        (pid, 0, 0, 1),
        (pid, 0, 1, 1),  # A
        (pid, 0, 2, 1),  # B
        (pid, 0, 2, 1),  # B after the bump: still epoch 0, sequence 2; refused (45)
        (pid, 1, 0, 1),  # now sequenced in epoch 1
    ]
    assert futs[1].exception() is not None and futs[2].result().offset == 1
