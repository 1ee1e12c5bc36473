"""The Producer facade itself, on the simulator's in-memory cluster: no sockets, no threads,
virtual time (``tests/sim``). Each test is a scenario run by a real ``Producer`` against three
simulated brokers that speak the wire protocol; the brokers' logs are the truth it checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aioproducer import (
    Producer,
    ProducerClosedError,
    ProducerInterceptor,
    ProducerRecord,
    RecordMetadata,
)
from aioproducer.metrics import value_of
from tests.sim.scenario import log_of, run
from tests.sim.world import World


def test_a_sent_record_resolves_to_where_the_broker_wrote_it() -> None:
    got: list[RecordMetadata] = []

    async def body(p: Producer, w: World) -> None:
        fut = await p.send("t0", b"hello", key=b"k", partition=2)
        md = await fut
        got.append(md)

    w = run(body)
    [md] = got
    assert (md.topic, md.partition, md.offset) == ("t0", 2, 0)
    assert log_of(w, 2) == [b"hello"]


def test_a_record_without_timestamp_ms_is_stamped_when_sent() -> None:
    """On either record buffer (``make test`` runs this file on both): the compiled one
    reads the clock as it appends, the pure path in send()."""
    import time

    got: list[tuple[int, int, int]] = []

    async def body(p: Producer, w: World) -> None:
        before = time.time_ns() // 1_000_000
        fut = await p.send("t0", b"v", partition=1)
        after = time.time_ns() // 1_000_000
        got.append((before, (await fut).timestamp, after))
        given = await (await p.send("t0", b"w", partition=1, timestamp_ms=1234))
        assert given.timestamp == 1234

    run(body)
    [(before, stamped, after)] = got
    assert before <= stamped <= after


def test_callbacks_run_in_record_order_after_the_futures_resolve() -> None:
    order: list[tuple[str, int]] = []

    async def body(p: Producer, w: World) -> None:
        def callback_for(i: int) -> Callable[[RecordMetadata | None, BaseException | None], None]:
            return lambda md, exc: order.append(("cb", i))

        futs = [
            await p.send("t0", b"v%d" % i, partition=0, callback=callback_for(i)) for i in range(20)
        ]
        await p.flush()
        assert all(f.done() for f in futs)
        assert [f.result().offset for f in futs] == list(range(20))

    w = run(body, linger_ms=50)
    assert order == [("cb", i) for i in range(20)]
    assert log_of(w, 0) == [b"v%d" % i for i in range(20)]


def test_close_delivers_what_is_still_lingering() -> None:
    futs: list[Any] = []

    async def body(p: Producer, w: World) -> None:
        futs.extend([await p.send("t0", b"x%d" % i, partition=1) for i in range(5)])
        # no flush: close() delivers them (the linger is an hour)

    w = run(body, linger_ms=3_600_000, delivery_timeout_ms=3_700_000)
    assert all(f.done() and f.exception() is None for f in futs)
    assert log_of(w, 1) == [b"x%d" % i for i in range(5)]


def test_a_closed_producer_refuses_records_and_resolves_every_future() -> None:
    async def body(p: Producer, w: World) -> None:
        fut = await p.send("t0", b"last", partition=0)
        await p.close()
        assert fut.done()
        try:
            await p.send("t0", b"late")
        except ProducerClosedError:
            pass
        else:
            raise AssertionError("send() after close() did not raise")

    w = run(body)
    assert log_of(w, 0) == [b"last"]


def test_send_and_wait_partitions_for_and_metrics() -> None:
    seen: dict[str, Any] = {}

    async def body(p: Producer, w: World) -> None:
        seen["partitions"] = await p.partitions_for("t0")
        seen["md"] = await p.send_and_wait("t0", b"one", partition=1)
        seen["metrics"] = p.metrics()

    run(body)
    assert seen["partitions"] == [0, 1, 2]
    assert (seen["md"].partition, seen["md"].offset) == (1, 0)
    metrics = seen["metrics"]
    assert (
        value_of(metrics, "batches-queued", "aioproducer-metrics") == 0
        and value_of(metrics, "connection-count") >= 1
    )
    assert value_of(metrics, "buffer-available-bytes") == value_of(metrics, "buffer-total-bytes")


def test_a_minute_of_linger_passes_in_virtual_time() -> None:
    """The scenario waits a virtual minute; the test takes milliseconds."""
    stamps: list[float] = []

    async def body(p: Producer, w: World) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        fut = await p.send("t0", b"slow", partition=0)
        await fut
        stamps.append(loop.time() - t0)

    run(body, linger_ms=60_000, delivery_timeout_ms=200_000)
    assert 60 <= stamps[0] < 61


def test_interceptors_rewrite_records_and_see_outcomes_before_callbacks() -> None:
    events: list[tuple[str, int]] = []
    closed: list[bool] = []

    class Upper(ProducerInterceptor):
        def on_send(self, record: ProducerRecord) -> ProducerRecord | None:
            return replace(record, value=record.value.upper())

        def on_acknowledgement(self, metadata: RecordMetadata, exc: BaseException | None) -> None:
            events.append(("ack", metadata.offset))

        def close(self) -> None:
            closed.append(True)

    class OnlySend(ProducerInterceptor):
        def on_send(self, record: ProducerRecord) -> ProducerRecord | None:
            return None  # unchanged

    async def body(p: Producer, w: World) -> None:
        assert p._sender is not None and p._sender.on_ack is not None
        for i in range(3):
            await p.send(
                "t0",
                b"v%d" % i,
                partition=0,
                callback=lambda md, exc: events.append(("cb", md.offset if md else -1)),
            )
        await p.flush()

    w = run(body, interceptors=[Upper(), OnlySend()])
    assert log_of(w, 0) == [b"V0", b"V1", b"V2"]
    assert events == [(kind, i) for i in range(3) for kind in ("ack", "cb")]
    assert closed == [True]


def test_an_inherited_no_op_hook_costs_nothing() -> None:
    """Overriding only on_send installs no acknowledgement hook: the per-record path stays
    the one without interceptors."""

    class OnlySend(ProducerInterceptor):
        def on_send(self, record: ProducerRecord) -> ProducerRecord | None:
            return None

    async def body(p: Producer, w: World) -> None:
        assert p._sender is not None and p._sender.on_ack is None
        await p.send_and_wait("t0", b"x", partition=0)

    run(body, interceptors=[OnlySend()])


def test_send_and_wait_writes_its_request_from_the_callers_task_when_the_producer_is_idle() -> None:
    """Nothing in flight, nothing queued: send_and_wait runs the sender's turn itself, so its
    request is on the wire before the caller's task yields, without a wake-up of the sender
    task (one event-loop turn of latency). With a request in flight it wakes the sender as
    before: the sender task stays the one that orders the requests."""

    async def body(p: Producer, world: World) -> None:
        await p.send_and_wait("t0", b"warm-up", partition=0)
        idle = asyncio.ensure_future(p.send_and_wait("t0", b"idle", partition=0))
        await asyncio.sleep(0)  # the task ran up to its await; the sender task has not yet
        assert value_of(p.metrics(), "requests-in-flight") == 1
        busy = asyncio.ensure_future(p.send_and_wait("t0", b"busy", partition=1))
        await asyncio.sleep(0)
        assert value_of(p.metrics(), "requests-in-flight") == 1  # queued for the sender task
        mds = [await idle, await busy]
        assert [(md.partition, md.offset) for md in mds] == [(0, 1), (1, 0)]

    world = run(body)
    assert log_of(world, 0) == [b"warm-up", b"idle"] and log_of(world, 1) == [b"busy"]
