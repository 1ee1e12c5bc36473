"""Lifecycle regressions of the failure-paths issue (items 5-8), against the fake broker: each
failed on the code before its fix for the reason its docstring gives."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aioproducer import KafkaError, Producer, ProducerClosedError
from aioproducer.errors import PersistedStatus
from aioproducer.testing.proxy import ChaosProxy

from .fake_broker import FakeBroker


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBroker]:
    broker = await FakeBroker().start()
    yield broker
    await broker.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FrontDoor:
    """A TCP forwarder on a fixed port to the fake broker, which can open late and can
    answer the first request of its first ``garbage`` connections with a garbage frame."""

    def __init__(self, port: int, target: int, garbage: int = 0) -> None:
        self.port, self.target, self.garbage = port, target, garbage
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.accepted <= self.garbage:
            size = struct.unpack(">i", await reader.readexactly(4))[0]
            frame = await reader.readexactly(size)
            cid = frame[4:8]
            body = cid + b"\x7f\xff\xff\xff\x00\x01"  # an ApiVersions answer that does not parse
            writer.write(struct.pack(">i", len(body)) + body)
            await writer.drain()
            writer.close()
            return
        r2, w2 = await asyncio.open_connection("127.0.0.1", self.target)

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                w.close()

        for t in (pump(reader, w2), pump(r2, writer)):
            task = asyncio.get_running_loop().create_task(t)
            self._tasks.add(task)


@pytest.mark.asyncio
async def test_start_retries_the_bootstrap_broker_until_it_listens(fake: FakeBroker) -> None:
    """Item 6: the broker starts listening 0.5 s after ``start()``. Before the fix the first
    refusal left the sender asleep without a deadline: never contacted again, and ``start()``
    failed at ``max_block_ms`` saying no broker could be reached."""
    door = FrontDoor(_free_port(), fake.port)
    p = Producer(
        bootstrap_servers=f"127.0.0.1:{door.port}",
        max_block_ms=10_000,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=200,
    )
    starting = asyncio.ensure_future(p.start())
    await asyncio.sleep(0.5)
    await door.open()
    try:
        await asyncio.wait_for(starting, 5)
        assert door.accepted >= 1
        md = await p.send_and_wait("t", b"v")
        assert md.offset == 0
    finally:
        await p.close()
        await door.close()


@pytest.mark.asyncio
async def test_start_retries_after_a_garbage_api_versions_answer(fake: FakeBroker) -> None:
    """Item 6: the first connection gets an ApiVersions answer that does not parse."""
    door = FrontDoor(_free_port(), fake.port, garbage=1)
    await door.open()
    p = Producer(
        bootstrap_servers=f"127.0.0.1:{door.port}",
        max_block_ms=10_000,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=200,
    )
    try:
        await asyncio.wait_for(p.start(), 5)
        assert door.accepted >= 2
        assert (await p.send_and_wait("t", b"v")).offset == 0
    finally:
        await p.close()
        await door.close()


@pytest.mark.asyncio
async def test_a_broker_advertised_at_a_bad_port_backs_off(fake: FakeBroker) -> None:
    """Item 7: Metadata advertises port 70000. Before the fix every attempt raised
    ``OverflowError`` out of the connect task ("Task exception was never retrieved") and
    was retried at once: a CPU at 100 % for the whole delivery timeout."""
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: escaped.append(ctx))
    bootstrap = fake.bootstrap_servers
    fake.port = 70000  # advertised in Metadata; the broker still listens where it did
    p = Producer(
        bootstrap_servers=bootstrap,
        linger_ms=0,
        request_timeout_ms=1000,
        delivery_timeout_ms=1500,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=200,
    )
    try:
        await p.start()
        cpu0 = time.process_time()
        fut = await p.send("t", b"v")
        with pytest.raises(KafkaError):
            await asyncio.wait_for(fut, 5)
        cpu = time.process_time() - cpu0
        await p.close()
    finally:
        loop.set_exception_handler(None)
    assert cpu < 0.5, f"{cpu:.2f} CPU s in 1.5 s: a busy reconnect loop"
    assert not escaped, escaped


@pytest.mark.asyncio
async def test_close_returns_within_the_delivery_timeout_when_the_broker_is_gone(
    fake: FakeBroker,
) -> None:
    """Item 5: every connection is reset; ``close()`` without a timeout must return within
    ``delivery_timeout_ms + request_timeout_ms`` with every future failed. Before the fix the
    sender's last pass expired the batches and then slept with no deadline."""
    async with ChaosProxy("127.0.0.1", fake.port) as proxy:
        fake.port = proxy.port  # advertised in Metadata: every connection goes through it
        p = Producer(
            bootstrap_servers=f"127.0.0.1:{proxy.port}",
            linger_ms=0,
            request_timeout_ms=1000,
            delivery_timeout_ms=3000,
            enable_idempotence=False,
        )
        await p.start()
        await p.send_and_wait("t", b"warm")  # metadata and connections in place
        proxy.drop()
        futs = [await p.send("t", b"%d" % i) for i in range(10)]
        t0 = time.monotonic()
        await asyncio.wait_for(p.close(), 10)
        took = time.monotonic() - t0
    assert took < 4.5, took
    for f in futs:
        exc = f.exception()
        assert isinstance(exc, KafkaError)
        assert exc.persisted_status in (
            PersistedStatus.NOT_PERSISTED,
            PersistedStatus.POSSIBLY_PERSISTED,
        )


@pytest.mark.asyncio
async def test_start_after_close_raises(fake: FakeBroker) -> None:
    """Item 8: before the fix ``start()`` after ``close()`` returned silently."""
    p = Producer(bootstrap_servers=fake.bootstrap_servers)
    await p.start()
    await p.close()
    with pytest.raises(ProducerClosedError):
        await p.start()


def test_a_producer_dropped_without_close_warns() -> None:
    """Item 8: a started producer garbage-collected without ``close()`` emits a
    ``ResourceWarning``; before the fix it was silent. (In a child process: pytest's log
    capture keeps tracebacks, and with them the producer, alive.)"""
    script = """
import asyncio, gc
from aioproducer import Producer
from tests.faults.fake_broker import FakeBroker

async def main():
    broker = await FakeBroker().start()
    p = Producer(bootstrap_servers=broker.bootstrap_servers)
    await p.start()
    await broker.close()

asyncio.run(main())
gc.collect()
print("done")
"""
    out = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert "done" in out.stdout, out.stderr
    assert "ResourceWarning: unclosed producer" in out.stderr, out.stderr
