"""The producer inside anyio applications, on both of anyio's backends, against real Kafka.

On asyncio the producer runs on the running loop as always; under trio on the anyio-based
shell loop (``aioproducer/_io/anyio_loop.py``). The same tests run on both: produce and read
back with confluent-kafka, close, and cancellation through anyio cancel scopes — of an await
of a record, of a ``send()`` blocked on buffer memory, of ``close()`` itself, of a task group
that was sending.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from aioproducer import Producer, ProducerClosedError, RecordMetadata
from aioproducer.testing import KafkaCluster, read_topic
from tests.helpers import wait_until

BACKENDS = ["asyncio", "trio"]


def run(backend: str, main: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(main, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_produce_and_read_back(
    backend: str, kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka, partitions=3)
    sent = [(b"k%d" % (i % 7), b"v%d" % i) for i in range(3_000)]

    async def main() -> list[RecordMetadata]:
        async with Producer(
            bootstrap_servers=kafka.bootstrap_servers,
            max_block_ms=20_000,
            compression_type="zstd",
            batch_size=4_096,
        ) as p:
            assert await p.partitions_for(topic) == [0, 1, 2]
            handles = [await p.send(topic, v, key=k, headers=[("i", v)]) for k, v in sent]
            await p.flush()
            assert all(h.done() for h in handles)
            last = await p.send_and_wait(topic, b"last", key=b"k0")
            return [await h for h in handles] + [last]

    mds = run(backend, main)
    assert len(mds) == len(sent) + 1 and all(md.offset >= 0 for md in mds)
    assert len({(md.partition, md.offset) for md in mds}) == len(mds)
    got = read_topic(kafka.bootstrap_servers, topic)
    assert sorted((r.key, r.value, r.headers) for r in got) == sorted(
        [(k, v, (("i", v),)) for k, v in sent] + [(b"k0", b"last", ())]
    )
    # Offsets as the producer reported them are where the reader found the records.
    at = {(r.partition, r.offset): r.value for r in got}
    assert all(at[(md.partition, md.offset)] == v for md, (_, v) in zip(mds, sent, strict=False))


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_delivers_lingering_records_then_refuses(
    backend: str, kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka)

    async def main() -> None:
        p = Producer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=60_000)
        await p.start()
        handles = [await p.send(topic, b"r%d" % i) for i in range(500)]
        assert not any(h.done() for h in handles)  # lingering for a minute
        with anyio.fail_after(30):
            await p.close()
        assert all(h.done() and h.exception() is None for h in handles)
        assert p._sender is not None and not p._sender.connections
        with pytest.raises(ProducerClosedError):
            await p.send(topic, b"late")
        await p.close()  # again: nothing to do

    run(backend, main)
    values = [r.value for r in read_topic(kafka.bootstrap_servers, topic)]
    assert sorted(v or b"" for v in values) == sorted(b"r%d" % i for i in range(500))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cancel_scope_around_an_await_leaves_the_record_to_be_delivered(
    backend: str, kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka)

    async def main() -> None:
        async with Producer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=60_000) as p:
            handle = await p.send(topic, b"lingering")
            with anyio.move_on_after(0.05) as scope:
                await handle  # lingers for a minute: the scope's deadline cancels this wait
            assert scope.cancelled_caught and not handle.done()
            with anyio.CancelScope() as scope:
                scope.cancel()
                await handle  # cancelled before it waits
            assert scope.cancelled_caught
            await p.flush()
            md = await handle
            assert md.offset == 0

    run(backend, main)
    assert [r.value for r in read_topic(kafka.bootstrap_servers, topic)] == [b"lingering"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_send_blocked_on_memory_cancelled_gives_its_place_back(
    backend: str, kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka)

    async def main() -> None:
        async with Producer(
            bootstrap_servers=kafka.bootstrap_servers, buffer_memory=65_536, max_block_ms=30_000
        ) as p:
            pool = p._pool
            # Hold the whole buffer, as batches stuck in flight would: the next send waits.
            held = pool.available
            assert pool.try_allocate(held)

            async def blocked() -> None:
                await p.send(topic, b"never")

            async with anyio.create_task_group() as group:
                group.start_soon(blocked)
                await wait_until(lambda: pool.queued == 1, "the send to wait for memory")
                group.cancel_scope.cancel()
            assert pool.queued == 0  # withdrawn, not left to be granted to nobody
            pool.release(held)
            md = await p.send_and_wait(topic, b"after")
            assert md.offset == 0
            # Every byte back: the cancelled wait neither kept a grant nor its place.
            await wait_until(lambda: pool.available == 65_536, "the buffer to be free again")

    run(backend, main)
    assert [r.value for r in read_topic(kafka.bootstrap_servers, topic)] == [b"after"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_cancelled_by_its_scope_still_resolves_every_record(
    backend: str, kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka)

    async def main() -> None:
        p = Producer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=60_000)
        await p.start()
        handles = [await p.send(topic, b"r%d" % i) for i in range(200)]
        with anyio.CancelScope() as scope:
            scope.cancel()
            await p.close()
        assert scope.cancelled_caught
        # Cancelled, close still finished: every record resolved (delivered, or failed as
        # not delivered), every socket closed, no task left behind.
        assert all(h.done() for h in handles)
        for h in handles:
            exc = h.exception()
            assert exc is None or isinstance(exc, ProducerClosedError), repr(exc)
        assert p._task is not None and p._task.done()
        assert p._sender is not None and not p._sender.connections
        assert not p._sender.pool.connecting

    run(backend, main)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cancelled_task_group_of_senders_leaves_the_producer_working(
    backend: str, kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka, partitions=2)
    acked: list[RecordMetadata] = []

    async def main() -> None:
        async with Producer(bootstrap_servers=kafka.bootstrap_servers) as p:

            async def send_forever(worker: int) -> None:
                i = 0
                while True:
                    md = await p.send_and_wait(topic, b"w%d-%d" % (worker, i))
                    acked.append(md)
                    i += 1

            async with anyio.create_task_group() as group:
                for w in range(4):
                    group.start_soon(send_forever, w)
                await wait_until(lambda: len(acked) >= 100, "100 acknowledgements", timeout=60)
                group.cancel_scope.cancel()
            md = await p.send_and_wait(topic, b"after")
            assert md.offset >= 0

    run(backend, main)
    got = {(r.partition, r.offset): r.value for r in read_topic(kafka.bootstrap_servers, topic)}
    assert b"after" in got.values()
    # Every acknowledged record is in Kafka where its metadata says (cancelled waits may
    # have sent more).
    assert all((md.partition, md.offset) in got for md in acked)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_start_cancelled_by_its_scope_leaves_nothing_running(backend: str) -> None:
    async def main() -> Producer:
        p = Producer(bootstrap_servers="127.0.0.1:9", max_block_ms=60_000)
        with anyio.move_on_after(0.3) as scope:
            await p.start()  # nobody listens there: retries until the scope's deadline
        assert scope.cancelled_caught
        assert p._task is not None and p._task.done()
        assert p._sender is not None and not p._sender.pool.connecting
        with pytest.raises(ProducerClosedError):
            await p.send("t", b"v")
        return p

    producer = run(backend, main)
    del producer  # closed: no "unclosed producer" ResourceWarning (warnings are errors here)
    gc.collect()
