"""Record handles on both representations: the compiled one (made by the compiled record
buffer, not tracked by the cyclic GC) and the pure-Python one."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from aioproducer import RecordFuture, RecordMetadata
from aioproducer._core import producer_batch as core_batch
from aioproducer._core.cluster import TopicPartition
from aioproducer._core.producer_batch import ProducerBatch, PyRecordFuture
from aioproducer._io.completion import completions_on
from aioproducer._records import record_batch as records_batch
from aioproducer.errors import KafkaTimeoutError

from .fakes import FakeCompletion, make_accumulator

TP = TopicPartition("t", 3)


@pytest.fixture(params=["python", "c"])
def builder_cls(request: pytest.FixtureRequest) -> Any:
    if request.param == "python":
        return records_batch.PyRecordBatchBuilder
    if records_batch.CRecordBatchBuilder is None or core_batch.CRecordFuture is None:
        pytest.fail("the compiled record buffer (aioproducer/_records/_speedups.c) is not built")
    return records_batch.CRecordBatchBuilder


def test_handles_resolve_from_their_batch(builder_cls: Any) -> None:
    batch = ProducerBatch(TP, builder_cls(), FakeCompletion(), 0, 0)
    calls: list[tuple[Any, Any]] = []
    h0 = batch.try_append(1000, b"key", b"value", None, lambda md, e: calls.append((md, e)))
    h1 = batch.try_append(1001, None, None, [("h", b"v")], None)
    assert h0 is not None and h1 is not None
    assert batch.handles == [h0, h1]
    expected = (
        PyRecordFuture
        if builder_cls is records_batch.PyRecordBatchBuilder
        else (core_batch.CRecordFuture)
    )
    assert type(h0) is expected
    assert (h0.relative_offset, h0.timestamp, h0.key_size, h0.value_size) == (0, 1000, 3, 5)
    assert (h1.relative_offset, h1.key_size, h1.value_size) == (1, -1, -1)
    assert not h0.done() and "pending" in repr(h0)
    with pytest.raises(RuntimeError, match="not acknowledged"):
        h0.result()
    assert batch.complete(500, -1, None)
    md = RecordMetadata("t", 3, 500, 1000, 3, 5)
    assert calls == [(md, None)]
    assert h0.done() and h0.result() == md and h1.result().offset == 501
    assert h0.callback is None  # called once, then dropped: no cycle survives the batch
    assert batch.handles == [] and "done" in repr(h0)


def test_a_failed_batch_fails_every_handle(builder_cls: Any) -> None:
    batch = ProducerBatch(TP, builder_cls(), FakeCompletion(), 0, 0)
    h = batch.try_append(1, b"k", b"v", None, None)
    assert h is not None
    err = KafkaTimeoutError("expired")
    batch.complete(-1, -1, err)
    assert h.exception() is err
    with pytest.raises(KafkaTimeoutError):
        h.result()
    assert "error=" in repr(h)


def test_awaiting_a_handle_waits_for_the_batch(builder_cls: Any) -> None:
    async def main() -> RecordMetadata:
        completions = completions_on(asyncio.get_running_loop())
        batch = ProducerBatch(TP, builder_cls(), completions(), 0, 0)
        h = batch.try_append(7, None, b"v", None, None)
        assert h is not None
        asyncio.get_running_loop().call_soon(batch.complete, 42, 99, None)
        return await h

    assert asyncio.run(main()) == RecordMetadata("t", 3, 42, 99, -1, 1)


def test_compiled_handles_are_not_tracked_by_the_gc() -> None:
    if records_batch.CRecordBatchBuilder is None:
        pytest.fail("the compiled record buffer is not built")
    # ProducerBatch's builder is annotated RecordBatchBuilder, the pure class under
    # TYPE_CHECKING, though it takes either builder (a product annotation): hence the ignore.
    builder = records_batch.CRecordBatchBuilder()
    batch = ProducerBatch(TP, builder, FakeCompletion(), 0, 0)  # type: ignore[arg-type]
    h = batch.try_append(1, None, b"v", None, None)
    assert h is not None and not gc.is_tracked(h)
    if records_batch.IMPLEMENTATION == "c":
        assert RecordFuture is core_batch.CRecordFuture and isinstance(h, RecordFuture)


def test_the_environment_selects_the_builder_and_handle_types_together() -> None:
    """``make test`` runs the record paths a second time with AIOPRODUCER_PURE_PYTHON=1: there
    every batch the accumulator opens must be on the pure builder, with pure handles;
    otherwise on the compiled ones."""
    pure = records_batch.PURE_PYTHON
    selected = records_batch.IMPLEMENTATION
    assert selected == ("python" if pure else "c")
    acc = make_accumulator()
    assert acc.pool.try_allocate(acc.batch_size)
    handle, _ = acc.append_new_batch(TP, 1, None, b"v", None, None, 0, acc.batch_size)
    [batch] = acc.batches[TP]
    if pure:
        assert type(batch.builder) is records_batch.PyRecordBatchBuilder
        assert not batch.compiled and RecordFuture is PyRecordFuture
        assert type(handle) is PyRecordFuture
    else:
        assert type(batch.builder) is records_batch.CRecordBatchBuilder
        assert batch.compiled and RecordFuture is core_batch.CRecordFuture
        assert type(handle) is core_batch.CRecordFuture


class _ReadList(list):  # type: ignore[type-arg]
    """A batch's handle list that notes being iterated."""

    read = False

    def __iter__(self) -> Any:
        self.read = True
        return super().__iter__()


def test_completing_a_batch_reads_its_handles_only_when_someone_is_told(builder_cls: Any) -> None:
    """Fire and forget: no callback, no acknowledgement hook, so complete() does not walk the
    handles (cold in memory by then); one record with a callback makes it walk them all."""
    quiet = ProducerBatch(TP, builder_cls(), FakeCompletion(), 0, 0)
    quiet.handles = handles = _ReadList()
    h = quiet.try_append(1, None, b"a", None, None)
    assert h is not None and not quiet.has_callbacks
    assert quiet.complete(10, -1, None)
    assert not handles.read and h.result().offset == 10

    told = ProducerBatch(TP, builder_cls(), FakeCompletion(), 0, 0)
    told.handles = handles = _ReadList()
    calls: list[RecordMetadata | None] = []
    told.try_append(1, None, b"a", None, None)
    told.try_append(2, None, b"b", None, lambda md, e: calls.append(md))
    assert told.has_callbacks
    assert told.complete(20, -1, None)
    assert handles.read and [md.offset for md in calls if md is not None] == [21]

    hooked = ProducerBatch(TP, builder_cls(), FakeCompletion(), 0, 0)
    acked: list[RecordMetadata | None] = []
    hooked.try_append(1, None, b"a", None, None)
    assert hooked.complete(30, -1, None, on_ack=lambda h, md, e: acked.append(md))
    assert [md.offset for md in acked if md is not None] == [30]


def test_a_callback_follows_its_record_into_a_split_batch(builder_cls: Any) -> None:
    from aioproducer._core.split import split_batch

    batch = ProducerBatch(TP, builder_cls("none", 1 << 20), FakeCompletion(), 0, 0)
    calls: list[tuple[int, Any]] = []
    for i in range(3):
        cb = (lambda md, e: calls.append((md.offset, e))) if i == 2 else None
        assert batch.try_append(i, None, b"v" * 50, None, cb) is not None
    pieces = split_batch(batch, lambda: builder_cls("none", 100), FakeCompletion)
    assert len(pieces) == 3
    assert [p.has_callbacks for p in pieces] == [True, True, True]  # inherited, as watched
    for n, piece in enumerate(pieces):
        piece.complete(100 * n, -1, None)
    assert calls == [(200, None)]


def test_a_record_without_timestamp_is_stamped_now_by_the_compiled_buffer(
    builder_cls: Any,
) -> None:
    """send() without timestamp_ms leaves the clock to the compiled record buffer (two ints
    and a division per record saved); the pure one reads no clock and says so."""
    import time

    batch = ProducerBatch(TP, builder_cls(), FakeCompletion(), 0, 0)
    if builder_cls is records_batch.PyRecordBatchBuilder:
        with pytest.raises(TypeError, match="reads no clock"):
            batch.try_append(None, None, b"v", None, None)
        assert batch.handles == [] and batch.builder.record_count == 0
        return
    before = time.time_ns() // 1_000_000
    h = batch.try_append(None, None, b"v", None, None)
    h2 = batch.try_append(None, None, b"w", None, None)
    after = time.time_ns() // 1_000_000
    assert h is not None and h2 is not None
    assert before <= h.timestamp <= h2.timestamp <= after
    assert [r.timestamp for r in batch.builder.records()] == [h.timestamp, h2.timestamp]
    batch.complete(7, -1, None)
    assert h.result().timestamp == h.timestamp
