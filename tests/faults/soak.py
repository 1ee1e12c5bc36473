"""Soak: an idempotent producer writes keyed records to a real 3-node Kafka cluster while a
driver SIGKILLs and restarts random nodes; then every record is read back and the oracles O1
(no acknowledged record lost), O2 (order per partition), O3 (no duplicate) and O4 (every
future resolved) are checked.

    python -m tests.faults.soak --records 1000000 --cycles 20     # the full run (minutes)

The default test suite runs a short version (tests/faults/test_real_cluster.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from typing import Any

from aioproducer import KafkaError, Producer
from aioproducer.testing import KafkaCluster, read_topic

PARTITIONS = 6


async def _driver(
    cluster: KafkaCluster, cycles: int, interval: float, stop: asyncio.Event, log: list[str]
) -> int:
    done = 0
    rnd = random.Random(42)
    while done < cycles and not stop.is_set():
        await asyncio.sleep(interval)
        node = rnd.choice(cluster.nodes)
        t0 = time.monotonic()
        await asyncio.to_thread(node.kill)
        await asyncio.sleep(rnd.uniform(0.5, 2.0))
        await asyncio.to_thread(cluster.restart, node.node_id)
        done += 1
        log.append(
            f"cycle {done}: SIGKILL node {node.node_id}, back after {time.monotonic() - t0:.1f} s"
        )
    return done


async def run_soak(
    cluster: KafkaCluster,
    records: int,
    cycles: int,
    interval: float = 3.0,
    progress: bool = False,
    rate: float | None = None,
) -> dict[str, Any]:
    """``rate`` (records/s) spreads the sends over the fault cycles; by default over the
    expected time of all cycles (interval + ~7 s for a kill and restart each), so the faults
    hit a producer that is busy sending, not one that has already finished."""
    if rate is None:
        rate = records / max(1.0, cycles * (interval + 7.0))
    topic = f"soak-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(
        cluster.create_topic, topic, PARTITIONS, 3, {"min.insync.replicas": "2"}
    )
    stop = asyncio.Event()
    log: list[str] = []
    futures = []
    t0 = time.monotonic()
    async with Producer(
        bootstrap_servers=cluster.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=10_000,
        delivery_timeout_ms=120_000,
    ) as producer:
        driver = asyncio.create_task(_driver(cluster, cycles, interval, stop, log))
        for i in range(records):
            futures.append(await producer.send(topic, b"%010d" % i, key=b"key-%d" % (i % 5000)))
            if i % 1000 == 0:
                ahead = i / rate - (time.monotonic() - t0)
                await asyncio.sleep(max(0.0, ahead))  # pace; lets the driver run too
                if progress and i % 100_000 == 0:
                    print(f"  sent {i:,} ({time.monotonic() - t0:.0f} s)", flush=True)
        # Keep the faults coming until every cycle ran, then settle.
        cycles_done = await driver
        stop.set()
        await producer.flush()
    elapsed = time.monotonic() - t0
    unresolved = sum(1 for f in futures if not f.done())
    acked = {i for i, f in enumerate(futures) if f.done() and f.exception() is None}
    failed: dict[str, int] = {}
    for f in futures:
        if f.done() and f.exception() is not None:
            exc = f.exception()
            status = getattr(exc, "persisted_status", None)
            key = f"{type(exc).__name__}/{status.value if status else None}"
            failed[key] = failed.get(key, 0) + 1
            assert isinstance(exc, KafkaError)
    got = await asyncio.to_thread(read_topic, cluster.live_bootstrap_servers, topic, 300)
    seen: dict[int, int] = {}
    out_of_order = 0
    last: dict[int, int] = {}
    for r in got:
        assert r.value is not None
        i = int(r.value)
        seen[i] = seen.get(i, 0) + 1
        if i in acked:
            if last.get(r.partition, -1) > i:
                out_of_order += 1
            last[r.partition] = i
    return {
        "records": records,
        "cycles": cycles_done,
        "seconds": round(elapsed, 1),
        "acknowledged": len(acked),
        "failed": failed,
        "lost": sum(1 for i in acked if i not in seen),
        "duplicated": sum(1 for n in seen.values() if n > 1),
        "out_of_order": out_of_order,
        "unresolved": unresolved,
        "events": log,
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.faults.soak")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--interval", type=float, default=3.0)
    ap.add_argument(
        "--rate",
        type=float,
        default=None,
        help="records/s (default: spread the records over the expected time of the cycles)",
    )
    args = ap.parse_args()

    async def go() -> dict[str, Any]:
        with KafkaCluster(3) as cluster:
            return await run_soak(
                cluster, args.records, args.cycles, args.interval, progress=True, rate=args.rate
            )

    report = asyncio.run(go())
    print(json.dumps(report, indent=2))
    bad = report["lost"] or report["duplicated"] or report["out_of_order"] or report["unresolved"]
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
