"""Every bad argument to ``send()`` raises a typed error of ours at ``send()`` — a
:class:`KafkaError` that is also the matching builtin (``TypeError`` for a wrong type:
:class:`BadRecordTypeError`, :class:`SerializationError`; ``ValueError`` for a wrong value:
:class:`BadRecordError`) — naming the argument, before anything is enqueued: the buffer pool
and the open batches are as they were."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aioproducer import KafkaError, Producer
from aioproducer.errors import BadRecordError, BadRecordTypeError, SerializationError
from tests.faults.fake_broker import FakeBroker

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def producer() -> AsyncIterator[Producer]:
    """A started producer on an in-process fake broker (topic ``t``, one partition) that
    keeps its batches: the linger is a minute."""
    fake = await FakeBroker().start()
    p = Producer(bootstrap_servers=fake.bootstrap_servers, linger_ms=60_000, max_block_ms=5_000)
    await p.start()
    await p.partitions_for("t")
    try:
        yield p
    finally:
        await p.close(0)
        await fake.close()


def state(p: Producer) -> tuple[int, list[tuple[str, int, int]]]:
    """What a refused send must not change: free buffer memory, and every queued batch."""
    acc = p._accumulator
    assert acc is not None
    return p._pool.available, [
        (tp.topic, tp.partition, b.record_count) for tp, dq in acc.batches.items() for b in dq
    ]


class NotCallable:
    pass


TYPE_ERRORS: list[tuple[dict[str, Any], type[KafkaError], str]] = [
    ({"topic": 5}, BadRecordTypeError, "topic"),
    ({"topic": None}, BadRecordTypeError, "topic"),
    ({"topic": b"t"}, BadRecordTypeError, "topic"),
    ({"value": 5}, SerializationError, "value"),
    ({"value": "text"}, SerializationError, "value"),
    ({"key": 5}, SerializationError, "key"),
    ({"key": True}, SerializationError, "key"),
    ({"partition": "0"}, BadRecordTypeError, "partition"),
    ({"partition": True}, BadRecordTypeError, "partition"),
    ({"partition": False}, BadRecordTypeError, "partition"),
    ({"partition": 0.0}, BadRecordTypeError, "partition"),
    ({"timestamp_ms": True}, BadRecordTypeError, "timestamp_ms"),
    ({"timestamp_ms": "1700000000000"}, BadRecordTypeError, "timestamp_ms"),
    ({"timestamp_ms": 1.7e12}, BadRecordTypeError, "timestamp_ms"),
    ({"headers": 5}, BadRecordTypeError, "headers"),
    ({"headers": "hx"}, BadRecordTypeError, "headers"),
    ({"headers": b"hx"}, BadRecordTypeError, "headers"),
    ({"headers": {"h": b"x"}}, BadRecordTypeError, "headers"),
    ({"headers": [("h",)]}, BadRecordTypeError, "headers[0]"),
    ({"headers": [("h", b"x"), 5]}, BadRecordTypeError, "headers[1]"),
    ({"headers": [(5, b"x")]}, BadRecordTypeError, "header key"),
    ({"headers": [(b"h", b"x")]}, BadRecordTypeError, "header key"),
    ({"headers": [("h", "x")]}, BadRecordTypeError, "header value"),
    ({"headers": [("h", 5)]}, BadRecordTypeError, "header value"),
    ({"callback": 5}, BadRecordTypeError, "callback"),
    ({"callback": NotCallable()}, BadRecordTypeError, "callback"),
]
VALUE_ERRORS: list[tuple[dict[str, Any], type[KafkaError], str]] = [
    ({"topic": ""}, BadRecordError, "topic"),
    ({"topic": "no spaces"}, BadRecordError, "topic"),
    ({"topic": "t\ud800"}, BadRecordError, "topic"),
    ({"partition": -1}, BadRecordError, "partition"),
    ({"partition": 1}, BadRecordError, "partition"),  # t has one partition
    ({"timestamp_ms": -1}, BadRecordError, "timestamp_ms"),
    ({"timestamp_ms": 2**63}, BadRecordError, "timestamp_ms"),
    ({"headers": [("\ud800", b"x")]}, BadRecordError, "header key"),
    ({"headers": [("h", b"x"), ("k\udfff", None)]}, BadRecordError, "header key"),
]


@pytest.mark.parametrize("open_batch", [False, True], ids=["no-batch", "open-batch"])
@pytest.mark.parametrize(
    ("bad", "error", "names"),
    TYPE_ERRORS + VALUE_ERRORS,
    ids=[f"{k}={v!r}"[:40] for (args, _, _) in TYPE_ERRORS + VALUE_ERRORS for k, v in args.items()],
)
async def test_a_bad_argument_is_refused_at_send_and_enqueues_nothing(
    producer: Producer,
    bad: dict[str, Any],
    error: type[KafkaError],
    names: str,
    open_batch: bool,
) -> None:
    if open_batch:  # the bad record would go to this batch: it must not be half-written
        await producer.send("t", b"first", partition=0)
    before = state(producer)
    args: dict[str, Any] = {"topic": "t", "value": b"v", **bad}
    with pytest.raises(error) as info:
        await asyncio.wait_for(producer.send(**args), 2)
    exc = info.value
    builtin = TypeError if (bad, error, names) in TYPE_ERRORS else ValueError
    assert isinstance(exc, KafkaError) and isinstance(exc, builtin), type(exc).__mro__
    # One except catches every refused record (BadRecordTypeError is a BadRecordError).
    assert isinstance(exc, (BadRecordError, SerializationError))
    assert names in str(exc)
    assert state(producer) == before


async def test_good_arguments_in_every_accepted_form_still_work(producer: Producer) -> None:
    import enum

    class P(enum.IntEnum):
        ZERO = 0

    seen: list[Any] = []
    futs = [
        await producer.send("t", bytearray(b"v"), key=memoryview(b"k"), partition=P.ZERO),
        # Header values may be any bytes-like, headers any iterable, at run time; send() types
        # them Sequence[tuple[str, bytes | None]] (a product annotation): hence the ignores.
        await producer.send(
            "t",
            None,
            headers=(("h", bytearray(b"x")), ("n", None), ("é", b"")),  # type: ignore[arg-type]
        ),
        await producer.send(
            "t", b"v", headers=[], timestamp_ms=0, callback=lambda m, e: seen.append(m)
        ),
        await producer.send(
            "t",
            b"v",
            headers=iter([("h", b"x")]),  # type: ignore[arg-type]
            timestamp_ms=2**63 - 1,
        ),
    ]
    await producer.flush(5)
    assert [f.result().partition for f in futs] == [0, 0, 0, 0]
    assert len(seen) == 1
