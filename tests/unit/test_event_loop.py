"""A producer belongs to the event loop that started it: ``send()`` from another loop (a
worker thread's ``asyncio.run``, or a second loop of the same thread) raises
:class:`WrongEventLoopError` at once, a ``RuntimeError`` too, and enqueues nothing."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aioproducer import KafkaError, Producer
from aioproducer.errors import WrongEventLoopError
from tests.faults.fake_broker import FakeBroker

from .test_send_validation import state


@pytest_asyncio.fixture
async def producer() -> AsyncIterator[Producer]:
    fake = await FakeBroker().start()
    p = Producer(bootstrap_servers=fake.bootstrap_servers, linger_ms=60_000, max_block_ms=3_000)
    await p.start()
    await p.partitions_for("t")
    try:
        yield p
    finally:
        await p.close(0)
        await fake.close()


def in_worker_loop(coro_fn: Any) -> BaseException | None:
    """Run ``coro_fn()`` with ``asyncio.run`` in a new thread; its exception, or None."""
    out: list[BaseException | None] = [None]

    def run() -> None:
        async def go() -> None:
            await asyncio.wait_for(coro_fn(), 10)

        try:
            asyncio.run(go())
        except BaseException as exc:
            out[0] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(15)
    return out[0]


@pytest.mark.asyncio
@pytest.mark.parametrize("topic", ["t", "unknown-topic"])
@pytest.mark.parametrize("open_batch", [False, True], ids=["no-batch", "open-batch"])
@pytest.mark.parametrize("how", ["send", "send_and_wait"])
async def test_send_from_a_worker_threads_loop_raises_at_once(
    producer: Producer, topic: str, open_batch: bool, how: str
) -> None:
    if open_batch:
        await producer.send("t", b"first")
    before = state(producer)
    t0 = time.monotonic()
    exc = await asyncio.to_thread(in_worker_loop, lambda: getattr(producer, how)(topic, b"v"))
    assert time.monotonic() - t0 < 1.0
    assert isinstance(exc, WrongEventLoopError), repr(exc)
    assert isinstance(exc, KafkaError) and isinstance(exc, RuntimeError)
    assert "event loop" in str(exc) and "run_coroutine_threadsafe" in str(exc)
    assert state(producer) == before
    # The producer's own loop goes on as before.
    md = await producer.send_and_wait("t", b"after")
    assert md.topic == "t"


def test_send_from_the_next_loop_of_the_same_thread_raises() -> None:
    """A producer started in one ``asyncio.run`` and not closed, used in the next one."""
    fake_loop = asyncio.new_event_loop()
    fake = fake_loop.run_until_complete(FakeBroker().start())
    server = threading.Thread(target=fake_loop.run_forever, daemon=True)
    server.start()
    holder: list[Producer] = []

    async def first() -> None:
        p = Producer(bootstrap_servers=fake.bootstrap_servers, linger_ms=60_000)
        await p.start()
        await p.send("t", b"on the first loop")
        holder.append(p)

    try:
        asyncio.run(first())
        t0 = time.monotonic()
        with pytest.raises(WrongEventLoopError):
            asyncio.run(asyncio.wait_for(holder[0].send("t", b"v"), 10))
        assert time.monotonic() - t0 < 1.0
    finally:
        with warnings.catch_warnings():  # it was dropped with its loop, never closed
            warnings.simplefilter("ignore", ResourceWarning)
            holder.clear()
            gc.collect()
        asyncio.run_coroutine_threadsafe(fake.close(), fake_loop).result(5)
        fake_loop.call_soon_threadsafe(fake_loop.stop)
        server.join(5)
        fake_loop.close()


def test_a_new_batch_from_a_second_loop_of_the_same_thread_raises() -> None:
    """The first loop is stopped, not closed (``run_until_complete`` style). The per-record
    check is the thread's, so another loop of the same thread is caught where a send needs
    the loop: a new batch (here, on a partition without one) or a metadata wait."""
    first = asyncio.new_event_loop()
    fake = first.run_until_complete(FakeBroker().start())
    p = Producer(bootstrap_servers=fake.bootstrap_servers, linger_ms=60_000, max_block_ms=3_000)
    try:
        first.run_until_complete(p.start())
        first.run_until_complete(p.partitions_for("t"))
        for args in [("t", b"v"), ("other-topic", b"v")]:
            t0 = time.monotonic()
            with pytest.raises(WrongEventLoopError):
                asyncio.run(asyncio.wait_for(p.send(*args), 10))
            assert time.monotonic() - t0 < 1.0
        assert state(p)[1] == []
    finally:
        first.run_until_complete(p.close(0))
        first.run_until_complete(fake.close())
        first.close()
