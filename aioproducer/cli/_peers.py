"""``perf --compare``: the same workload with aiokafka and confluent-kafka, when installed."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

from ..config import ProducerConfig
from .perf import Stats, _throttle

Payload = Callable[[int], bytes]
PEERS = ("aiokafka", "confluent")
_DISTRIBUTIONS = {"aiokafka": "aiokafka", "confluent": "confluent-kafka"}


def _config(settings: dict[str, Any]) -> tuple[ProducerConfig, str]:
    """The settings the peers share, as aioproducer reads them (its defaults where unset),
    and the bootstrap servers as one string."""
    cfg = ProducerConfig(**settings)
    servers = cfg.bootstrap_servers
    return cfg, servers if isinstance(servers, str) else ",".join(servers)


async def _aiokafka(args: argparse.Namespace, settings: dict[str, Any], payload: Payload) -> Stats:
    from aiokafka import AIOKafkaProducer

    cfg, bootstrap = _config(settings)
    kwargs: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all" if cfg.acks_value == -1 else cfg.acks_value,
        "linger_ms": cfg.linger_ms,
        "max_batch_size": cfg.batch_size,
        "compression_type": cfg.compression_type,
        "max_request_size": cfg.max_request_size,
    }
    if settings.get("enable_idempotence"):
        kwargs["enable_idempotence"] = True
    stats = Stats(args.num_records)
    producer = AIOKafkaProducer(**kwargs)
    await producer.start()
    try:
        stats.start = started = time.perf_counter()
        for i in range(args.num_records):
            value = payload(i)
            fut = await producer.send(args.topic, value)
            sent_at, n = time.perf_counter(), len(value)
            fut.add_done_callback(
                lambda f, t=sent_at, n=n: stats.completed(
                    t, n, None if f.cancelled() else f.exception()
                )
            )
            if args.throughput > 0:
                await _throttle(i, started, args.throughput)
        await producer.flush()
    finally:
        await producer.stop()
    stats.finish()
    return stats


def _confluent(args: argparse.Namespace, settings: dict[str, Any], payload: Payload) -> Stats:
    import confluent_kafka

    cfg, bootstrap = _config(settings)
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "acks": "all" if cfg.acks_value == -1 else str(cfg.acks_value),
        "linger.ms": cfg.linger_ms,
        "batch.size": cfg.batch_size,
        "compression.type": cfg.compression_type or "none",
        "message.max.bytes": cfg.max_request_size,
    }
    if settings.get("enable_idempotence") is not None:
        conf["enable.idempotence"] = bool(settings["enable_idempotence"])
    stats = Stats(args.num_records)
    producer = confluent_kafka.Producer(conf)
    stats.start = started = time.perf_counter()
    for i in range(args.num_records):
        value = payload(i)
        sent_at, n = time.perf_counter(), len(value)
        callback = lambda err, msg, t=sent_at, n=n: stats.completed(  # noqa: E731
            t, n, None if err is None else RuntimeError(str(err))
        )
        while True:
            try:
                producer.produce(args.topic, value, on_delivery=callback)
                break
            except BufferError:  # its queue is full: serve callbacks, then again
                producer.poll(0.01)
        producer.poll(0)
        if args.throughput > 0:
            ahead = (i + 1) / args.throughput - (time.perf_counter() - started)
            if ahead > 0.002:
                time.sleep(ahead)
    producer.flush(120)
    stats.finish()
    return stats


def compare(
    args: argparse.Namespace,
    settings: dict[str, Any],
    payload: Payload,
    rows: list[tuple[str, Stats]],
) -> int:
    """Run each installed peer, print the table; 2 for an unknown peer name."""
    unknown = [c for c in args.compare if c not in PEERS]
    if unknown:
        print(f"perf --compare: unknown client(s) {', '.join(unknown)}; known: {', '.join(PEERS)}")
        return 2
    for peer in args.compare:
        dist = _DISTRIBUTIONS[peer]
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            print(f"# {dist}: not installed (pip install {dist}), left out")
            continue
        print(f"# {dist} {version}: the same workload")
        if peer == "aiokafka":
            stats = asyncio.run(_aiokafka(args, settings, payload))
        else:
            stats = _confluent(args, settings, payload)
        print(stats.total_line())
        rows.append((f"{dist} {version}", stats))
    print_table(rows)
    return 0


def print_table(rows: list[tuple[str, Stats]]) -> None:
    """One line per client; the ratios are aioproducer's (the first row) to each."""
    base = rows[0][1]
    width = max(len(name) for name, _ in rows)
    print(
        f"{'client':<{width}}  {'records/sec':>12}  {'p50 ms':>7}  {'p99 ms':>7}  "
        f"{'p99.9 ms':>8}  {'aioproducer throughput':>22}  {'aioproducer p99':>15}"
    )
    for name, s in rows:
        speed = base.records_per_sec / s.records_per_sec if s.records_per_sec else 0.0
        p99 = base.percentile(0.99) / s.percentile(0.99) if s.percentile(0.99) else 0.0
        print(
            f"{name:<{width}}  {s.records_per_sec:>12,.0f}  {s.percentile(0.5):>7.2f}  "
            f"{s.percentile(0.99):>7.2f}  {s.percentile(0.999):>8.2f}  {speed:>21.2f}x  "
            f"{p99:>14.2f}x"
        )
