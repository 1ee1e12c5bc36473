"""``aioproducer demo`` (also ``python -m aioproducer demo``, ``make demo``):

    aioproducer demo [--broker tansu|kafka] [--bootstrap-servers HOST:PORT]
                     [--records 200000] [--partitions 6] [--compression lz4]

The demo starts an embedded broker (Tansu by default; ``--broker kafka`` for a real Apache
Kafka node from the test harness) unless ``--bootstrap-servers`` names an existing cluster,
produces keyed records with headers across partitions with a progress bar, reads everything
back with an independent reader (confluent-kafka) and prints the throughput and
``verified N/N`` — or the first mismatches.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

from .. import Producer
from .._core.murmur2 import murmur2
from .._records import record_batch
from ..config import CompressionType
from ._progress import Progress


@contextlib.contextmanager
def _broker(kind: str, bootstrap: str | None) -> Iterator[tuple[str, Any]]:
    if bootstrap:
        yield bootstrap, None
        return
    from ..testing import KafkaCluster, TansuBroker

    broker: Any = KafkaCluster(1) if kind == "kafka" else TansuBroker()
    t0 = time.perf_counter()
    with broker:
        print(f"started {kind} at {broker.bootstrap_servers} in {time.perf_counter() - t0:.2f} s")
        yield broker.bootstrap_servers, broker


def _record(i: int) -> tuple[bytes, bytes, list[tuple[str, bytes | None]]]:
    key = b"user-%d" % (i % 10_000)
    value = b"event-%09d:" % i + b"x" * 80
    return key, value, [("seq", b"%d" % i), ("source", b"aioproducer-demo")]


async def _produce(
    bootstrap: str, topic: str, n: int, compression: CompressionType | None, progress: str
) -> float:
    started = time.perf_counter()
    step = max(1, n // 1000)
    bar = Progress(n, "records", mode=progress)
    async with Producer(
        bootstrap_servers=bootstrap, linger_ms=5, compression_type=compression
    ) as producer:
        last = None
        for i in range(n):
            key, value, headers = _record(i)
            last = await producer.send(topic, value, key=key, headers=headers)
            if i % step == 0:
                bar.update(i)
        await producer.flush()
        if last is not None:
            await last
    elapsed = time.perf_counter() - started
    bar.update(n)
    bar.close()
    return elapsed


def _verify(bootstrap: str, topic: str, n: int, partitions: int) -> list[str]:
    from ..testing import read_topic

    records = read_topic(bootstrap, topic, timeout=120, expected=n)
    problems: list[str] = []
    if len(records) != n:
        problems.append(f"read {len(records)} records, expected {n}")
    last_seq: dict[int, int] = {}
    seen: set[int] = set()
    for r in records:
        seq = int(dict(r.headers).get("seq") or -1)
        key, value, headers = _record(seq)
        want_partition = (murmur2(key) & 0x7FFFFFFF) % partitions
        if (r.key, r.value, list(r.headers)) != (key, value, headers):
            problems.append(f"record seq={seq} at {r.partition}/{r.offset} differs")
        elif r.partition != want_partition:
            problems.append(
                f"key {key!r} in partition {r.partition}, Java's murmur2 says {want_partition}"
            )
        elif last_seq.get(r.partition, -1) >= seq:
            problems.append(f"partition {r.partition} out of order at offset {r.offset}")
        if seq in seen:
            problems.append(f"record seq={seq} duplicated")
        seen.add(seq)
        last_seq[r.partition] = seq
        if len(problems) >= 10:
            break
    return problems


def run(args: argparse.Namespace) -> int:
    from ..testing import create_topic

    with _broker(args.broker, args.bootstrap_servers) as (bootstrap, _):
        topic = f"aioproducer-demo-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic, args.partitions, 1)
        print(
            f"producing {args.records:,} keyed records with headers to {topic!r} "
            f"({args.partitions} partitions, compression={args.compression or 'none'}, "
            f"record buffer: {record_batch.IMPLEMENTATION})"
        )
        compression = None if args.compression == "none" else args.compression
        elapsed = asyncio.run(_produce(bootstrap, topic, args.records, compression, args.progress))
        print(
            f"produced {args.records:,} records in {elapsed:.2f} s: "
            f"{args.records / elapsed:,.0f} records/s"
        )
        problems = _verify(bootstrap, topic, args.records, args.partitions)
        if problems:
            print("MISMATCH:\n  " + "\n  ".join(problems))
            return 1
        print(f"verified {args.records}/{args.records}")
        return 0


def add_parser(sub: Any) -> None:
    d = sub.add_parser(
        "demo",
        help="produce to an embedded broker and verify every record",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--broker", choices=["tansu", "kafka"], default="tansu")
    d.add_argument("--bootstrap-servers", default=None)
    d.add_argument("--records", type=int, default=200_000)
    d.add_argument("--partitions", type=int, default=6)
    d.add_argument("--compression", choices=["none", "gzip", "snappy", "lz4", "zstd"], default=None)
    d.add_argument(
        "--progress",
        choices=["auto", "bar", "lines", "none"],
        default="auto",
        help="a bar on a terminal, a line every 5 s otherwise (auto)",
    )
    d.set_defaults(run=run)
