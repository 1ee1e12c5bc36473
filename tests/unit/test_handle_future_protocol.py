"""The record handle as an asyncio future, on both representations (compiled and pure Python):
what asyncio's own helpers and ported aiokafka code do with a future, done with handles."""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from aioproducer import RecordFuture, RecordMetadata
from aioproducer._core import producer_batch as core_batch
from aioproducer._core.cluster import TopicPartition
from aioproducer._core.producer_batch import ProducerBatch
from aioproducer._io.completion import Finished, completions_on
from aioproducer._records import record_batch as records_batch
from aioproducer.errors import KafkaTimeoutError

from .fakes import make_accumulator, try_append

TP = TopicPartition("t", 3)
T = TypeVar("T")


@pytest.fixture(params=["python", "c"])
def builder_cls(request: pytest.FixtureRequest) -> Any:
    if request.param == "python":
        return records_batch.PyRecordBatchBuilder
    if records_batch.CRecordBatchBuilder is None or core_batch.CRecordFuture is None:
        pytest.fail("the compiled record buffer (aioproducer/_records/_speedups.c) is not built")
    return records_batch.CRecordBatchBuilder


def run(builder_cls: Any, test: Callable[[Callable[..., ProducerBatch]], Awaitable[T]]) -> T:
    """``test(new_batch)`` on a fresh event loop; ``new_batch()`` opens a batch on it."""

    async def main() -> T:
        completions = completions_on(asyncio.get_running_loop())

        def new_batch() -> ProducerBatch:
            return ProducerBatch(TP, builder_cls(), completions(), 0, 0)

        return await test(new_batch)

    return asyncio.run(main())


def append(batch: ProducerBatch, n: int, callback: Any = None) -> list[Any]:
    """``n`` records' handles, typed Any: what asyncio's helpers take as futures (typeshed
    types them by asyncio.Future, which a handle is not a subclass of)."""
    out = []
    for i in range(n):
        h = batch.try_append(1000 + i, b"k", b"value", None, callback)
        assert h is not None
        out.append(h)
    return out


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_a_done_handle_builds_its_metadata_once(builder_cls: Any) -> None:
    """result(), exception() and await of a done handle: one RecordMetadata, built on the
    first read and handed out again (before, every call built a new one: ~1-3 us each)."""

    async def test(new_batch: Callable[..., ProducerBatch]) -> None:
        batch = new_batch()
        h0, h1 = append(batch, 2)
        batch.complete(500, -1, None)
        md = h0.result()
        assert type(md) is RecordMetadata
        assert md == RecordMetadata("t", 3, 500, 1000, 1, 5)
        assert h0.result() is md and (await h0) is md and h0.exception() is None
        assert (await h1) is h1.result() and h1.result().offset == 501
        # A named tuple, as aiokafka's RecordMetadata is.
        assert md.topic == md[0] == "t" and md._replace(offset=1).offset == 1
        assert repr(md) == (
            "RecordMetadata(topic='t', partition=3, offset=500, timestamp=1000, "
            "serialized_key_size=1, serialized_value_size=5)"
        )

    run(builder_cls, test)


def test_the_broker_timestamp_and_acks_0_offsets(builder_cls: Any) -> None:
    async def test(new_batch: Callable[..., ProducerBatch]) -> None:
        appended = new_batch()
        [h] = append(appended, 1)
        appended.complete(10, 777, None)  # LogAppendTime
        assert (await h) == RecordMetadata("t", 3, 10, 777, 1, 5)
        unanswered = new_batch()
        [h] = append(unanswered, 1)
        unanswered.complete(-1, -1, None)  # acks=0: no offset
        assert h.result().offset == -1 and h.result().timestamp == 1000

    run(builder_cls, test)


def test_a_failed_handle_raises_its_error_on_every_read(builder_cls: Any) -> None:
    async def test(new_batch: Callable[..., ProducerBatch]) -> None:
        batch = new_batch()
        h0, h1 = append(batch, 2)
        err, bad = KafkaTimeoutError("expired"), ValueError("record 1")
        batch.complete(-1, -1, err, record_errors={1: bad})
        assert h0.done() and not h0.cancelled()
        assert h0.exception() is err and h1.exception() is bad
        for _ in range(2):
            with pytest.raises(KafkaTimeoutError):
                await h0
            with pytest.raises(ValueError):
                h1.result()

    run(builder_cls, test)


def test_asyncio_takes_handles_as_futures(builder_cls: Any) -> None:
    async def test(new_batch: Callable[..., ProducerBatch]) -> None:
        loop = asyncio.get_running_loop()
        batch = new_batch()
        hs = append(batch, 4)
        assert all(asyncio.isfuture(h) for h in hs)
        assert asyncio.wrap_future(hs[0]) is hs[0]
        assert asyncio.ensure_future(hs[0]) is hs[0]
        assert hs[0].get_loop() is loop
        done, pending = await asyncio.wait(hs, timeout=0.01)
        assert not done and pending == set(hs)
        loop.call_later(0.01, batch.complete, 100, -1, None)
        done, pending = await asyncio.wait(hs, return_when=asyncio.FIRST_COMPLETED)
        assert done == set(hs) and not pending
        offsets = sorted([(await f).offset for f in asyncio.as_completed(hs)])
        assert offsets == [100, 101, 102, 103]
        assert [md.offset for md in await asyncio.gather(*hs)] == offsets
        assert (await asyncio.shield(hs[0])).offset == 100
        assert (await asyncio.wait_for(hs[1], 1)).offset == 101
        assert hs[0].get_loop() is loop  # done: the batch holds the loop weakly now

    run(builder_cls, test)


def test_done_callbacks_are_scheduled_once_with_the_handle(builder_cls: Any) -> None:
    async def test(new_batch: Callable[..., ProducerBatch]) -> None:
        var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="none")
        calls: list[tuple[str, Any, str]] = []

        def record(tag: str) -> Callable[[Any], None]:
            return lambda h: calls.append((tag, h, var.get()))

        batch = new_batch()
        h0, h1 = append(batch, 2)
        h0.add_done_callback(record("a"))
        ctx = contextvars.copy_context()
        ctx.run(var.set, "ctx")
        h0.add_done_callback(record("b"), context=ctx)
        dropped = record("dropped")
        h1.add_done_callback(dropped)
        h1.add_done_callback(dropped)
        assert h1.remove_done_callback(dropped) == 2 and h1.remove_done_callback(dropped) == 0
        batch.complete(7, -1, None)
        assert calls == []  # scheduled, never called inline (asyncio's rule)
        await turns()
        assert calls == [("a", h0, "none"), ("b", h0, "ctx")]
        h1.add_done_callback(record("late"))  # already done: scheduled at once
        assert calls == [("a", h0, "none"), ("b", h0, "ctx")]
        await turns()
        assert calls[-1] == ("late", h1, "none") and len(calls) == 3

    run(builder_cls, test)


def test_cancel_detaches_the_handle_and_the_record_is_still_delivered(builder_cls: Any) -> None:
    """cancel() as asyncio (and aiokafka) do it: the handle is done and cancelled, its callbacks
    and awaiting tasks see CancelledError; the record itself stays in the batch, and send()'s
    callback gets its real outcome."""

    async def test(new_batch: Callable[..., ProducerBatch]) -> None:
        outcomes: list[Any] = []
        batch = new_batch()
        h0, h1 = append(batch, 2, callback=lambda md, exc: outcomes.append((md, exc)))
        seen: list[bool] = []
        h0.add_done_callback(lambda h: seen.append(h.cancelled()))
        waiter = asyncio.ensure_future(_await(h0))
        other = asyncio.ensure_future(_await(h1))
        await turns()
        assert h0.cancel("no longer needed") and not h0.cancel()
        assert h0.done() and h0.cancelled() and not h1.done()
        with pytest.raises(asyncio.CancelledError, match="no longer needed"):
            h0.result()
        with pytest.raises(asyncio.CancelledError):
            h0.exception()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await turns()
        assert seen == [True] and not other.done()  # h1's awaiter kept waiting
        assert "cancelled" in repr(h0)
        batch.complete(40, -1, None)
        assert (await other).offset == 41
        assert [md.offset for md, _ in outcomes] == [40, 41]  # both records were delivered
        assert h0.cancelled() and not h1.cancel()

    run(builder_cls, test)


async def _await(h: RecordFuture) -> RecordMetadata:
    return await h


def test_cancelling_an_awaiting_task_leaves_the_handle_pending(builder_cls: Any) -> None:
    async def test(new_batch: Callable[..., ProducerBatch]) -> None:
        batch = new_batch()
        [h] = append(batch, 1)
        first = asyncio.ensure_future(_await(h))
        second = asyncio.ensure_future(_await(h))
        await turns()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert not h.done() and not second.done()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(h, 0.01)  # times out promptly: cancel() detached h
        assert h.cancelled()
        batch.complete(1, -1, None)
        with pytest.raises(asyncio.CancelledError):
            await second  # h was cancelled by wait_for's timeout, while second awaited it

    run(builder_cls, test)


def test_awaiters_and_callbacks_follow_a_record_into_its_split_batch() -> None:
    """On the selected record buffer (``make test`` runs this file on both)."""

    async def test() -> None:
        acc = make_accumulator(
            linger_ms=0,
            batch_size=100,
            max_request_size=100_000,
            new_completion=completions_on(asyncio.get_running_loop()),
        )
        assert acc.pool.try_allocate(5000)
        first, _ = acc.append_new_batch(TP, 0, b"k", b"v0", None, None, 0, 5000)
        big = acc.batches[TP][0]
        big.builder.batch_size = 10_000
        big.builder.set_ratio(1.0)
        hs = [first] + [try_append(acc, TP, i, b"k", b"v" * 40, None) for i in range(1, 12)]
        assert all(h is not None for h in hs)
        last = hs[-1]
        assert last is not None
        called: list[Any] = []
        last.add_done_callback(called.append)
        awaiting = asyncio.ensure_future(_await(last))
        flushing = asyncio.ensure_future(big.completion.wait())
        await turns()
        [drained] = acc.drain(_cluster(), {1}, 0)[1]
        assert acc.split_and_reenqueue(drained, 1) > 1
        pieces = list(acc.batches[TP])
        assert last.batch is pieces[-1] and not last.done()
        await turns()
        assert not awaiting.done()
        pieces[-1].complete(900, -1, None)
        assert (await awaiting).offset == 900 + last.relative_offset
        await turns()
        assert called == [last] and not flushing.done()  # flush waits for every piece
        for b in pieces[:-1]:
            b.complete(0, -1, None)
        await flushing

    asyncio.run(test())


def _cluster() -> Any:
    from .fakes import make_cluster

    return make_cluster({"t": [1, 1, 1, 1]})


def test_a_final_batch_holds_no_event_loop(builder_cls: Any) -> None:
    """The compiled handles are not tracked by the cyclic GC: nothing a finished handle reaches
    may hold the loop strongly, or a cycle through the loop would never be collected."""

    async def test(new_batch: Callable[..., ProducerBatch]) -> None:
        loop = asyncio.get_running_loop()
        batch = new_batch()
        [h] = append(batch, 1)
        h.add_done_callback(lambda h: None)
        assert loop in gc.get_referents(batch.completion)
        batch.complete(1, -1, None)
        assert type(batch.completion) is Finished
        assert loop not in gc.get_referents(batch.completion)
        assert h.get_loop() is loop and h.result().offset == 1

    run(builder_cls, test)
