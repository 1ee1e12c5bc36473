"""Transactional throughput, side by side: aioproducer, aiokafka and confluent-kafka.

    python benchmarks/transactions.py [--records 100000] [--per-txn 1000] [--size 100]
                                      [--rounds 3] [--bootstrap HOST:PORT]

Each client, in its own process, sends ``--records`` records of ``--size`` bytes to a fresh
3-partition topic in transactions of ``--per-txn`` records (begin, send, commit), with its
transactional producer's defaults otherwise (acks=all, idempotence; linger 5 ms for
aioproducer and confluent-kafka, aiokafka's 0). Rounds rotate the clients' order; the table
gives the median records/s of each and its ratio to aioproducer. Without ``--bootstrap`` a
Kafka node is started from the test harness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLIENTS = ["aioproducer", "aiokafka", "confluent"]


async def _aioproducer(bootstrap: str, topic: str, n: int, per: int, value: bytes) -> None:
    from aioproducer import Producer

    async with Producer(bootstrap_servers=bootstrap, transactional_id=uuid.uuid4().hex) as p:
        for start in range(0, n, per):
            async with p.transaction():
                for _ in range(min(per, n - start)):
                    await p.send(topic, value)


async def _aiokafka(bootstrap: str, topic: str, n: int, per: int, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=uuid.uuid4().hex)
    await p.start()
    try:
        for start in range(0, n, per):
            async with p.transaction():
                for _ in range(min(per, n - start)):
                    await p.send(topic, value)
    finally:
        await p.stop()


def _confluent(bootstrap: str, topic: str, n: int, per: int, value: bytes) -> None:
    from confluent_kafka import Producer

    p = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": uuid.uuid4().hex, "linger.ms": 5}
    )
    p.init_transactions(30)
    for start in range(0, n, per):
        p.begin_transaction()
        for _ in range(min(per, n - start)):
            while True:
                try:
                    p.produce(topic, value)
                    break
                except BufferError:
                    p.poll(0.001)
            p.poll(0)
        p.commit_transaction(60)


def child(client: str, bootstrap: str, topic: str, n: int, per: int, size: int) -> None:
    value = (bytes(range(256)) * (size // 256 + 1))[:size]
    t0 = time.perf_counter()
    if client == "confluent":
        _confluent(bootstrap, topic, n, per, value)
    else:
        run = _aioproducer if client == "aioproducer" else _aiokafka
        asyncio.run(run(bootstrap, topic, n, per, value))
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "records_per_s": round(n / seconds)}))


def measure(client: str, bootstrap: str, topic: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", client, "--bootstrap", bootstrap, "--topic", topic]
    cmd += ["--records", str(args.records), "--per-txn", str(args.per_txn)]
    cmd += ["--size", str(args.size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def table(results: dict[str, list[int]], args: argparse.Namespace) -> str:
    base = statistics.median(results["aioproducer"]) if results.get("aioproducer") else None
    lines = [
        f"Transactional throughput: {args.records:,} records of {args.size} B in transactions "
        f"of {args.per_txn:,}, median of {args.rounds} round(s)",
        "",
        "| client | records/s | ratio to aioproducer |",
        "|---|---:|---:|",
    ]
    for client, values in results.items():
        if not values:
            lines.append(f"| {client} | failed | |")
            continue
        med = statistics.median(values)
        ratio = f"{med / base:.2f}" if base else "-"
        lines.append(f"| {client} | {med:,.0f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--per-txn", type=int, default=1000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--bootstrap")
    ap.add_argument("--topic")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.bootstrap, args.topic, args.records, args.per_txn, args.size)
        return
    clients = args.clients.split(",")
    results: dict[str, list[int]] = {c: [] for c in clients}

    def rounds(bootstrap: str, create: Any) -> None:
        for r in range(args.rounds):
            order = clients[r % len(clients) :] + clients[: r % len(clients)]
            for client in order:
                topic = f"txn-bench-{uuid.uuid4().hex[:8]}"
                create(topic)
                out = measure(client, bootstrap, topic, args)
                print(f"round {r + 1} {client}: {out}", file=sys.stderr)
                if "records_per_s" in out:
                    results[client].append(out["records_per_s"])

    if args.bootstrap:
        from aioproducer.testing._admin import create_topic

        rounds(args.bootstrap, lambda t: create_topic(args.bootstrap, t, 3, 1))
    else:
        from aioproducer.testing import KafkaCluster

        with KafkaCluster(1) as k:
            rounds(k.bootstrap_servers, lambda t: k.create_topic(t, 3, 1))
    print(table(results, args))


if __name__ == "__main__":
    main()
