"""Regression tests for the sender's failure paths (the failure-paths issue, items 1-5, 9, 16,
17): each failed on the code before its fix, for the reason its docstring gives."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aioproducer import KafkaConnectionError, KafkaTimeoutError
from aioproducer._core.cluster import BrokerInfo, TopicPartition
from aioproducer.errors import KafkaError, PersistedStatus, ProtocolError

from .fakes import make_cluster
from .test_sender import TP, Harness, batch_header, idempotent, settle

pytestmark = pytest.mark.asyncio
TP1 = TopicPartition("t", 1)


# -- item 1: every failure of a sequenced batch leaves the partition able to progress --------------


async def test_a_retried_batch_that_expires_in_the_queue_bumps_the_epoch() -> None:
    """The request was lost, the broker stayed away past the delivery timeout: the retried
    batch (sequence 0, never written) expired in the queue. Before the fix no epoch bump
    followed, the next batch got sequence 1 and the broker (expecting 0) answered
    OUT_OF_ORDER_SEQUENCE_NUMBER forever: the partition was wedged."""
    h = await idempotent(request_timeout_ms=1000, delivery_timeout_ms=6000)
    lost = h.send(b"a")
    h.turn()
    fut = h.conn.sent[0][2]
    assert fut is not None
    fut.set_exception(KafkaConnectionError("connection lost"))
    await settle()
    assert not lost.done()  # re-enqueued with its sequence
    h.clock = 7000
    h.turn()
    assert isinstance(lost.exception(), KafkaTimeoutError)
    later = h.send(b"b")
    h.turn()
    assert batch_header(h, 1) == (1000, 1, 0, 1)  # a new epoch, sequences from 0
    h.conn.respond(1, (0, 0, 0))
    await settle()
    assert later.result().offset == 0


async def test_a_sequenced_batch_failing_with_a_non_retriable_error_bumps_the_epoch() -> None:
    h = await idempotent()
    bad = h.send(b"a")
    h.turn()
    h.conn.respond(0, (0, 87, -1))  # INVALID_RECORD: not retriable
    await settle()
    assert bad.exception() is not None
    h.send(b"b")
    h.turn()
    assert batch_header(h, 1) == (1000, 1, 0, 1)


# -- items 1 and 9: a response that lacks a partition ----------------------------------------------


async def test_a_partition_missing_from_the_response_is_retried_with_its_sequence() -> None:
    """The broker appended the batch, then answered without its partition. Before the fix the
    record failed at once as NOT_PERSISTED (it is in the log) and no epoch bump followed."""
    h = await idempotent()
    rec = h.send(b"a")
    other = h.send(b"b", TP1)
    h.turn()
    h.conn.respond(0, (1, 0, 7))  # only partition 1 answered
    await settle()
    assert other.result().offset == 7
    assert not rec.done() and rec.batch.maybe_written
    h.clock += 1000
    h.turn()
    assert batch_header(h, 1) == (1000, 0, 0, 1)  # the same sequence: the broker dedupes
    h.conn.respond(1, (0, 0, 3))
    await settle()
    assert rec.result().offset == 3


async def test_a_missing_partition_that_is_not_retried_is_possibly_persisted() -> None:
    h = await idempotent(request_timeout_ms=1000, delivery_timeout_ms=6000)
    rec = h.send(b"a")
    h.send(b"b", TP1)
    h.turn()
    h.conn.respond(0, (1, 0, 7))
    await settle()
    h.clock = 7000  # expires before its retry
    h.turn()
    exc = rec.exception()
    assert isinstance(exc, KafkaTimeoutError)
    assert exc.persisted_status is PersistedStatus.POSSIBLY_PERSISTED
    h.send(b"c")
    h.turn()
    assert batch_header(h, 1) == (1000, 1, 0, 1)  # the gap is closed by an epoch bump


async def test_a_missing_partition_without_retries_fails_as_a_protocol_error() -> None:
    h = Harness(retries=0)
    rec = h.send(b"a")
    h.send(b"b", TP1)
    h.turn()
    h.conn.respond(0, (1, 0, 7))
    await settle()
    exc = rec.exception()
    assert isinstance(exc, ProtocolError) and "no result for t-0" in str(exc)
    assert exc.persisted_status is PersistedStatus.POSSIBLY_PERSISTED


async def test_a_partition_answered_twice_with_different_results_is_possibly_persisted() -> None:
    """An answer carrying NOT_LEADER and success for one partition: the outcome is unknown.
    Before the fix the first entry decided alone (NOT_PERSISTED)."""
    h = Harness(retries=0)
    rec = h.send(b"a")
    h.turn()
    h.conn.respond(0, (0, 6, -1), (0, 0, 5))
    await settle()
    exc = rec.exception()
    assert isinstance(exc, KafkaError), exc
    assert exc.persisted_status is PersistedStatus.POSSIBLY_PERSISTED


# -- item 3: a late acknowledgement after an in-flight expiry --------------------------------------


async def test_a_completed_batch_keeps_its_record_count() -> None:
    h = Harness()
    recs = [h.send(b"x") for _ in range(3)]
    batch = recs[0].batch
    h.turn()
    h.conn.respond(0, (0, 0, 0))
    await settle()
    assert batch.final and batch.record_count == 3


async def test_a_late_ack_after_in_flight_expiry_keeps_the_sequence_state() -> None:
    """Before the fix ``record_count`` read 0 once the batch completed, so the late ack set
    ``last_acked`` to 2**31 - 1."""
    h = await idempotent(request_timeout_ms=1000, delivery_timeout_ms=6000)
    h.send(b"a")
    h.send(b"b")
    h.turn()
    h.clock = 7000
    h.turn()  # expired in flight
    h.conn.respond(0, (0, 0, 0))  # the late answer: both records were written
    await settle()
    assert h.sender.idem is not None
    assert h.sender.idem.partitions[TP].last_acked == 1


# -- item 4: a failed batch is never written -------------------------------------------------------


async def _big_batch_in_the_compressor(h: Harness) -> list[Any]:
    recs = [h.send(b"%06d" % i + b"x" * 994) for i in range(400)]
    h.turn()
    assert h.conn.sent == [] and h.sender.offload.pending
    return recs


async def test_a_batch_that_expired_while_compressing_is_not_written() -> None:
    """Before the fix the pending write was flushed anyway: the batch (its buffers already
    released) went to the broker after its records had failed."""
    h = Harness(
        compression_type="zstd",
        batch_size=1 << 20,
        max_request_size=4 << 20,
        request_timeout_ms=1000,
        delivery_timeout_ms=6000,
    )
    recs = await _big_batch_in_the_compressor(h)
    h.clock = 7000
    h.turn()
    assert isinstance(recs[0].exception(), KafkaTimeoutError)
    for _ in range(100):
        await asyncio.sleep(0.01)
        if not h.sender.offload.pending:
            break
    assert not h.sender.offload.pending
    assert h.conn.sent == []


async def test_a_cancelled_compression_retries_the_batch() -> None:
    """Before the fix the done-callback called ``exception()`` on the cancelled future, which
    raised inside the callback: the batch was left neither written nor failed."""
    h = Harness(compression_type="zstd", batch_size=1 << 20, max_request_size=4 << 20)
    recs = await _big_batch_in_the_compressor(h)
    [(_, fut)] = h.sender.offload.pending[1]
    fut.cancel()
    await settle()
    assert not h.sender.offload.pending and not h.sender.in_flight
    assert not recs[0].done() and recs[0].batch.attempts == 1


# -- item 5: the sender ends once nothing is left --------------------------------------------------


async def test_a_closing_sender_ends_when_its_last_records_expire() -> None:
    """Before the fix the last turn expired the in-flight batches, then slept for the metadata
    refresh interval (or forever) instead of ending: ``close()`` hung."""
    h = Harness(request_timeout_ms=1000, delivery_timeout_ms=6000)
    rec = h.send(b"a")
    h.turn()
    h.sender.running = False
    h.clock = 7000
    await asyncio.wait_for(h.sender.run(), 2)
    assert isinstance(rec.exception(), KafkaTimeoutError)


# -- items 6 and 7: connection attempts always go through the reconnect backoff --------------------


async def test_the_bootstrap_connection_is_retried_after_its_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before the fix a failed bootstrap connection left the sender asleep with no deadline:
    no second attempt was ever made."""
    from aioproducer._io.connection import BrokerConnection  # the class the sender opens

    h = Harness(reconnect_backoff_ms=50, reconnect_backoff_max_ms=50)
    h.sender.connections.clear()
    h.metadata = type(h.metadata)(300000, 300000, 100)
    h.sender.metadata = h.metadata
    attempts: list[int] = []

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(h.clock)
        raise KafkaConnectionError("connection refused")

    monkeypatch.setattr(BrokerConnection, "open", refuse)
    h.metadata.request_update()
    h.turn()
    await settle()
    assert len(attempts) == 1
    timeout = h.turn()
    assert 0 < timeout <= 60  # the backoff, not forever
    h.clock += timeout
    h.turn()
    await settle()
    assert len(attempts) == 2


async def test_an_unexpected_error_opening_a_connection_backs_off() -> None:
    """A broker advertised at port 70000: ``create_connection`` raises ``OverflowError``.
    Before the fix it escaped the connect task (never retrieved), no backoff was recorded and
    the sender retried at once, forever, at 100 % CPU."""
    h = Harness(reconnect_backoff_ms=50, reconnect_backoff_max_ms=50)
    h.sender.connections.clear()
    bad = make_cluster({"t": [1]}, brokers=1)
    bad.brokers[1] = BrokerInfo(1, "127.0.0.1", 70000)
    h.metadata.update(bad, 0)
    h.send(b"a")
    h.turn()
    for _ in range(20):
        await asyncio.sleep(0)
    assert 1 in h.sender.pool.reconnect  # backing off
    assert h.turn() > 0
    assert not h.sender.pool.connecting


# -- item 16: a KIP-951 leader hint skips the retry backoff ----------------------------------------


async def test_a_retry_to_a_new_leader_named_in_the_response_skips_the_backoff() -> None:
    from aioproducer._protocol.messages import ProduceResponse

    h = Harness(retry_backoff_ms=500, retry_backoff_max_ms=500)
    h.metadata.update(make_cluster({"t": [1, 1]}, brokers=2), 0)
    conn2 = type(h.conn)(2)
    h.sender.connections[2] = conn2  # type: ignore[assignment]
    rec = h.send(b"a")
    h.turn()
    fut = h.conn.sent[0][2]
    P = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
    leader = P.LeaderIdAndEpoch(leader_id=2, leader_epoch=1)
    resp = ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name="t",
                partition_responses=[
                    P(index=0, error_code=6, base_offset=-1, current_leader=leader)
                ],
            )
        ],
    )
    assert fut is not None
    fut.set_result(resp)
    await settle()
    assert not rec.done()
    h.turn()  # no time has passed: sent at once to the new leader
    assert len(conn2.sent) == 1


# -- item 17: throttling (KIP-219) -----------------------------------------------------------------


async def test_a_throttled_broker_gets_nothing_until_the_throttle_has_passed() -> None:
    from aioproducer._protocol.messages import ProduceResponse

    h = Harness()
    first = h.send(b"a")
    h.turn()
    fut = h.conn.sent[0][2]
    P = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
    resp = ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name="t", partition_responses=[P(index=0, error_code=0, base_offset=0)]
            )
        ],
        throttle_time_ms=300,
    )
    assert fut is not None
    fut.set_result(resp)
    await settle()
    assert first.result().offset == 0
    h.send(b"b")
    assert 0 < h.turn() <= 300
    assert len(h.conn.sent) == 1  # held back
    assert h.sender.throttle_time_ms(1) == 300
    assert h.sender.max_throttle_time_ms() == 300
    h.clock = 300
    h.turn()
    assert len(h.conn.sent) == 2


async def test_the_fast_response_path_reads_the_throttle_time() -> None:
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


async def test_a_new_batch_waits_for_the_retry_of_an_earlier_one_to_succeed() -> None:
    """Cause of the reorder on librdkafka's mock: after a failed attempt, the retry and a
    newer batch of the partition were in flight together; the retry failed again, the newer
    batch was written (the mock does not check idempotent sequences) and the retry landed
    behind it. Now the partition is back to one batch in flight until the next success."""
    h = await idempotent(batch_size=100)
    a = h.send(b"a" * 80)
    h.turn()
    h.conn.respond(0, (0, 0, 0))  # a success: pipelining allowed
    await settle()
    assert a.result().offset == 0
    b = h.send(b"b" * 80)
    h.turn()
    h.conn.respond(1, (0, 6, -1))  # NOT_LEADER_OR_FOLLOWER: b is retried
    await settle()
    c = h.send(b"c" * 80)
    h.clock += 1000
    h.turn()
    h.turn()
    assert len(h.conn.sent) == 3  # b's retry only; c waits for its outcome
    assert batch_header(h, 2)[2] == 1
    h.conn.respond(2, (0, 0, 1))
    await settle()
    h.turn()
    assert len(h.conn.sent) == 4 and batch_header(h, 3)[2] == 2
    h.conn.respond(3, (0, 0, 2))
    await settle()
    assert (b.result().offset, c.result().offset) == (1, 2)


# -- found by the simulator: an epoch bump re-sequenced another partition's retry --------------


async def test_an_epoch_bump_keeps_other_partitions_retries_on_their_sequences() -> None:
    """Seed 411: t-0's batch got NOT_ENOUGH_REPLICAS_AFTER_APPEND (written, retried); a
    batch of t-1 failed for good and bumped the epoch. Before the fix the bump re-sequenced
    every queued batch, so t-0's retry went out as a new batch of the new epoch and was
    written twice. Java rewrites only the partitions that needed the bump; a retry elsewhere
    keeps its producer epoch and sequence, and the partition moves to the new epoch after."""
    h = await idempotent()
    a = h.send(b"a", TP)
    b = h.send(b"b", TP1)
    h.turn()
    h.conn.respond(0, (0, 20, -1), (1, 87, -1))  # t-0: written, retried; t-1: failed
    await settle()
    assert not a.done() and b.exception() is not None
    h.clock += 1000
    h.turn()
    h.turn()
    assert batch_header(h, 1) == (1000, 0, 0, 1)  # t-0's retry: epoch 0, sequence 0
    h.conn.respond(1, (0, 0, 4))
    await settle()
    assert a.result().offset == 4
    c = h.send(b"c", TP)
    d = h.send(b"d", TP1)
    h.turn()
    req = h.conn.sent[2][0]
    from aioproducer._records.reader import read_batches

    headers = {
        p.index: [(x.producer_epoch, x.base_sequence) for x in read_batches(p.records)]
        for p in req.topic_data[0].partition_data
    }
    assert headers == {0: [(1, 0)], 1: [(1, 0)]}  # both partitions now in epoch 1, from 0
    h.conn.respond(2, (0, 0, 5), (1, 0, 0))
    await settle()
    assert c.result().offset == 5 and d.result().offset == 0


async def test_a_request_being_compressed_counts_against_max_in_flight() -> None:
    """Seed 948 (``max_in_flight_requests_per_connection=1``): while a big batch was being
    compressed off the loop its request was not counted, so a second request went out beside
    it and a retry was overtaken (order broken with one request in flight)."""
    h = Harness(
        compression_type="zstd",
        batch_size=1 << 20,
        max_request_size=4 << 20,
        max_in_flight_requests_per_connection=1,
    )
    await _big_batch_in_the_compressor(h)
    small = h.send(b"small", TP1)
    h.turn()
    for _ in range(200):
        await asyncio.sleep(0.01)
        if not h.sender.offload.pending:
            break
    h.turn()
    assert len(h.conn.sent) == 1  # the big one; the small one waits for its answer
    h.conn.respond(0, (0, 0, 0))
    await settle()
    h.turn()
    assert len(h.conn.sent) == 2
    h.conn.respond(1, (1, 0, 0))
    await settle()
    assert small.result().offset == 0


async def test_records_in_flight_when_close_times_out_are_possibly_persisted() -> None:
    """Seeds 1085, 1319, 1399, 1837: ``close(timeout)`` failed records whose request was
    written and not answered as NOT_PERSISTED, although the broker had written them."""
    h = Harness()
    sent = h.send(b"a")
    h.turn()
    queued = h.send(b"b", TP1)
    h.sender.running, h.sender.force_close = False, True
    h.sender._shutdown()
    exc = sent.exception()
    assert isinstance(exc, KafkaError), exc
    assert exc.persisted_status is PersistedStatus.POSSIBLY_PERSISTED
    exc = queued.exception()
    assert isinstance(exc, KafkaError), exc
    assert exc.persisted_status is PersistedStatus.NOT_PERSISTED


async def test_one_in_flight_keeps_order_across_a_leader_change() -> None:
    """Seed 1880 (no idempotence, ``max_in_flight_requests_per_connection=1``): a batch was
    in flight to the old leader when the partition moved; the next batch went to the new
    leader on another connection, and the first one, retried after its request timed out,
    landed behind it. Java mutes a partition with a batch in flight in this mode."""
    h = Harness(max_in_flight_requests_per_connection=1)
    conn2 = type(h.conn)(2)
    h.sender.connections[2] = conn2  # type: ignore[assignment]
    h.metadata.update(make_cluster({"t": [1, 1]}, brokers=2), 0)
    a = h.send(b"a")
    h.turn()
    assert len(h.conn.sent) == 1
    h.metadata.update(make_cluster({"t": [2, 1]}, brokers=2), 0)  # t-0 moves to broker 2
    b = h.send(b"b")
    h.turn()
    assert conn2.sent == []  # t-0 is muted while a is in flight
    fut = h.conn.sent[0][2]
    assert fut is not None
    fut.set_exception(KafkaTimeoutError("request timed out"))
    await settle()
    h.clock += 1000
    h.turn()
    assert len(conn2.sent) == 1
    from aioproducer._records.reader import read_batches

    [batch] = read_batches(conn2.sent[0][0].topic_data[0].partition_data[0].records)
    assert [r.value for r in batch.records] == [b"a"]
    conn2.respond(0, (0, 0, 0))
    await settle()
    h.turn()
    conn2.respond(1, (0, 0, 1))
    await settle()
    assert (a.result().offset, b.result().offset) == (0, 1)


async def test_a_lingering_batch_behind_a_drained_one_keeps_its_deadline() -> None:
    """Seed 1555 (acks=0): a full batch and a lingering one in the same partition; the
    drain took the first, and the turn went back to sleep without the second's linger
    deadline (the turn's ready() looked at the partition's head only)."""
    h = Harness(acks=0, linger_ms=5, batch_size=200)
    h.send(b"x" * 130)  # a full batch
    h.send(b"y" * 20)  # did not fit: a new batch, which lingers
    first, second = h.acc.batches[TP]
    assert first.is_full() and not second.is_full()
    timeout = h.turn()
    assert len(h.conn.sent) == 1
    assert 0 < timeout <= 5


async def test_an_idempotent_partition_moves_to_a_new_leader_only_when_nothing_is_in_flight() -> (
    None
):
    """Seed 3832: batches of t-0 were in flight to the old leader (its link black-holed) when
    the partition moved; the next batch went to the new leader at once, which (having lost
    the producer's state) wrote it ahead of them. A partition now follows a new leader only
    once nothing of it is in flight to the old one (franz-go's ``inflightOnSink``)."""
    h = await idempotent()
    conn2 = type(h.conn)(2)
    h.sender.connections[2] = conn2  # type: ignore[assignment]
    h.metadata.update(make_cluster({"t": [1, 1]}, brokers=2), 0)
    a = h.send(b"a")
    h.turn()
    h.conn.respond(0, (0, 0, 0))  # a success: pipelining allowed
    await settle()
    assert a.result().offset == 0
    b = h.send(b"b")
    h.turn()
    assert len(h.conn.sent) == 2  # b in flight to broker 1
    h.metadata.update(make_cluster({"t": [2, 1]}, brokers=2), 0)  # t-0 moves to broker 2
    c = h.send(b"c")
    h.turn()
    assert conn2.sent == []  # c waits: b is still in flight to the old leader
    fut = h.conn.sent[1][2]
    assert fut is not None
    fut.set_exception(KafkaConnectionError("connection lost"))
    await settle()
    h.clock += 1000
    h.turn()
    assert len(conn2.sent) == 1 and batch_header_of(conn2, 0)[2] == 1  # b's retry goes first
    conn2.respond(0, (0, 0, 1))
    await settle()
    h.turn()
    assert batch_header_of(conn2, 1)[2] == 2
    conn2.respond(1, (0, 0, 2))
    await settle()
    assert (b.result().offset, c.result().offset) == (1, 2)


def batch_header_of(conn: Any, i: int) -> tuple[int, int, int, int]:
    from aioproducer._records.reader import read_batches

    [b] = read_batches(conn.sent[i][0].topic_data[0].partition_data[0].records)
    return b.producer_id, b.producer_epoch, b.base_sequence, len(b.records)


async def test_a_broker_at_a_new_address_is_tried_without_the_old_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seed 6194: a broker was advertised at a bad port, then fixed; the next attempt still
    went to the stale address, failed, and the refreshed address waited out a full reconnect
    backoff (longer than the delivery timeout). A backoff belongs to the address that failed."""
    from aioproducer._io.connection import BrokerConnection  # the class the sender opens

    h = Harness(reconnect_backoff_ms=1000, reconnect_backoff_max_ms=1000)
    h.sender.connections.clear()
    tried: list[int] = []

    async def refuse(node: int, host: str, port: int, **kwargs: Any) -> Any:
        tried.append(port)
        raise KafkaConnectionError("connection refused")

    monkeypatch.setattr(BrokerConnection, "open", refuse)
    h.send(b"a")
    h.turn()
    await settle()
    assert tried == [9001]
    moved = make_cluster({"t": [1, 1]})
    moved.brokers[1] = BrokerInfo(1, "127.0.0.1", 9999)
    h.metadata.update(moved, 0)
    h.turn()
    await settle()
    assert tried == [9001, 9999]  # at once: the backoff was for 9001


async def test_a_batch_that_may_be_written_is_not_split_on_message_too_large() -> None:
    """Seed 16927: a batch written with NOT_ENOUGH_REPLICAS_AFTER_APPEND was refused as too
    large on its retry and split; the broker could not recognise the pieces (other sequence
    ranges), so one was refused and reported NOT_PERSISTED although it was in the log, and
    the other written twice. Such a batch now fails, possibly persisted."""
    h = await idempotent()
    recs = [h.send(b"x"), h.send(b"y")]
    h.turn()
    h.conn.respond(0, (0, 20, -1))  # written, outcome unknown: retried
    await settle()
    h.clock += 1000
    h.turn()
    h.conn.respond(1, (0, 10, -1))  # MESSAGE_TOO_LARGE on the retry
    await settle()
    for r in recs:
        exc = r.exception()
        assert isinstance(exc, KafkaError), exc
        assert exc.persisted_status is PersistedStatus.POSSIBLY_PERSISTED


async def test_an_epoch_bump_keeps_a_possibly_written_batch_of_its_own_partition() -> None:
    """Seed 8717: in one partition, batch A expired in flight and batch B's answer was lost
    (B may be in the log). A's failure bumped the epoch, which re-sequenced B: written twice.
    B now keeps its epoch and sequence (the broker acknowledges it again as a duplicate); had
    it not been written, the broker refuses it and it is sequenced in the new epoch then."""
    h = await idempotent(request_timeout_ms=1000, delivery_timeout_ms=6000)
    a = h.send(b"a")
    h.turn()
    h.conn.respond(0, (0, 0, 0))  # a success: pipelining allowed
    await settle()
    h.clock = 100
    old = h.send(b"x")  # created at 100: expires at 6100
    h.turn()
    h.clock = 3000
    b = h.send(b"y")  # created at 3000
    h.turn()
    assert len(h.conn.sent) == 3
    fut = h.conn.sent[2][2]
    assert fut is not None
    fut.set_exception(KafkaTimeoutError("request timed out"))  # B: possibly written
    await settle()
    assert b.batch.maybe_written and not b.done()
    h.clock = 6200
    h.turn()  # "old" expires in flight: a gap, so a bump once nothing is in flight
    assert old.exception() is not None and a.result().offset == 0
    h.conn.sent[1][2].set_exception(KafkaConnectionError("closed"))  # type: ignore[union-attr]
    await settle()
    h.turn()
    h.turn()
    assert batch_header(h, 3)[1:3] == (0, 2)  # B: still epoch 0, sequence 2
    h.conn.respond(3, (0, 45, -1))  # not written after all: refused
    await settle()
    h.clock += 2000
    h.turn()
    h.turn()
    assert batch_header(h, 4)[1:3] == (1, 0)  # now sequenced in epoch 1
    h.conn.respond(4, (0, 0, 1))
    await settle()
    assert b.result().offset == 1
