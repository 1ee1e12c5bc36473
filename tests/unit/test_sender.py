"""The sender's rules, each shown by a real ``Producer`` against the simulated cluster (Java's
``SenderTest``): the brokers answer as Kafka would, except the one answer a test scripts
(``tests/sim/script.py``). What is checked is what can be seen from outside: the records'
futures, the partitions' logs, the requests the brokers received (batches, producer ids,
epochs, sequences, times) and ``Producer.metrics()``. Virtual time: deterministic and fast."""

from __future__ import annotations

from typing import Any

import pytest

from aioproducer import KafkaTimeoutError, Producer, ProducerClosedError, RecordFuture
from aioproducer.errors import (
    IdempotenceUnavailableError,
    InvalidRecordError,
    MessageTooLargeError,
    NotLeaderOrFollowerError,
    OutOfOrderSequenceNumberError,
    PersistedStatus,
    ProducerFencedError,
)
from aioproducer.metrics import MetricName, value_of
from tests.sim.scenario import batches_of, log_of, requests_for, run, until
from tests.sim.script import Answer, ProduceSeen, Reply, on_partition, on_request
from tests.sim.world import World

from .sending import (
    A80,
    B80,
    BACKOFF_500,
    BIG,
    C80,
    IDEMPOTENT,
    ONE_BROKER,
    PLAIN,
    SHORT,
    answered_before,
    big_batch_in_the_compressor,
    created_ms,
    failure,
    headers,
    now,
    pid_of,
    refreshed_after,
    sends,
    settled,
    slow_answers,
    slow_worker,
)


def buffer_whole(metrics: dict[MetricName, float]) -> bool:
    return value_of(metrics, "buffer-available-bytes") == value_of(metrics, "buffer-total-bytes")


def test_success_completes_records_in_order_and_frees_memory() -> None:
    r = sends([], [b"v0", b"v1", b"v2"], **PLAIN)
    [req] = r.world.cluster.produce_seen
    assert req.acks == -1 and req.version == 11  # the newest version both sides speak
    assert r.offsets() == [0, 1, 2] and log_of(r.world, 0) == [b"v0", b"v1", b"v2"]
    assert buffer_whole(r.metrics)
    assert value_of(r.metrics, "batches-incomplete", "aioproducer-metrics") == 0
    assert value_of(r.metrics, "batches-queued", "aioproducer-metrics") == 0


def test_retriable_error_requeues_at_head_with_backoff_and_refreshes_metadata() -> None:
    """One request in flight per connection: the batch behind the failed one stays behind
    it, because the retry goes back at the head of the partition's queue."""
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_partition("t0", 0, Answer(error=6)))
        futs.extend([await p.send("t0", A80, partition=0), await p.send("t0", B80, partition=0)])
        await settled(futs)
        await refreshed_after(w, w.cluster.produce_seen[0].at)

    w = run(body, batch_size=100, max_in_flight_requests_per_connection=1, **PLAIN)
    first, retry, second = requests_for(w, 0)
    assert first.answered_at is not None
    assert [b.values for r in (first, retry, second) for b in r.batches] == [(A80,), (A80,), (B80,)]
    assert retry.at - first.answered_at >= 0.079  # the backoff: 100 ms +-20 %
    assert [f.result().offset for f in futs] == [0, 1] and log_of(w, 0) == [A80, B80]


def test_non_retriable_error_fails_the_batch_naming_the_partition() -> None:
    r = sends([on_partition("t0", 0, Answer(error=87))], [b"a"], **PLAIN)
    exc = failure(r.futs[0])
    assert isinstance(exc, InvalidRecordError) and "t0-0" in str(exc)
    assert exc.persisted_status is PersistedStatus.NOT_PERSISTED
    assert len(requests_for(r.world, 0)) == 1 and log_of(r.world, 0) == []
    assert buffer_whole(r.metrics)


def test_retries_are_bounded_by_the_retries_setting() -> None:
    r = sends([on_partition("t0", 0, Answer(error=6), times=99)], [b"a"], retries=1, **PLAIN)
    assert isinstance(r.futs[0].exception(), NotLeaderOrFollowerError)
    assert len(requests_for(r.world, 0)) == 2  # the first attempt and one retry


def test_no_retry_after_the_delivery_timeout() -> None:
    """The retry's answer (retriable) comes exactly at the delivery deadline: no new retry,
    the record fails with the broker's error."""
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_request(0, Reply({("t0", 0): Answer(error=6)})))
        futs.append(await p.send("t0", b"a", partition=0))
        deadline = (created_ms() + 1000) / 1000 + 1e-7  # (a float's rounding)
        w.cluster.produce_rules.append(
            on_request(1, Reply({("t0", 0): Answer(error=6)}, at_s=deadline))
        )
        await settled(futs)

    w = run(body, **{**PLAIN, **SHORT, **BACKOFF_500})
    assert isinstance(futs[0].exception(), NotLeaderOrFollowerError)
    assert len(requests_for(w, 0)) == 2


def test_message_too_large_splits_a_batch_with_several_records() -> None:
    """Compressed, a batch holds more records than ``batch_size`` uncompressed bytes; refused
    as too large, it is split into batches of ``batch_size`` that keep the records' order."""
    values = [b"%02d" % i + b"x" * 38 for i in range(10)]
    # 30 batches teach the producer the compression ratio; then one refused as too large.
    warm_up = [[b"%02d" % i + b"y" * 400] for i in range(30)]
    rule = on_request(30, Reply({("t0", 0): Answer(error=10)}))
    config = dict(batch_size=480, compression_type="gzip", linger_ms=50)
    r = sends([rule], *warm_up, values, **{**PLAIN, **config})
    refused, *after = batches_of(r.world, 0)[30:]
    assert len(refused.values) > 2 and list(refused.values) == values[: len(refused.values)]
    assert len(after[0].values) < len(refused.values)  # split: smaller batches
    assert [v for b in after for v in b.values] == values  # every record once, in order
    assert r.offsets()[30:] == list(range(30, 40)) and log_of(r.world, 0)[30:] == values


@pytest.mark.parametrize(
    "config", [IDEMPOTENT, {**PLAIN, "max_in_flight_requests_per_connection": 1}]
)
def test_a_topic_limit_below_batch_size_splits_until_the_pieces_fit(
    config: dict[str, Any],
) -> None:
    """The topic's ``max.message.bytes`` is below ``batch_size`` (KAFKA-8350): a refused batch
    re-batched at ``batch_size`` would be the same batch again, refused forever. Each split
    must make the pieces smaller, until they fit or are single records; and the pieces of
    pieces go out in record order (they share the refused batch's creation ordinal)."""

    def limit(req: ProduceSeen) -> Reply | None:  # the broker refuses more than 3 records
        b = req.batch("t0", 0)
        return Reply({("t0", 0): Answer(error=10)}) if b is not None and len(b.values) > 3 else None

    values = [b"%02d" % i + b"x" * 38 for i in range(10)]
    r = sends([limit], values, **{**config, "linger_ms": 50})
    assert r.offsets() == list(range(10)) and log_of(r.world, 0) == values
    assert len(requests_for(r.world, 0)) < 15  # a few splits, not a loop


def test_message_too_large_with_one_record_fails() -> None:
    r = sends([on_partition("t0", 0, Answer(error=10))], [b"a"], **PLAIN)
    assert isinstance(r.futs[0].exception(), MessageTooLargeError)
    assert len(requests_for(r.world, 0)) == 1


def test_a_dropped_connection_fails_in_flight_requests_as_retriable() -> None:
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_request(0, Reply(fate="reset_before")))
        futs.append(await p.send("t0", b"a", partition=0))
        await settled(futs)
        await refreshed_after(w, w.cluster.produce_seen[0].at)

    w = run(body, **PLAIN)
    lost, retry = requests_for(w, 0)
    assert futs[0].result().offset == 0 and log_of(w, 0) == [b"a"]
    assert lost.link != retry.link  # a new connection


def test_in_flight_batches_expire_and_a_late_answer_is_ignored() -> None:
    """The retry is answered (written) after the delivery deadline: the record expired in
    flight, possibly persisted, and the late success changes nothing."""
    seen: dict[str, Any] = {}

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_request(0, Reply({("t0", 0): Answer(error=6)})))
        fut = await p.send("t0", b"a", partition=0)
        late = (created_ms() + 1200) / 1000
        w.cluster.produce_rules.append(on_request(1, Reply(at_s=late)))
        await settled([fut])
        seen["expired_at"] = now()
        await until(lambda: now() > late, "the late answer")
        seen["fut"], seen["metrics"] = fut, p.metrics()

    w = run(body, **{**PLAIN, **SHORT, **BACKOFF_500})
    exc = failure(seen["fut"])
    assert isinstance(exc, KafkaTimeoutError) and "t0-0" in str(exc) and "in flight" in str(exc)
    assert exc.persisted_status is PersistedStatus.POSSIBLY_PERSISTED
    assert seen["expired_at"] < requests_for(w, 0)[1].answered_at
    assert log_of(w, 0) == [b"a"]  # it was written, late
    assert buffer_whole(seen["metrics"])


def test_acks_zero_completes_when_written() -> None:
    done_at: list[float] = []

    async def body(p: Producer, w: World) -> None:
        fut = await p.send("t0", b"a", partition=0, callback=lambda md, e: done_at.append(now()))
        await settled([fut])
        assert fut.result().offset == -1
        await until(lambda: w.cluster.produce_seen, "the broker reads the request")

    w = run(body, acks=0, **PLAIN)
    [req] = w.cluster.produce_seen
    assert req.acks == 0 and req.answered_at is None and log_of(w, 0) == [b"a"]
    assert done_at[0] < req.at  # completed when written, before the broker even read it


def test_max_in_flight_per_connection_is_respected() -> None:
    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_request(0, Reply(delay_s=0.05)))
        await p.send("t0", b"a", partition=0)
        await until(lambda: w.cluster.produce_seen, "the first request")
        await settled([await p.send("t0", b"b", partition=1)])

    w = run(body, sim=ONE_BROKER, max_in_flight_requests_per_connection=1, **PLAIN)
    first, second = w.cluster.produce_seen
    assert second.batch("t0", 1) is not None
    assert answered_before(second, first)  # the second partition waited for the answer


def test_sleeps_until_the_linger_deadline() -> None:
    sent_at: list[float] = []

    async def body(p: Producer, w: World) -> None:
        fut = await p.send("t0", b"a", partition=0)
        sent_at.append(now())
        await settled([fut])

    w = run(body, **{**PLAIN, "linger_ms": 25})
    [req] = w.cluster.produce_seen
    assert 0.024 <= req.at - sent_at[0] < 0.03  # the linger, plus one link latency


# -- idempotence ---------------------------------------------------------------------------------


def test_sequences_are_assigned_at_drain_and_kept_across_retries() -> None:
    # REQUEST_TIMED_OUT after the write: retried with the same sequence, deduplicated.
    rule = on_partition("t0", 0, Answer(error=7, append=True))
    r = sends([rule], [b"a0", b"a1", b"a2"], [b"b"], **IDEMPOTENT)
    pid = pid_of(r.world)
    assert headers(r.world) == [(pid, 0, 0, 3), (pid, 0, 0, 3), (pid, 0, 3, 1)]
    assert r.offsets() == [0, 1, 2, 3]
    assert log_of(r.world, 0) == [b"a0", b"a1", b"a2", b"b"]  # written once


def test_one_batch_in_flight_per_partition_until_a_success() -> None:
    r = sends(
        [slow_answers()],
        [A80, B80],
        [b"%d" % i + C80 for i in range(3)],
        batch_size=100,
        **IDEMPOTENT,
    )
    first, second, *pipelined = requests_for(r.world, 0)
    assert answered_before(second, first)  # the first may still fail: nothing overtakes it
    assert [r.batches[0].base_sequence for r in pipelined] == [2, 3, 4]
    assert not answered_before(pipelined[-1], pipelined[0])  # after a success: several


def test_duplicate_sequence_is_success() -> None:
    r = sends([on_partition("t0", 0, Answer(error=46, append=True))], [b"a"], **IDEMPOTENT)
    assert r.futs[0].exception() is None and r.offsets() == [-1]
    assert log_of(r.world, 0) == [b"a"]


def test_out_of_order_not_at_head_is_retried_with_its_sequence() -> None:
    """Two batches in flight; the first is refused (NOT_LEADER, not written), so the broker
    refuses the second as out of order: it is not the head of line, it is retried with its
    sequence, after the first, alone."""
    second = on_request(1, Reply({("t0", 0): Answer(error=6)}))
    r = sends([second, slow_answers()], [A80], [B80, C80], batch_size=100, **IDEMPOTENT)
    reqs = requests_for(r.world, 0)
    assert [r.batches[0].base_sequence for r in reqs] == [0, 1, 2, 1, 2]
    assert {r.batches[0].producer_epoch for r in reqs} == {0}
    assert answered_before(reqs[4], reqs[3])  # the retry of sequence 1 went alone
    assert r.offsets() == [0, 1, 2] and log_of(r.world, 0) == [A80, B80, C80]


def test_out_of_order_at_head_fails_the_batch_and_bumps_the_epoch() -> None:
    r = sends([on_partition("t0", 0, Answer(error=45))], [b"a"], [b"b"], **IDEMPOTENT)
    exc = failure(r.futs[0])
    assert isinstance(exc, OutOfOrderSequenceNumberError)
    assert exc.persisted_status is PersistedStatus.NOT_PERSISTED
    pid = pid_of(r.world)
    assert headers(r.world) == [(pid, 0, 0, 1), (pid, 1, 0, 1)]  # new epoch, sequences from 0
    assert r.futs[1].result().offset == 0


def test_unknown_producer_id_bumps_the_epoch_and_retries() -> None:
    r = sends([on_partition("t0", 0, Answer(error=59))], [b"a"], **IDEMPOTENT)
    pid = pid_of(r.world)
    assert headers(r.world) == [(pid, 0, 0, 1), (pid, 1, 0, 1)]
    assert r.offsets() == [0]


def test_fenced_producer_is_fatal() -> None:
    futs: list[RecordFuture] = []
    refused: list[BaseException] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(
            on_request(0, Reply({("t0", 0): Answer(error=90)}, delay_s=0.05))
        )
        futs.append(await p.send("t0", b"a", partition=0))
        await until(lambda: w.cluster.produce_seen, "the first request")
        futs.append(await p.send("t0", b"b", partition=1))  # queued behind it
        await settled(futs)
        try:
            await p.send("t0", b"c", partition=2)
        except ProducerClosedError as exc:
            refused.append(exc)

    w = run(body, sim=ONE_BROKER, max_in_flight_requests_per_connection=1, **IDEMPOTENT)
    assert isinstance(futs[0].exception(), ProducerFencedError)
    assert isinstance(futs[1].exception(), ProducerFencedError)  # queued records fail too
    assert isinstance(refused[0].__cause__, ProducerFencedError)  # and the producer stops
    assert len(w.cluster.produce_seen) == 1


def test_a_timed_out_request_is_possibly_persisted_a_never_sent_one_not() -> None:
    futs: list[RecordFuture] = []

    def setup(w: World) -> None:
        w.cluster.set_leader("t0", 1, -1)  # no leader: never sent
        w.cluster.produce_rules.append(on_request(0, Reply(fate="drop_response")))

    async def body(p: Producer, w: World) -> None:
        futs.extend([await p.send("t0", b"a", partition=0), await p.send("t0", b"b", partition=1)])
        await settled(futs)

    w = run(body, setup=setup, retries=0, **{**PLAIN, **SHORT})
    sent, never = (failure(f) for f in futs)
    assert isinstance(sent, KafkaTimeoutError) and isinstance(never, KafkaTimeoutError)
    assert sent.persisted_status is PersistedStatus.POSSIBLY_PERSISTED
    assert never.persisted_status is PersistedStatus.NOT_PERSISTED
    assert log_of(w, 0) == [b"a"] and requests_for(w, 1) == []


def refuse_producer_ids(w: World) -> None:
    w.cluster.init_pid_rules.append(lambda index: 35)  # UNSUPPORTED_VERSION


def test_broker_without_producer_ids_disables_default_idempotence() -> None:
    r = sends(
        [], [b"a0", b"a1"], setup=refuse_producer_ids, **{**PLAIN, "enable_idempotence": None}
    )
    assert headers(r.world) == [(-1, -1, -1, 2)]
    assert r.offsets() == [0, 1]


def test_explicit_idempotence_without_producer_ids_is_fatal() -> None:
    w = run(setup=refuse_producer_ids, start_fails=True, **IDEMPOTENT)
    assert isinstance(w.start_error, IdempotenceUnavailableError)
    assert "enable_idempotence=True" in str(w.start_error)


def test_big_compressed_batches_are_sealed_off_the_loop_and_requests_keep_order() -> None:
    futs: list[RecordFuture] = []

    async def body(p: Producer, w: World) -> None:
        futs.extend(await big_batch_in_the_compressor(p, w))
        futs.append(await p.send("t0", b"small", partition=1))  # queued behind the big one
        await settled(futs)

    w = run(body, sim=ONE_BROKER, setup=slow_worker, **{**PLAIN, **BIG})
    first, second = w.cluster.produce_seen
    [big] = first.batches
    assert (big.partition, big.compression, len(big.values)) == (0, 4, 400)
    assert second.batch("t0", 1) is not None  # written in drain order
    assert futs[-2].result().offset == 399 and futs[-1].result().offset == 0


def test_a_partition_held_back_by_idempotence_does_not_spin_the_loop() -> None:
    """Regression: the sender used to turn again at once (timeout 0) while a ready batch was
    held back waiting for its partition's first response: a busy loop for a whole RTT."""
    turns: list[int] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_request(0, Reply(delay_s=0.5)))
        await p.send("t0", A80, partition=0)
        await until(lambda: w.cluster.produce_seen, "the first request")
        futs = [await p.send("t0", B80, partition=0), await p.send("t0", C80, partition=0)]
        before = w.loop.iterations
        await until(lambda: len(w.cluster.produce_seen) > 1, "the next request", step_s=0.1)
        turns.append(w.loop.iterations - before)
        await settled(futs)

    run(body, batch_size=100, **IDEMPOTENT)
    assert turns[0] < 200  # half a second held back: a handful of loop iterations
