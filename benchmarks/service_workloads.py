"""The workloads of a service, which awaits its records (issue 17), for ``clients.py``.

Each asyncio client is wrapped in an adapter with the same four operations, and each
workload is one function over an adapter:

* ``awaited``: every record's future kept and awaited, first send to last future read (the
  futures are read after the last send, as a service that gathers them would);
* ``handlers``: ``--tasks`` concurrent tasks (request handlers), each awaiting every record it
  sends before the next, with the event loop's lag;
* ``callback``: a callback per record (``send(callback=)``; for the peers without one, the
  future's ``add_done_callback``), ended when the last callback has run;
* ``concurrent-latency``: ``--tasks`` tasks each calling ``send_and_wait`` in turn: p50/p99
  of one call, and records/s.

confluent-kafka's synchronous ``Producer`` takes part in ``awaited`` and ``callback`` with a
delivery callback per record (its way of reading each record's outcome).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: Send loops yield to the event loop every this many records (see clients.py).
YIELD_EVERY = 100


class Adapter:
    """One asyncio client: ``send`` returns (after its await) an awaitable of the record's
    metadata; ``send_cb`` calls ``cb(offset)`` per record; ``send_and_wait``; ``close``."""

    def __init__(
        self,
        send: Callable[[str, bytes], Awaitable[Any]],
        send_cb: Callable[[str, bytes, Callable[[int], None]], Awaitable[Any]],
        send_and_wait: Callable[[str, bytes], Awaitable[Any]],
        offset: Callable[[Any], int],
    ) -> None:
        self.send = send
        self.send_cb = send_cb
        self.send_and_wait = send_and_wait
        self.offset = offset


class LagProbe:
    """Overshoot of a 1 ms ticker: how long the event loop was kept from running it."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.001)
            self.samples.append(max(0.0, loop.time() - t - 0.001) * 1000)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> dict[str, float]:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        s = sorted(self.samples) or [0.0]
        return {
            "lag_p99_ms": round(s[int(len(s) * 0.99) - 1 if len(s) > 1 else 0], 2),
            "lag_max_ms": round(s[-1], 2),
        }


async def run_workload(a: Adapter, args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    return await WORKLOADS[args.mode](a, args, value)


async def awaited(a: Adapter, args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    topic, n = args.topic, args.records
    probe = LagProbe()
    probe.start()
    t0, c0 = time.perf_counter(), time.process_time()
    futs = []
    for i in range(n):
        futs.append(await a.send(topic, value))
        if i % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    last = -1
    for f in futs:
        last = a.offset(await f)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert last >= 0
    return {"seconds": elapsed, "us_per_record": round(cpu / n * 1e6, 3), **await probe.stop()}


async def handlers(a: Adapter, args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    topic, tasks = args.topic, args.tasks
    each = args.records // tasks
    offsets: list[int] = []

    async def handler() -> None:
        last = -1
        for _ in range(each):
            last = a.offset(await (await a.send(topic, value)))
        offsets.append(last)

    probe = LagProbe()
    probe.start()
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(handler() for _ in range(tasks)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(offsets) == tasks and min(offsets) >= 0
    n = each * tasks
    return {
        "seconds": elapsed,
        "records": n,
        "us_per_record": round(cpu / n * 1e6, 3),
        **await probe.stop(),
    }


async def callback(a: Adapter, args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    topic, n = args.topic, args.records
    left = [n]
    done = asyncio.get_running_loop().create_future()

    def cb(offset: int) -> None:
        assert offset >= 0
        left[0] -= 1
        if left[0] == 0:
            done.set_result(None)

    probe = LagProbe()
    probe.start()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        await a.send_cb(topic, value, cb)
        if i % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    await done
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": elapsed, "us_per_record": round(cpu / n * 1e6, 3), **await probe.stop()}


async def concurrent_latency(a: Adapter, args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    topic, tasks = args.topic, args.tasks
    each = args.records // tasks
    samples: list[float] = []

    async def caller() -> None:
        for _ in range(each):
            t = time.perf_counter()
            a.offset(await a.send_and_wait(topic, value))
            samples.append((time.perf_counter() - t) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(tasks)))
    elapsed = time.perf_counter() - t0
    return {**percentiles(samples), "records": len(samples), "seconds": elapsed}


def percentiles(samples: list[float]) -> dict[str, Any]:
    s = sorted(samples)
    return {"p50_ms": round(statistics.median(s), 3), "p99_ms": round(s[int(len(s) * 0.99) - 1], 3)}


WORKLOADS: dict[str, Callable[[Adapter, argparse.Namespace, bytes], Awaitable[dict[str, Any]]]] = {
    "awaited": awaited,
    "handlers": handlers,
    "callback": callback,
    "concurrent-latency": concurrent_latency,
}


# -- the clients -------------------------------------------------------------------------------


def aioproducer_adapter(p: Any) -> Adapter:
    async def send_cb(topic: str, value: bytes, cb: Callable[[int], None]) -> Any:
        return await p.send(topic, value, callback=lambda md, exc: cb(md.offset))

    return Adapter(
        lambda topic, value: p.send(topic, value),
        send_cb,
        lambda topic, value: p.send_and_wait(topic, value),
        lambda md: md.offset,
    )


def aiokafka_adapter(p: Any) -> Adapter:
    async def send_cb(topic: str, value: bytes, cb: Callable[[int], None]) -> Any:
        fut = await p.send(topic, value)
        fut.add_done_callback(lambda f: cb(f.result().offset))
        return fut

    return Adapter(
        lambda topic, value: p.send(topic, value),
        send_cb,
        lambda topic, value: p.send_and_wait(topic, value),
        lambda md: md.offset,
    )


def confluent_aio_adapter(p: Any) -> Adapter:
    """AIOProducer's future resolves to the delivered ``Message``."""

    async def send_cb(topic: str, value: bytes, cb: Callable[[int], None]) -> Any:
        fut = await p.produce(topic, value)
        fut.add_done_callback(lambda f: cb(f.result().offset()))
        return fut

    async def send_and_wait(topic: str, value: bytes) -> Any:
        return await (await p.produce(topic, value))

    return Adapter(
        lambda topic, value: p.produce(topic, value),
        send_cb,
        send_and_wait,
        lambda msg: msg.offset(),
    )


def confluent_callback_run(p: Any, args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    """confluent-kafka's ``Producer`` with a delivery callback per record reading its offset
    (``awaited`` and ``callback`` alike: it has no futures)."""
    n = args.records
    left = [n]

    def on_delivery(err: Any, msg: Any) -> None:
        assert err is None and msg.offset() >= 0
        left[0] -= 1

    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        while True:
            try:
                p.produce(args.topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.001)
        if i % 1000 == 0:
            p.poll(0)
    while left[0]:
        p.poll(0.1)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": elapsed, "us_per_record": round(cpu / n * 1e6, 3)}
