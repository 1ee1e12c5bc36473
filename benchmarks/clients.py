"""One benchmark run of one client, in its own process; prints one JSON line.

    python benchmarks/clients.py CLIENT --bootstrap HOST:PORT --topic T --mode throughput|latency
        [--records N] [--size B] [--acks all|1] [--compression none|lz4|zstd|gzip] [--keyed]
        [--idempotence default|on|off] [--batch-size 16384] [--linger-ms 5]
        [--topics N --chunk K]

Clients: aioproducer, aioproducer-trio (the same under trio), aiokafka, confluent (sync
Producer), confluent-aio (AIOProducer), kafka-python. Throughput is measured from the first
send to the last acknowledgement; for asyncio clients a 1 ms ticker measures the event loop's
lag meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from typing import Any

#: The asyncio clients' send loops yield to the event loop every this many records, as a
#: service handling requests would; without it the ticker measures the benchmark's own tight
#: loop (an ``await`` that never suspends), not the client's internals.
YIELD_EVERY = 100
#: How the send loops yield: asyncio.sleep, or trio.sleep for aioproducer-trio.
PAUSE: Any = asyncio.sleep


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


def idem(args: argparse.Namespace) -> bool | None:
    return {"default": None, "on": True, "off": False}[args.idempotence]


def topics_of(args: argparse.Namespace) -> list[str]:
    """``--topics N`` (scaling runs): the topics ``T-0`` .. ``T-(N-1)``; else just ``T``."""
    return [args.topic] if args.topics == 1 else [f"{args.topic}-{j}" for j in range(args.topics)]


async def timed_async_loop(
    send: Any, flush: Any, args: argparse.Namespace, value: bytes
) -> dict[str, Any]:
    """The throughput run of an asyncio client: ``await send(topic, value, key)`` per record,
    then ``await flush()``; with the loop's lag, and its CPU time per record.

    With many topics, a run of ``--chunk`` records goes to one topic before the next, so every
    topic's batches fill the same way whatever the topic count, and the per-record cost
    compares the client's per-topic bookkeeping, not emptier batches.
    """
    topics = topics_of(args)
    for t in topics:  # warm-up: metadata of every topic, connections
        await send(t, value, None)
    await flush()
    # The probe costs ~0.03 CPU s per second of run: 2 us a record at a broker-bound 16k rec/s
    # (1,000 partitions), so the scaling runs, which report no lag, go without it.
    probe = LagProbe() if args.lag_probe else None
    if probe is not None:
        probe.start()
    chunk = args.chunk
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(args.records):
        await send(
            topics[(i // chunk) % len(topics)], value, b"%d" % (i % 10_000) if args.keyed else None
        )
        if i % YIELD_EVERY == 0:
            await PAUSE(0)
    await flush()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "seconds": elapsed,
        "us_per_record": round(cpu / args.records * 1e6, 3),
        **(await probe.stop() if probe is not None else {}),
    }


async def aioproducer_run(args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    from aioproducer import Producer

    kw: dict[str, Any] = dict(
        bootstrap_servers=args.bootstrap,
        acks=args.acks,
        linger_ms=args.linger_ms,
        batch_size=args.batch_size,
        compression_type=None if args.compression == "none" else args.compression,
    )
    if idem(args) is not None:
        kw["enable_idempotence"] = idem(args)
    kw.update(args.security.get("aioproducer", {}))
    async with Producer(**kw) as p:
        await p.send_and_wait(topics_of(args)[0], value)
        if args.mode == "latency":
            return await latency(lambda: p.send_and_wait(args.topic, value), args.records)

        def send(topic: str, v: bytes, key: bytes | None) -> Any:
            return p.send(topic, v, key=key)  # the coroutine itself: no extra await layer

        return await timed_async_loop(send, p.flush, args, value)


def aioproducer_trio_run(args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    """aioproducer under trio (its anyio-based shell loop): the same send loop as
    ``aioproducer``; no lag probe (it is an asyncio task)."""
    import trio

    global PAUSE
    PAUSE = trio.sleep
    args.lag_probe = False
    return trio.run(aioproducer_run, args, value)  # type: ignore[no-any-return]


async def aiokafka_run(args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer

    acks: Any = "all" if args.acks == "all" else int(args.acks)
    p = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks=acks,
        linger_ms=args.linger_ms,
        max_batch_size=args.batch_size,
        compression_type=None if args.compression == "none" else args.compression,
        enable_idempotence=bool(idem(args)),
    )
    await p.start()
    try:
        await p.send_and_wait(topics_of(args)[0], value)
        if args.mode == "latency":
            return await latency(lambda: p.send_and_wait(args.topic, value), args.records)

        def send(topic: str, v: bytes, key: bytes | None) -> Any:
            return p.send(topic, v, key=key)  # the coroutine itself: no extra await layer

        return await timed_async_loop(send, p.flush, args, value)
    finally:
        await p.stop()


def confluent_conf(args: argparse.Namespace) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "linger.ms": args.linger_ms,
        "batch.size": args.batch_size,
        "compression.type": args.compression,
        "broker.address.family": "v4",
    }
    if idem(args) is not None:
        conf["enable.idempotence"] = idem(args)
    conf.update(args.security.get("librdkafka", {}))
    return conf


def confluent_run(args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    from confluent_kafka import Producer

    p = Producer(confluent_conf(args))
    p.produce(args.topic, value)
    p.flush(30)
    if args.mode == "latency":
        samples = []
        for _ in range(args.records):
            t = time.perf_counter()
            p.produce(args.topic, value)
            p.flush(30)
            samples.append((time.perf_counter() - t) * 1000)
        return percentiles(samples)
    t0 = time.perf_counter()
    for i in range(args.records):
        while True:
            try:
                p.produce(args.topic, value, key=b"%d" % (i % 10_000) if args.keyed else None)
                break
            except BufferError:
                p.poll(0.001)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    return {"seconds": time.perf_counter() - t0}


async def confluent_aio_run(args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    from confluent_kafka.aio import AIOProducer

    p = AIOProducer(confluent_conf(args))
    try:
        await (await p.produce(args.topic, value))
        if args.mode == "latency":

            async def one() -> None:
                fut = await p.produce(args.topic, value)
                await p.flush()
                await fut

            return await latency(one, args.records)
        probe = LagProbe()
        probe.start()
        t0 = time.perf_counter()
        futs = []
        for i in range(args.records):
            futs.append(
                await p.produce(args.topic, value, key=b"%d" % (i % 10_000) if args.keyed else None)
            )
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        await p.flush()
        await asyncio.gather(*futs)
        elapsed = time.perf_counter() - t0
        return {"seconds": elapsed, **await probe.stop()}
    finally:
        await p.close()


def kafka_python_run(args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    from kafka import KafkaProducer

    acks: Any = "all" if args.acks == "all" else int(args.acks)
    kw: dict[str, Any] = dict(
        bootstrap_servers=args.bootstrap,
        acks=acks,
        linger_ms=args.linger_ms,
        batch_size=args.batch_size,
        compression_type=None if args.compression == "none" else args.compression,
    )
    if idem(args) is not None:
        kw["enable_idempotence"] = idem(args)
    p = KafkaProducer(**kw)
    p.send(args.topic, value).get(30)
    if args.mode == "latency":
        samples = []
        for _ in range(args.records):
            t = time.perf_counter()
            p.send(args.topic, value).get(30)
            samples.append((time.perf_counter() - t) * 1000)
        p.close()
        return percentiles(samples)
    t0 = time.perf_counter()
    for i in range(args.records):
        p.send(args.topic, value, key=b"%d" % (i % 10_000) if args.keyed else None)
    p.flush()
    elapsed = time.perf_counter() - t0
    p.close()
    return {"seconds": elapsed}


async def latency(one: Any, n: int) -> dict[str, Any]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await one()
        samples.append((time.perf_counter() - t) * 1000)
    return percentiles(samples)


def percentiles(samples: list[float]) -> dict[str, Any]:
    s = sorted(samples)
    return {"p50_ms": round(statistics.median(s), 3), "p99_ms": round(s[int(len(s) * 0.99) - 1], 3)}


RUNNERS = {
    "aioproducer": aioproducer_run,
    "aioproducer-trio": aioproducer_trio_run,
    "aiokafka": aiokafka_run,
    "confluent": confluent_run,
    "confluent-aio": confluent_aio_run,
    "kafka-python": kafka_python_run,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("client", choices=sorted(RUNNERS))
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--mode", choices=["throughput", "latency"], default="throughput")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument(
        "--no-lag-probe",
        dest="lag_probe",
        action="store_false",
        help="asyncio clients: no 1 ms ticker measuring the loop's lag",
    )
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--acks", default="all")
    ap.add_argument("--compression", default="none")
    ap.add_argument("--keyed", action="store_true")
    ap.add_argument("--idempotence", choices=["default", "on", "off"], default="default")
    ap.add_argument("--batch-size", type=int, default=16384)
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--topics", type=int, default=1, help="scaling runs: send to N topics")
    ap.add_argument(
        "--chunk", type=int, default=1, help="with --topics: consecutive records per topic"
    )
    ap.add_argument(
        "--security",
        type=json.loads,
        default={},
        help='JSON {"aioproducer": {settings}, "librdkafka": {settings}} (bench_security.py)',
    )
    args = ap.parse_args()
    value = (bytes(range(256)) * (args.size // 256 + 1))[: args.size]
    runner = RUNNERS[args.client]
    cpu0 = time.process_time()
    if asyncio.iscoroutinefunction(runner):
        out = asyncio.run(runner(args, value))
    else:
        out = runner(args, value)
    out["cpu_s"] = round(time.process_time() - cpu0, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if "seconds" in out:
        out["records_per_s"] = round(args.records / out["seconds"])
        out["mb_per_s"] = round(args.records * args.size / out["seconds"] / 1e6, 2)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
