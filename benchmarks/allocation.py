"""Buffer memory by allocation strategy, side by side: "full" against "incremental".

    python benchmarks/allocation.py [--records 20000] [--partitions 64] [--size 200]
                                    [--batch-size 1048576] [--rounds 3] [--bootstrap HOST:PORT]

The case incremental allocation is for (Java 4.4's ``buffer.memory.allocation.strategy``): a
large ``batch_size`` and keyed records spread over many partitions, so that each partition's
batch holds far less than ``batch_size`` when it is sent. Each strategy, in its own process,
sends ``--records`` keyed records of ``--size`` bytes over ``--partitions`` partitions with
``linger_ms=50`` and awaits every one. Reported per strategy (medians of the rotated rounds):
records/s, the most buffer memory the pool had handed out (sampled every 100 records), the
time senders waited for memory, and the process's peak RSS; then incremental's ratios to
full. Without ``--bootstrap`` a Kafka node is started from the test harness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STRATEGIES = ["full", "incremental"]


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from aioproducer import Producer
    from aioproducer.metrics import value_of

    value = b"v" * args.size
    keys = [b"key-%d" % i for i in range(args.partitions * 4)]
    peak = 0
    async with Producer(
        bootstrap_servers=args.bootstrap,
        batch_size=args.batch_size,
        linger_ms=50,
        buffer_memory_allocation_strategy=args.child,
    ) as p:
        await p.send_and_wait(args.topic, b"warm-up")
        t0 = time.perf_counter()
        futs = []
        for i in range(args.records):
            futs.append(await p.send(args.topic, value, key=keys[i % len(keys)]))
            if i % 100 == 0:
                peak = max(peak, p._pool.used)
        for f in futs:
            await f
        elapsed = time.perf_counter() - t0
        waited_ns = value_of(p.metrics(), "bufferpool-wait-time-ns-total")
    return {
        "records_per_s": args.records / elapsed,
        "pool_peak_mib": peak / 2**20,
        "wait_ms": waited_ns / 1e6,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(args: argparse.Namespace) -> None:
    print(json.dumps(asyncio.run(_run(args))))


def _once(args: argparse.Namespace, strategy: str) -> dict[str, Any]:
    from aioproducer.testing import create_topic

    topic = f"alloc-{uuid.uuid4().hex[:8]}"
    create_topic(args.bootstrap, topic, args.partitions)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        strategy,
        "--bootstrap",
        args.bootstrap,
        "--topic",
        topic,
        "--records",
        str(args.records),
        "--partitions",
        str(args.partitions),
        "--size",
        str(args.size),
        "--batch-size",
        str(args.batch_size),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{strategy}: run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _table(args: argparse.Namespace) -> None:
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in STRATEGIES}
    for r in range(args.rounds):
        order = STRATEGIES[r % 2 :] + STRATEGIES[: r % 2]
        for s in order:
            runs[s].append(_once(args, s))
    med = {s: {k: statistics.median(x[k] for x in runs[s]) for k in runs[s][0]} for s in runs}
    print(
        f"\n{args.records} keyed records of {args.size} B over {args.partitions} partitions, "
        f"batch_size={args.batch_size}, linger_ms=50; medians of {args.rounds} rounds\n"
    )
    print("| strategy | records/s | pool peak (MiB) | waited for memory (ms) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for s in STRATEGIES:
        m = med[s]
        print(
            f"| {s} | {m['records_per_s']:,.0f} | {m['pool_peak_mib']:.1f} | "
            f"{m['wait_ms']:.0f} | {m['peak_rss_mib']:.0f} |"
        )
    f, i = med["full"], med["incremental"]
    print(
        f"| incremental / full | {i['records_per_s'] / f['records_per_s']:.2f}x | "
        f"{i['pool_peak_mib'] / max(f['pool_peak_mib'], 1e-9):.2f}x | | "
        f"{i['peak_rss_mib'] / f['peak_rss_mib']:.2f}x |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", choices=STRATEGIES, help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap")
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--partitions", type=int, default=64)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=1 << 20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    sys.path.insert(0, str(HERE.parent))
    if args.bootstrap:
        _table(args)
        return
    from aioproducer.testing import KafkaCluster

    with KafkaCluster(1) as broker:
        args.bootstrap = broker.bootstrap_servers
        _table(args)


if __name__ == "__main__":
    main()
