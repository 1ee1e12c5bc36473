"""The sender's decisions with a scripted connection and an injected clock (Java's
``SenderTest`` with ``MockClient``): each rule of the response handling has its test."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from aioproducer import KafkaConnectionError, KafkaTimeoutError, ProducerConfig
from aioproducer._core.accumulator import RecordAccumulator
from aioproducer._core.cluster import Metadata, TopicPartition
from aioproducer._core.memory import MemoryPool
from aioproducer._core.producer_batch import RecordFuture
from aioproducer._io.sender import Sender
from aioproducer._protocol import framing
from aioproducer._protocol._primitives import Reader
from aioproducer._protocol.messages import ProduceRequest, ProduceResponse
from aioproducer._records.codecs import get_codec
from aioproducer.errors import (
    IdempotenceUnavailableError,
    InvalidRecordError,
    KafkaError,
    MessageTooLargeError,
    NotLeaderOrFollowerError,
    PersistedStatus,
    ProducerFencedError,
)

from .fakes import FakeCompletion, make_cluster

pytestmark = pytest.mark.asyncio
TP = TopicPartition("t", 0)


class FakeConn:
    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.closed = False
        self.sent: list[tuple[Any, int, asyncio.Future[Any] | None]] = []
        self.decoders: list[Any] = []
        self.versions = {0: (3, 11), 3: (1, 12), 22: (0, 5)}
        self.pid_responses = [(0, 1000, 0)]  # (error_code, producer_id, epoch) per request

    async def request(self, request: Any, version: int, response: Any = None) -> Any:
        from aioproducer._protocol.messages import InitProducerIdResponse

        code, pid, epoch = self.pid_responses.pop(0)
        return InitProducerIdResponse(error_code=code, producer_id=pid, producer_epoch=epoch)

    def close(self, error: BaseException | None = None) -> None:
        self.closed = True

    @property
    def in_flight(self) -> int:
        return sum(1 for _, _, f in self.sent if f is not None and not f.done())

    def version_for(self, api_key: int, lowest: int | None = None) -> int:
        return 9

    def send(self, request: Any, version: int, expect_response: bool = True) -> Any:
        fut = asyncio.get_running_loop().create_future() if expect_response else None
        self.sent.append((request, version, fut))
        self.decoders.append(None)
        return fut

    def send_encoded(
        self,
        api_key: int,
        version: int,
        encode: Any,
        expect_response: bool = True,
        decode: Any = None,
    ) -> Any:
        """The real frame, read back with the generic codec: the test sees the request the
        broker would."""
        frame = encode(len(self.sent) + 1, "test")
        r = Reader(frame[4:])
        assert (r.read_int16(), r.read_int16()) == (api_key, version)
        r.read_int32()
        r.read_string(False)
        if version >= 9:
            assert r.read_uvarint() == 0
        request = ProduceRequest.decode_from(r, version)
        fut = asyncio.get_running_loop().create_future() if expect_response else None
        self.sent.append((request, version, fut))
        self.decoders.append(decode)
        return fut

    def respond(self, i: int, *partitions: tuple[int, int, int]) -> None:
        """Answer request ``i`` with (partition, error_code, base_offset) per partition, as
        the connection would: the request's own decoder first (the all-success fast path),
        then the generic codec."""
        req, version, fut = self.sent[i]
        topic = req.topic_data[0].name
        assert fut is not None
        P = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
        response = ProduceResponse(
            responses=[
                ProduceResponse.TopicProduceResponse(
                    name=topic,
                    partition_responses=[
                        P(index=p, error_code=e, base_offset=o) for p, e, o in partitions
                    ],
                )
            ]
        )
        frame = bytearray(b"\0\0\0\1")
        if version >= 9:
            frame.append(0)
        response.encode_into(frame, version)
        decode = self.decoders[i]
        body = None if decode is None else decode(bytes(frame), version)
        if all(e == 0 for _, e, _ in partitions) and decode is not None:
            assert body is not None, "an all-success response takes the fast path"
        if body is None:
            _, body = framing.decode_response(bytes(frame), ProduceResponse, version)
        fut.set_result(body)


class Harness:
    def __init__(self, **settings: Any) -> None:
        cfg = {
            "bootstrap_servers": "127.0.0.1:1",
            "linger_ms": 0,
            "retry_backoff_ms": 100,
            "retry_backoff_max_ms": 100,
            "enable_idempotence": False,
            **settings,
        }
        self.config = ProducerConfig(**cfg)
        self.clock = 0
        self.pool = MemoryPool(self.config.buffer_memory)
        self.acc = RecordAccumulator(
            batch_size=self.config.batch_size,
            codec=get_codec(self.config.compression),
            linger_ms=self.config.linger_ms,
            retry_backoff_ms=self.config.retry_backoff_ms,
            retry_backoff_max_ms=self.config.retry_backoff_max_ms,
            delivery_timeout_ms=self.config.delivery_timeout,
            max_request_size=self.config.max_request_size,
            pool=self.pool,
            new_completion=FakeCompletion,
            rand=random.Random(0).random,
        )
        self.metadata = Metadata(300000, 300000, 100)
        self.metadata.update(make_cluster({"t": [1, 1]}), 0)
        self.sender = Sender(self.config, self.acc, self.metadata, lambda: self.clock, None)
        self.conn = FakeConn(1)
        self.sender.connections[1] = self.conn  # type: ignore[assignment]

    def send(self, value: bytes, tp: TopicPartition = TP) -> RecordFuture:
        h = self.acc.try_append(tp, self.clock, None, value, None, None)
        if h is None:
            size = self.acc.reservation_for(len(value) + 20)
            assert self.pool.try_allocate(size)
            h, back = self.acc.append_new_batch(
                tp, self.clock, None, value, None, None, self.clock, size
            )
            self.pool.release(back) if back else None
        return h

    def turn(self) -> int:
        return self.sender.run_once(self.clock)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_success_completes_records_in_order_and_frees_memory() -> None:
    h = Harness()
    handles = [h.send(b"v%d" % i) for i in range(3)]
    h.turn()
    [(req, version, _)] = h.conn.sent
    assert isinstance(req, ProduceRequest) and req.acks == -1 and version == 9
    h.conn.respond(0, (0, 0, 41))
    await settle()
    assert [x.result().offset for x in handles] == [41, 42, 43]
    assert h.pool.available == h.pool.total and not h.acc.incomplete


async def test_retriable_error_requeues_at_head_with_backoff_and_refreshes_metadata() -> None:
    h = Harness()
    rec = h.send(b"a")
    h.turn()
    h.metadata._update_requested = False
    h.conn.respond(0, (0, 6, -1))  # NOT_LEADER_OR_FOLLOWER
    await settle()
    assert not rec.done() and h.metadata.update_requested
    batch = h.acc.batches[TP][0]
    assert batch is rec.batch and batch.attempts == 1
    assert h.turn() == batch.retry_at_ms - h.clock and len(h.conn.sent) == 1  # backing off
    h.clock = batch.retry_at_ms
    h.turn()
    assert len(h.conn.sent) == 2
    h.conn.respond(1, (0, 0, 7))
    await settle()
    assert rec.result().offset == 7


async def test_non_retriable_error_fails_the_batch_naming_the_partition() -> None:
    h = Harness()
    rec = h.send(b"a")
    h.turn()
    h.conn.respond(0, (0, 87, -1))  # INVALID_RECORD
    await settle()
    exc = rec.exception()
    assert isinstance(exc, InvalidRecordError) and "t-0" in str(exc)
    assert h.pool.available == h.pool.total


async def test_retries_are_bounded_by_the_retries_setting() -> None:
    h = Harness(retries=1)
    rec = h.send(b"a")
    for attempt in range(2):
        h.clock += 200
        h.turn()
        h.conn.respond(attempt, (0, 6, -1))
        await settle()
    assert isinstance(rec.exception(), NotLeaderOrFollowerError)


async def test_no_retry_after_the_delivery_timeout() -> None:
    h = Harness(delivery_timeout_ms=30_005)
    rec = h.send(b"a")
    h.turn()
    h.clock = 30_005
    h.conn.respond(0, (0, 6, -1))
    await settle()
    assert isinstance(rec.exception(), NotLeaderOrFollowerError)


async def test_message_too_large_splits_a_batch_with_several_records() -> None:
    h = Harness(batch_size=200)
    big = h.acc  # make one batch hold many records by lifting its soft limit
    recs = [h.send(b"x" * 40)]
    batch = recs[0].batch
    batch.builder.batch_size = 10_000
    batch.builder.set_ratio(1.0)
    recs += [h.send(b"x" * 40) for _ in range(9)]
    assert all(r.batch is batch for r in recs)
    h.turn()
    h.conn.respond(0, (0, 10, -1))
    await settle()
    assert len(big.batches[TP]) > 1 and not any(r.done() for r in recs)
    offset = 0
    while big.batches.get(TP):
        h.clock += 1
        h.turn()
        n = next(b for b in recs if not b.done()).batch.record_count
        h.conn.respond(len(h.conn.sent) - 1, (0, 0, offset))
        offset += n
        await settle()
    assert [r.result().offset for r in recs] == list(range(10))


async def test_message_too_large_with_one_record_fails() -> None:
    h = Harness()
    rec = h.send(b"a")
    h.turn()
    h.conn.respond(0, (0, 10, -1))
    await settle()
    assert isinstance(rec.exception(), MessageTooLargeError)


async def test_a_dropped_connection_fails_in_flight_requests_as_retriable() -> None:
    h = Harness()
    rec = h.send(b"a")
    h.turn()
    fut = h.conn.sent[0][2]
    assert fut is not None
    fut.set_exception(KafkaConnectionError("connection lost"))
    await settle()
    assert not rec.done() and rec.batch.attempts == 1 and h.metadata.update_requested


async def test_in_flight_batches_expire_and_a_late_answer_is_ignored() -> None:
    h = Harness(delivery_timeout_ms=30_005)
    rec = h.send(b"a")
    h.turn()
    h.clock = 30_005
    h.turn()
    exc = rec.exception()
    assert isinstance(exc, KafkaTimeoutError) and "t-0" in str(exc) and "in flight" in str(exc)
    h.conn.respond(0, (0, 0, 5))  # too late
    await settle()
    assert isinstance(rec.exception(), KafkaTimeoutError)
    assert h.pool.available == h.pool.total


async def test_acks_zero_completes_when_written() -> None:
    h = Harness(acks=0)
    rec = h.send(b"a")
    h.turn()
    assert rec.result().offset == -1 and h.conn.sent[0][2] is None


async def test_max_in_flight_per_connection_is_respected() -> None:
    h = Harness(max_in_flight_requests_per_connection=1)
    h.send(b"a", TopicPartition("t", 0))
    h.turn()
    h.send(b"b", TopicPartition("t", 1))
    h.turn()
    assert len(h.conn.sent) == 1  # the second partition waits for the first response
    h.conn.respond(0, (0, 0, 0))
    await settle()
    h.turn()
    assert len(h.conn.sent) == 2


async def test_sleeps_until_the_linger_deadline() -> None:
    h = Harness(linger_ms=25)
    h.send(b"a")
    h.clock = 10
    assert h.turn() == 15 and h.conn.sent == []
    h.clock = 25
    h.turn()
    assert len(h.conn.sent) == 1


# -- idempotence ---------------------------------------------------------------------------------


def batch_header(h: Harness, i: int) -> tuple[int, int, int, int]:
    """(producer id, epoch, base sequence, record count) of the batch in request ``i``."""
    from aioproducer._records.reader import read_batches

    req = h.conn.sent[i][0]
    [b] = read_batches(req.topic_data[0].partition_data[0].records)
    return b.producer_id, b.producer_epoch, b.base_sequence, len(b.records)


async def idempotent(**settings: Any) -> Harness:
    h = Harness(enable_idempotence=True, **settings)
    h.turn()  # InitProducerId
    await settle()
    assert h.sender.idem is not None and h.sender.idem.producer_id == 1000
    return h


async def test_sequences_are_assigned_at_drain_and_kept_across_retries() -> None:
    h = await idempotent()
    a = [h.send(b"a%d" % i) for i in range(3)]
    h.turn()
    assert batch_header(h, 0) == (1000, 0, 0, 3)
    h.conn.respond(0, (0, 7, -1))  # REQUEST_TIMED_OUT: maybe written; retried, same sequence
    await settle()
    h.clock = a[0].batch.retry_at_ms
    h.turn()
    assert batch_header(h, 1) == (1000, 0, 0, 3)
    h.conn.respond(1, (0, 0, 10))
    await settle()
    b = h.send(b"b")
    h.turn()
    assert batch_header(h, 2) == (1000, 0, 3, 1)
    h.conn.respond(2, (0, 0, 13))
    await settle()
    assert [x.result().offset for x in a] == [10, 11, 12] and b.result().offset == 13


async def test_one_batch_in_flight_per_partition_until_a_success() -> None:
    h = await idempotent(batch_size=100)
    h.send(b"x" * 80)
    h.turn()
    h.send(b"y" * 80)
    h.turn()
    assert len(h.conn.sent) == 1  # the first request may still fail: nothing may overtake it
    h.conn.respond(0, (0, 0, 0))
    await settle()
    for _ in range(3):
        h.send(b"z" * 80)
        h.turn()
    assert len(h.conn.sent) == 4  # after a success, several in flight (same connection)
    assert [batch_header(h, i)[2] for i in range(1, 4)] == [1, 2, 3]


async def test_duplicate_sequence_is_success() -> None:
    h = await idempotent()
    rec = h.send(b"a")
    h.turn()
    h.conn.respond(0, (0, 46, -1))
    await settle()
    assert rec.exception() is None and rec.result().offset == -1


async def test_out_of_order_not_at_head_is_retried_with_its_sequence() -> None:
    h = await idempotent(batch_size=100)
    first = h.send(b"x" * 80)
    h.turn()
    h.conn.respond(0, (0, 0, 0))
    await settle()
    second = h.send(b"y" * 80)
    h.turn()
    third = h.send(b"z" * 80)
    h.turn()
    assert [batch_header(h, i)[2] for i in (1, 2)] == [1, 2]
    h.conn.respond(1, (0, 6, -1))  # NOT_LEADER: not written
    h.conn.respond(2, (0, 45, -1))  # so the next one is out of order: not head of line
    await settle()
    assert not second.done() and not third.done() and first.result().offset == 0
    assert [b.base_sequence for b in h.acc.batches[TP]] == [1, 2]  # back in sequence order
    h.clock += 1000
    h.turn()
    assert batch_header(h, 3)[2] == 1 and len(h.conn.sent) == 4  # the retry goes alone
    h.conn.respond(3, (0, 0, 1))
    await settle()
    h.turn()
    assert batch_header(h, 4)[2] == 2
    h.conn.respond(4, (0, 0, 2))
    await settle()
    assert (second.result().offset, third.result().offset) == (1, 2)


async def test_out_of_order_at_head_fails_the_batch_and_bumps_the_epoch() -> None:
    h = await idempotent()
    bad = h.send(b"a")
    h.turn()
    h.conn.respond(0, (0, 45, -1))
    await settle()
    exc = bad.exception()
    assert isinstance(exc, KafkaError) and exc.persisted_status is PersistedStatus.NOT_PERSISTED
    later = h.send(b"b")
    h.turn()
    assert batch_header(h, 1) == (1000, 1, 0, 1)  # new epoch, sequences from 0
    h.conn.respond(1, (0, 0, 5))
    await settle()
    assert later.result().offset == 5


async def test_unknown_producer_id_bumps_the_epoch_and_retries() -> None:
    h = await idempotent()
    rec = h.send(b"a")
    h.turn()
    h.conn.respond(0, (0, 59, -1))
    await settle()
    assert not rec.done()
    h.clock += 1000
    h.turn()
    assert batch_header(h, 1) == (1000, 1, 0, 1)
    h.conn.respond(1, (0, 0, 3))
    await settle()
    assert rec.result().offset == 3


async def test_fenced_producer_is_fatal() -> None:
    h = await idempotent()
    a = h.send(b"a", TopicPartition("t", 0))
    h.turn()
    b = h.send(b"b", TopicPartition("t", 1))
    h.conn.respond(0, (0, 90, -1))  # PRODUCER_FENCED
    await settle()
    assert isinstance(a.exception(), ProducerFencedError)
    assert isinstance(b.exception(), ProducerFencedError)  # queued records fail too
    assert isinstance(h.sender.fatal_error, ProducerFencedError)


async def test_a_timed_out_request_is_possibly_persisted_a_never_sent_one_not() -> None:
    h = Harness(delivery_timeout_ms=30_005, retries=0)
    sent = h.send(b"a", TopicPartition("t", 0))
    h.turn()
    fut = h.conn.sent[0][2]
    assert fut is not None
    fut.set_exception(KafkaTimeoutError("request timed out"))
    await settle()
    exc = sent.exception()
    assert isinstance(exc, KafkaError), exc
    assert exc.persisted_status is PersistedStatus.POSSIBLY_PERSISTED
    never = h.send(b"b", TopicPartition("u", 0))  # no leader known: never sent
    h.clock = 40_000
    h.turn()
    exc = never.exception()
    assert isinstance(exc, KafkaError), exc
    assert exc.persisted_status is PersistedStatus.NOT_PERSISTED


async def test_broker_without_producer_ids_disables_default_idempotence() -> None:
    h = Harness(enable_idempotence=None)
    h.conn.pid_responses = [(35, -1, -1)]  # UNSUPPORTED_VERSION: not retriable
    h.turn()
    await settle()
    h.turn()
    assert h.sender.idem is None and h.sender.fatal_error is None
    rec = h.send(b"a")
    h.turn()
    assert batch_header(h, 0) == (-1, -1, -1, 1)
    h.conn.respond(0, (0, 0, 0))
    await settle()
    assert rec.result().offset == 0


async def test_explicit_idempotence_without_producer_ids_is_fatal() -> None:
    h = Harness(enable_idempotence=True)
    h.conn.pid_responses = [(35, -1, -1)]
    h.turn()
    await settle()
    assert isinstance(h.sender.fatal_error, IdempotenceUnavailableError)
    assert "enable_idempotence=True" in str(h.sender.fatal_error)


async def test_big_compressed_batches_are_sealed_off_the_loop_and_requests_keep_order() -> None:
    from aioproducer._records.reader import read_batches

    h = Harness(compression_type="zstd", batch_size=1 << 20, max_request_size=4 << 20)
    big = [h.send(b"%06d" % i + b"x" * 994, TopicPartition("t", 0)) for i in range(400)]
    h.turn()
    assert h.conn.sent == []  # compressing in the worker thread: not written yet
    small = h.send(b"small", TopicPartition("t", 1))
    h.turn()
    assert h.conn.sent == []  # queued behind the big one on the same connection
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(h.conn.sent) == 2:
            break
    first, second = (req.topic_data[0].partition_data[0] for req, _, _ in h.conn.sent)
    assert (first.index, second.index) == (0, 1)  # written in drain order
    [batch] = read_batches(first.records)
    assert batch.compression == 4 and len(batch.records) == 400
    h.conn.respond(0, (0, 0, 0))
    h.conn.respond(1, (1, 0, 0))
    await settle()
    assert big[-1].result().offset == 399 and small.result().offset == 0


async def test_a_partition_held_back_by_idempotence_does_not_spin_the_loop() -> None:
    """Regression: the sender used to turn again at once (timeout 0) while a ready batch was
    held back waiting for its partition's first response: a busy loop for a whole RTT."""
    h = await idempotent(batch_size=100)
    h.send(b"x" * 80)
    h.turn()
    h.send(b"y" * 80)
    h.send(b"z" * 80)  # two batches queued: ready, but held until the first success
    assert h.turn() > 0 and len(h.conn.sent) == 1
