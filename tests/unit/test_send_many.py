"""``Producer.send_many``: many records for one topic in one call, one future per record, the
same records in the same places as a loop of ``send()``. On the simulator's in-memory cluster
(``tests/sim``): a real ``Producer`` against simulated brokers, whose logs are the truth."""

from __future__ import annotations

from typing import Any

import pytest

from aioproducer import (
    BadRecordError,
    KafkaTimeoutError,
    Producer,
    ProducerClosedError,
    ProducerInterceptor,
    ProducerRecord,
    RecordMetadata,
    SerializationError,
)
from aioproducer.testing import MockProducer
from tests.sim.scenario import log_of, run
from tests.sim.world import World
from tests.unit.sending import slow_answers


def _all_logs(w: World) -> list[list[bytes | None]]:
    return [log_of(w, p) for p in range(3)]


def test_one_future_per_record_in_order_each_where_the_broker_wrote_it() -> None:
    got: list[RecordMetadata] = []

    async def body(p: Producer, w: World) -> None:
        futs = await p.send_many("t0", [b"v%d" % i for i in range(500)], partition=1)
        assert len(futs) == 500
        got.extend([await f for f in futs])

    w = run(body)
    assert [(md.topic, md.partition, md.offset) for md in got] == [("t0", 1, i) for i in range(500)]
    assert log_of(w, 1) == [b"v%d" % i for i in range(500)]


def test_keys_place_records_as_send_does() -> None:
    """Keyed records go where murmur2 puts them, the same partition as send() chooses."""
    keys = [b"key-%d" % (i % 17) for i in range(300)]
    values = [b"v%d" % i for i in range(300)]
    placed: dict[str, list[tuple[int, int]]] = {}

    async def body_many(p: Producer, w: World) -> None:
        futs = await p.send_many("t0", values, keys)
        placed["many"] = [((await f).partition, i) for i, f in enumerate(futs)]

    async def body_loop(p: Producer, w: World) -> None:
        futs = [await p.send("t0", v, k) for v, k in zip(values, keys, strict=True)]
        placed["loop"] = [((await f).partition, i) for i, f in enumerate(futs)]

    w_many = run(body_many)
    w_loop = run(body_loop)
    assert placed["many"] == placed["loop"]
    assert _all_logs(w_many) == _all_logs(w_loop)
    assert sum(len(log) for log in _all_logs(w_many)) == 300


def test_unkeyed_records_follow_the_sticky_partitions_and_all_arrive() -> None:
    """Without keys, records stick to a partition for a batch's worth, as send() does; many
    batches' worth (small batch_size) must all arrive, each once, in order per partition."""
    values = [b"%05d" % i for i in range(3000)]

    async def body(p: Producer, w: World) -> None:
        futs = await p.send_many("t0", values)
        await p.flush()
        assert all(f.done() and f.exception() is None for f in futs)

    w = run(body, batch_size=1024)
    logs = _all_logs(w)
    assert sorted(v or b"" for log in logs for v in log) == values
    for log in logs:
        assert log == sorted(v or b"" for v in log)  # in the order given, per partition
    assert sum(1 for log in logs if log) >= 2  # the stints moved on


def test_headers_timestamp_and_callback_apply_to_every_record() -> None:
    calls: list[tuple[int, bool]] = []

    async def body(p: Producer, w: World) -> None:
        futs = await p.send_many(
            "t0",
            [b"a", b"b", b"c"],
            partition=0,
            timestamp_ms=1_700_000_000_000,
            headers=[("h", b"1")],
            callback=lambda md, exc: calls.append((md.offset if md else -1, exc is None)),
        )
        mds = [await f for f in futs]
        assert [md.timestamp for md in mds] == [1_700_000_000_000] * 3

    w = run(body)
    assert calls == [(0, True), (1, True), (2, True)]
    part = w.cluster.partition("t0", 0)
    assert part is not None
    assert [list(e.headers) for e in part.log] == [[("h", b"1")]] * 3


def test_keys_and_values_of_different_lengths_are_refused_before_anything_is_sent() -> None:
    async def body(p: Producer, w: World) -> None:
        with pytest.raises(BadRecordError, match="3 values but 2 keys for topic 't0'"):
            await p.send_many("t0", [b"a", b"b", b"c"], [b"k1", b"k2"])
        await p.flush()

    w = run(body)
    assert _all_logs(w) == [[], [], []]


def test_a_bad_record_part_way_raises_with_the_futures_of_the_records_before_it() -> None:
    async def body(p: Producer, w: World) -> None:
        with pytest.raises(SerializationError) as info:
            await p.send_many("t0", [b"a", b"b", "not bytes", b"d"], partition=2)
        enqueued = info.value.enqueued  # type: ignore[attr-defined]
        assert [(await f).offset for f in enqueued] == [0, 1]

    w = run(body)
    assert log_of(w, 2) == [b"a", b"b"]


def test_a_memory_wait_that_times_out_part_way_reports_what_was_enqueued() -> None:
    """buffer_memory for a few batches only and answers held back 10 s: the records that got
    memory are enqueued (and delivered later), the first that waits past max_block_ms
    raises, carrying them."""
    counted: list[int] = []

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(slow_answers(10.0))
        with pytest.raises(KafkaTimeoutError) as info:
            await p.send_many("t0", [b"%04d" % i + b"x" * 900 for i in range(40)], partition=0)
        enqueued = info.value.enqueued  # type: ignore[attr-defined]
        counted.append(len(enqueued))
        assert [(await f).offset for f in enqueued] == list(range(len(enqueued)))

    w = run(body, batch_size=1024, buffer_memory=4096, max_block_ms=200)
    [n] = counted
    assert 0 < n < 40
    assert len(log_of(w, 0)) == n


def test_send_many_after_close_is_refused() -> None:
    async def body(p: Producer, w: World) -> None:
        await p.close()
        with pytest.raises(ProducerClosedError):
            await p.send_many("t0", [b"a"])

    run(body)


def test_interceptors_see_each_record() -> None:
    seen: list[Any] = []

    class Upper(ProducerInterceptor):
        def on_send(self, record: ProducerRecord) -> ProducerRecord:
            seen.append(record.value)
            return ProducerRecord(record.topic, record.value.upper(), partition=0)

    async def body(p: Producer, w: World) -> None:
        futs = await p.send_many("t0", [b"a", b"b"])
        assert [(await f).offset for f in futs] == [0, 1]

    w = run(body, interceptors=[Upper()])
    assert seen == [b"a", b"b"]
    assert log_of(w, 0) == [b"A", b"B"]


@pytest.mark.asyncio
async def test_mock_producer_has_send_many_with_the_same_results() -> None:
    mock = MockProducer(partitions=3)
    async with mock:
        futs = await mock.send_many("t", [b"a", b"b", b"c"], [b"k", b"k", b"k"])
        mds = [await f for f in futs]
    assert len({md.partition for md in mds}) == 1
    assert [r.value for r in mock.history()] == [b"a", b"b", b"c"]
