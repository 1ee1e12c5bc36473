"""Producer throughput, aioproducer beside aiokafka, same broker, same workload, same run.

    python benchmarks/bench_producer.py [--broker kafka|tansu] [--records 200000] [--size 100]
                                        [--bootstrap-servers HOST:PORT] [--rounds 2]

Each client sends ``--records`` keyed records of ``--size`` bytes to a fresh 6-partition topic
(acks=all, linger 5 ms, batch 16 KiB), awaiting ``send`` per record, then flushes. Rounds
alternate the clients so neither always runs on a warmer broker. Prints a markdown table with
records/s and the ratio aioproducer / aiokafka.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any


async def run_aioproducer(bootstrap: str, topic: str, n: int, value: bytes) -> float:
    from aioproducer import Producer

    async with Producer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=16384) as p:
        await p.send_and_wait(topic, value)  # connected, metadata known
        t0 = time.perf_counter()
        for i in range(n):
            await p.send(topic, value, key=b"%d" % (i % 10_000))
        await p.flush()
        return n / (time.perf_counter() - t0)


async def run_aiokafka(bootstrap: str, topic: str, n: int, value: bytes) -> float:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        max_batch_size=16384,
        acks="all",
        enable_idempotence=False,
    )
    await p.start()
    try:
        await p.send_and_wait(topic, value)
        t0 = time.perf_counter()
        for i in range(n):
            await p.send(topic, value, key=b"%d" % (i % 10_000))
        await p.flush()
        return n / (time.perf_counter() - t0)
    finally:
        await p.stop()


@contextlib.contextmanager
def broker(kind: str, bootstrap: str | None) -> Iterator[Any]:
    from aioproducer.testing import KafkaCluster, TansuBroker

    if bootstrap:

        class External:
            bootstrap_servers = bootstrap

            def create_topic(self, name: str, partitions: int) -> None:
                from aioproducer.testing import create_topic

                create_topic(bootstrap, name, partitions)

        yield External()
        return
    b: Any = KafkaCluster(1) if kind == "kafka" else TansuBroker()
    with b:
        yield b


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", choices=["kafka", "tansu"], default="kafka")
    ap.add_argument("--bootstrap-servers")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    value = b"x" * args.size
    clients = {"aioproducer": run_aioproducer, "aiokafka": run_aiokafka}
    results: dict[str, list[float]] = {c: [] for c in clients}
    with broker(args.broker, args.bootstrap_servers) as b:
        for r in range(args.rounds):
            order = list(clients) if r % 2 == 0 else list(reversed(clients))
            for name in order:
                topic = f"bench-{name}-{uuid.uuid4().hex[:6]}"
                b.create_topic(topic, 6)
                rate = asyncio.run(clients[name](b.bootstrap_servers, topic, args.records, value))
                results[name].append(rate)
    ours = statistics.median(results["aioproducer"])
    peer = statistics.median(results["aiokafka"])
    print(
        f"\n{args.records:,} records of {args.size} B, broker={args.broker}, "
        f"median of {args.rounds} rounds\n"
    )
    print("| client | records/s | ratio to aiokafka |")
    print("|---|---:|---:|")
    print(f"| aioproducer | {ours:,.0f} | {ours / peer:.2f}x |")
    print(f"| aiokafka | {peer:,.0f} | 1.00x |")


if __name__ == "__main__":
    main()
