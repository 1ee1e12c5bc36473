"""One benchmark run of one client, in its own process; prints one JSON line.

    python benchmarks/clients.py CLIENT --bootstrap HOST:PORT --topic T
        [--mode throughput|latency|bulk|awaited|handlers|callback|concurrent-latency] [--tasks N]
        [--records N] [--size B] [--acks all|1] [--compression none|lz4|zstd|gzip] [--keyed]
        [--idempotence default|on|off] [--batch-size 16384] [--linger-ms 5]
        [--topics N --chunk K] [--loop asyncio|uvloop]

Clients: aioproducer, aioproducer-trio (the same under trio), aiokafka, confluent (sync
Producer), confluent-aio (AIOProducer), kafka-python. Throughput (fire and forget) is measured
from the first send to the last acknowledgement; for asyncio clients a 1 ms ticker measures
the event loop's lag meanwhile. The other workloads (a service's: every record awaited,
request handlers, callbacks, send_and_wait from concurrent tasks) are in
``service_workloads.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from typing import Any

import service_workloads
from service_workloads import WORKLOADS, run_workload

#: The asyncio clients' send loops yield to the event loop every this many records, as a
#: service handling requests would; without it the ticker measures the benchmark's own tight
#: loop (an ``await`` that never suspends), not the client's internals.
YIELD_EVERY = service_workloads.YIELD_EVERY
#: How the send loops yield: asyncio.sleep, or trio.sleep for aioproducer-trio.
PAUSE: Any = asyncio.sleep
LagProbe = service_workloads.LagProbe
percentiles = service_workloads.percentiles


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


#: ``--mode bulk``: records per ``send_many`` call.
BULK = 1000


async def timed_bulk(p: Any, args: argparse.Namespace, value: bytes) -> dict[str, Any]:
    """``--mode bulk`` (aioproducer): the throughput run's records through ``send_many``, a
    thousand per call (keys as the throughput run's with ``--keyed``), then ``flush()``; the
    futures are kept, as a service would, and checked done at the end."""
    topic = args.topic
    await p.send(topic, value)
    await p.flush()
    keys = [b"%d" % (i % 10_000) for i in range(BULK)] if args.keyed else None
    futs: list[Any] = []
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, args.records, BULK):
        n = min(BULK, args.records - start)
        futs += await p.send_many(topic, [value] * n, None if keys is None else keys[:n])
    await p.flush()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(futs) == args.records and all(f.done() for f in futs)
    return {"seconds": elapsed, "us_per_record": round(cpu / args.records * 1e6, 3)}


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
        if args.mode in WORKLOADS:
            return await run_workload(service_workloads.aioproducer_adapter(p), args, value)
        if args.mode == "latency":
            return await latency(lambda: p.send_and_wait(args.topic, value), args.records)
        if args.mode == "bulk":
            return await timed_bulk(p, args, value)

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
        if args.mode in WORKLOADS:
            return await run_workload(service_workloads.aiokafka_adapter(p), args, value)
        if args.mode == "latency":
            return await latency(lambda: p.send_and_wait(args.topic, value), args.records)
        if args.mode == "bulk":
            return await timed_bulk(p, args, value)

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
    if args.mode in ("awaited", "callback"):
        return service_workloads.confluent_callback_run(p, args, value)
    if args.mode in WORKLOADS:
        raise SystemExit(f"confluent (sync Producer): no {args.mode} workload (no event loop)")
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

    # send_and_wait from concurrent tasks: AIOProducer hands its buffer to librdkafka at 1,000
    # records or after 1 s; one record at a time is what a latency-minded user would set.
    kw = {"batch_size": 1} if args.mode == "concurrent-latency" else {}
    p = AIOProducer(confluent_conf(args), **kw)
    try:
        await (await p.produce(args.topic, value))
        if args.mode in WORKLOADS:
            # AIOProducer serves delivery reports only when it is polled (it polls after
            # handing a buffer to librdkafka, and once a second): a service polls it
            # meanwhile, or every awaited record waits up to a second.
            async def poller() -> None:
                while True:
                    await p.poll(0.05)

            polling = asyncio.ensure_future(poller())
            try:
                return await run_workload(service_workloads.confluent_aio_adapter(p), args, value)
            finally:
                polling.cancel()
                await asyncio.gather(polling, return_exceptions=True)
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
    ap.add_argument(
        "--mode", choices=["throughput", "latency", "bulk", *WORKLOADS], default="throughput"
    )
    ap.add_argument("--tasks", type=int, default=1000, help="handlers, concurrent-latency")
    ap.add_argument(
        "--loop", choices=["asyncio", "uvloop"], default="asyncio", help="asyncio clients"
    )
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
        if args.loop == "uvloop":
            import uvloop

            out = uvloop.run(runner(args, value))
        else:
            out = asyncio.run(runner(args, value))
    else:
        out = runner(args, value)
    out["cpu_s"] = round(time.process_time() - cpu0, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if "seconds" in out:
        n = out.pop("records", args.records)
        out["records_per_s"] = round(n / out["seconds"])
        out["mb_per_s"] = round(n * args.size / out["seconds"] / 1e6, 2)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
