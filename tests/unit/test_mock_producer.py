"""aioproducer.testing.MockProducer: the producer's API, no network, records kept, completion
by the test or automatic, injectable errors (Java's MockProducer)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from aioproducer import (
    BadRecordError,
    BadRecordTypeError,
    ConfigError,
    ProducerClosedError,
    ProducerInterceptor,
    ProducerRecord,
    RecordMetadata,
    RecordTooLargeError,
    SerializationError,
)
from aioproducer._core.murmur2 import murmur2
from aioproducer.errors import NotEnoughReplicasError
from aioproducer.testing import MockProducer


@pytest.mark.asyncio
async def test_auto_complete_records_history_and_offsets() -> None:
    async with MockProducer(partitions=3) as p:
        f1 = await p.send("t", b"a", key=b"k", headers=[("h", b"1")], timestamp_ms=1000)
        f2 = await p.send("t", b"b", key=b"k")
        assert f1.done() and f2.done()
        md1, md2 = await f1, await f2
        assert (md1.partition, md1.offset, md1.timestamp) == (
            (murmur2(b"k") & 0x7FFFFFFF) % 3,
            0,
            1000,
        )
        assert (md2.partition, md2.offset) == (md1.partition, 1)
        assert (md1.serialized_key_size, md1.serialized_value_size) == (1, 1)
        md3 = await p.send_and_wait("other", None)
        assert (md3.topic, md3.partition, md3.offset, md3.serialized_value_size) == (
            "other",
            0,
            0,
            -1,
        )
        assert p.history() == [
            ProducerRecord("t", b"a", b"k", None, 1000, [("h", b"1")]),
            ProducerRecord("t", b"b", b"k"),
            ProducerRecord("other", None),
        ]
        assert await p.partitions_for("t") == [0, 1, 2]
        p.clear()
        assert p.history() == []
        running = p.state
    assert running == "running"
    assert p.closed and p.state == "closed"


@pytest.mark.asyncio
async def test_unkeyed_records_take_the_partitions_in_turn() -> None:
    async with MockProducer(partitions={"t": 2}) as p:
        parts = [(await (await p.send("t", b"x"))).partition for _ in range(4)]
        assert parts == [0, 1, 0, 1]
        assert (await p.send_and_wait("t", b"x", partition=1)).partition == 1


@pytest.mark.asyncio
async def test_manual_completion_in_order_and_error_injection() -> None:
    seen: list[tuple[RecordMetadata | None, BaseException | None]] = []
    async with MockProducer(auto_complete=False) as p:
        f1 = await p.send("t", b"1", callback=lambda md, e: seen.append((md, e)))
        f2 = await p.send("t", b"2")
        f3 = await p.send("t", b"3")
        assert not f1.done() and p.pending == 3
        assert p.complete_next()
        assert f1.done() and not f2.done()
        assert (await f1).offset == 0 and seen[0][1] is None
        err = NotEnoughReplicasError("injected")
        assert p.error_next(err)
        with pytest.raises(NotEnoughReplicasError, match="injected"):
            await f2
        # An awaiting task is woken by the test's completion.
        waiter = asyncio.ensure_future(f3)
        await asyncio.sleep(0)
        assert not waiter.done()
        assert p.complete_next()
        assert (await waiter).offset == 1  # the failed record took no offset
        assert not p.complete_next() and not p.error_next(err)


@pytest.mark.asyncio
async def test_flush_and_close_complete_what_is_pending() -> None:
    p = MockProducer(auto_complete=False)
    await p.start()
    f1 = await p.send("t", b"1")
    await p.flush()
    assert f1.done() and p.flushed and p.pending == 0
    f2 = await p.send("t", b"2")
    await p.close()
    assert (await f2).offset == 1
    with pytest.raises(ProducerClosedError, match="closed"):
        await p.send("t", b"3")
    with pytest.raises(ProducerClosedError):
        await p.start()


@pytest.mark.asyncio
async def test_injected_send_flush_close_errors() -> None:
    p = MockProducer()
    with pytest.raises(ProducerClosedError, match="start"):
        await p.send("t", b"x")
    await p.start()
    p.send_error = RecordTooLargeError("too big (injected)")
    with pytest.raises(RecordTooLargeError, match="injected"):
        await p.send("t", b"x")
    assert p.history() == []
    p.send_error = None
    p.flush_error = TimeoutError("flush (injected)")
    with pytest.raises(TimeoutError):
        await p.flush()
    p.close_error = RuntimeError("close (injected)")
    with pytest.raises(RuntimeError):
        await p.close()
    assert not p.closed
    p.close_error = None
    await p.close()
    assert p.closed


@pytest.mark.asyncio
async def test_bad_records_fail_as_the_real_producer_fails_them() -> None:
    async with MockProducer(partitions=2, max_request_size=100) as p:
        with pytest.raises(SerializationError, match="bytes-like or None"):
            await p.send("t", "a str without a serializer")
        # The real producer's messages (aioproducer/_validate.py), word for word.
        with pytest.raises(BadRecordError, match=r"partition 2 is not in the range \[0\.\.\.2\)"):
            await p.send("t", b"x", partition=2)
        with pytest.raises(BadRecordTypeError, match="must be callable as callback"):
            await p.send("t", b"x", callback=5)  # type: ignore[arg-type]
        with pytest.raises(BadRecordTypeError):
            await p.send("t", b"x", headers=[("h", "not bytes")])  # type: ignore[list-item]
        with pytest.raises(BadRecordError):
            await p.send("bad topic!", b"x")
        with pytest.raises(RecordTooLargeError, match="max_request_size=100"):
            await p.send("t", b"x" * 101)
        assert p.history() == []


@pytest.mark.asyncio
async def test_serializers_interceptors_partitioner_from_the_config() -> None:
    acks: list[tuple[int, BaseException | None]] = []

    class Stamp(ProducerInterceptor):
        def on_send(self, record: ProducerRecord) -> ProducerRecord:
            return ProducerRecord(record.topic, record.value, record.key, headers=[("s", b"1")])

        def on_acknowledgement(self, md: RecordMetadata, exc: BaseException | None) -> None:
            acks.append((md.offset, exc))

    class Last:
        def partition(self, topic: str, *args: Any) -> int:
            return 4

    async with MockProducer(
        auto_complete=False,
        partitions=5,
        value_serializer=lambda v: json.dumps(v).encode(),
        interceptors=[Stamp()],
        partitioner=Last(),
    ) as p:
        f = await p.send("t", {"a": 1})
        assert p.history() == [ProducerRecord("t", {"a": 1}, headers=[("s", b"1")])]
        p.error_next(ValueError("x"))
        f2 = await p.send("t", {"a": 2})
        p.complete_next()
        assert (await f2).partition == 4 and (await f2).serialized_value_size == 8
        with pytest.raises(ValueError):
            await f
        assert [a[0] for a in acks] == [-1, 0] and isinstance(acks[0][1], ValueError)


def test_settings_are_checked_as_the_producers() -> None:
    with pytest.raises(ConfigError, match="did you mean 'linger_ms'"):
        MockProducer(lingerms=5)  # type: ignore[call-arg]
    assert "new" in repr(MockProducer(linger_ms=1))
