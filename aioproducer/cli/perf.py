"""``aioproducer perf``: Java's ``kafka-producer-perf-test``, same flags, same output.

    aioproducer perf --topic t --num-records 100000 --record-size 100 --throughput -1 \\
        --producer-props bootstrap.servers=127.0.0.1:9092 acks=all linger.ms=5 \\
        [--compare aiokafka,confluent]

Every 5 s a line for the last window, then Java's total line (records/sec, MB/sec, average and
maximum latency, 50th/95th/99th/99.9th percentiles in whole ms), then the percentiles to the
hundredth of a ms (a local broker answers in well under one). Latency is from ``send()`` to
the record's acknowledgement. ``--throughput N`` holds the rate near N records/s (-1: no limit;
the loop then yields to the event loop every 100 records, ``AIOPRODUCER_PERF_YIELD_EVERY``).

``--compare aiokafka,confluent`` runs the same workload with each of those clients that is
installed, one after another, and prints a table with aioproducer's ratio to each (a client
that is not installed is named and left out). Only the settings those clients share are
passed on to them: acks, linger, batch size, compression, idempotence, max request size.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .. import Producer, __version__
from ._options import add_producer_options, producer_settings

#: An unthrottled loop of send()s that never waits (buffer memory to spare) would keep the
#: sender task from running until it ends: every record would wait for the last one. A real
#: application yields to the event loop now and then; so does this loop.
YIELD_EVERY = int(os.environ.get("AIOPRODUCER_PERF_YIELD_EVERY", "100"))


@dataclass
class Stats:
    """Java's ``ProducerPerformance.Stats``: a window printed every ``interval`` seconds, the
    totals, and up to 500,000 latency samples (every n-th record) for the percentiles."""

    num_records: int
    out: IO[str] | None = None
    interval: float = 5.0

    def __post_init__(self) -> None:
        self.count = self.errors = self.bytes = 0
        self.total_latency = self.max_latency = 0.0
        self.latencies: list[float] = []
        self.first_error: str | None = None
        self.sampling = max(1, self.num_records // min(max(self.num_records, 1), 500_000))
        self.start = self.window_start = time.perf_counter()
        self.iteration = 0
        self._window = [0, 0, 0.0, 0.0]  # count, bytes, total latency, max latency

    def completed(self, sent_at: float, nbytes: int, exc: BaseException | None) -> None:
        now = time.perf_counter()
        self.iteration += 1
        if exc is not None:
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"{type(exc).__name__}: {exc}"
            return
        latency = (now - sent_at) * 1000
        self.count += 1
        self.bytes += nbytes
        self.total_latency += latency
        self.max_latency = max(self.max_latency, latency)
        w = self._window
        w[0] += 1
        w[1] += nbytes
        w[2] += latency
        w[3] = max(w[3], latency)
        if self.iteration % self.sampling == 0:
            self.latencies.append(latency)
        if now - self.window_start >= self.interval and self.out is not None:
            elapsed = now - self.window_start
            self.out.write(
                f"{w[0]} records sent, {w[0] / elapsed:.1f} records/sec "
                f"({w[1] / elapsed / 1048576:.2f} MB/sec), {w[2] / w[0]:.1f} ms avg latency, "
                f"{w[3]:.1f} ms max latency.\n"
            )
            self.out.flush()
            self.window_start = now
            self._window = [0, 0, 0.0, 0.0]

    def finish(self) -> None:
        self.elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.latencies.sort()

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        return self.latencies[min(int(p * len(self.latencies)), len(self.latencies) - 1)]

    @property
    def records_per_sec(self) -> float:
        return self.count / self.elapsed

    def total_line(self) -> str:
        """Java's last line, in its format (percentiles in whole ms, as Java's ints)."""
        p = [int(self.percentile(q)) for q in (0.5, 0.95, 0.99, 0.999)]
        avg = self.total_latency / self.count if self.count else 0.0
        return (
            f"{self.count} records sent, {self.records_per_sec:.1f} records/sec "
            f"({self.bytes / self.elapsed / 1048576:.2f} MB/sec), {avg:.2f} ms avg latency, "
            f"{self.max_latency:.2f} ms max latency, {p[0]} ms 50th, {p[1]} ms 95th, "
            f"{p[2]} ms 99th, {p[3]} ms 99.9th."
        )

    def percentiles_line(self) -> str:
        qs = ((0.5, "50th"), (0.9, "90th"), (0.95, "95th"), (0.99, "99th"), (0.999, "99.9th"))
        parts = [f"{self.percentile(q):.2f} ms {name}" for q, name in qs]
        return "latency percentiles: " + ", ".join(parts) + f", {self.max_latency:.2f} ms max."


def print_metrics(metrics: dict[Any, float]) -> None:
    """Java's ``ToolsUtils.printMetrics``: ``group:name:{tags}`` and the value, sorted."""
    rows = {
        f"{m.group}:{m.name}:{{{', '.join(f'{k}={v}' for k, v in m.tags.items())}}}": value
        for m, value in metrics.items()
    }
    width = max(map(len, rows), default=0)
    print(f"\n{'Metric Name':<{width}}   Value")
    for name in sorted(rows):
        print(f"{name:<{width}} : {rows[name]:.3f}")


def payloads(args: argparse.Namespace) -> Callable[[int], bytes]:
    """The payload of record i: random uppercase letters (a pool, reused, as compressible as
    Java's), the lines of --payload-file, or i itself with --payload-monotonic."""
    if args.payload_monotonic:
        return lambda i: str(i).encode()
    if args.payload_file:
        delimiter = args.payload_delimiter.encode().decode("unicode_escape")
        text = Path(args.payload_file).read_text(encoding="utf-8")
        pool = [p.encode() for p in text.split(delimiter) if p]
        if not pool:
            raise SystemExit(f"aioproducer perf: {args.payload_file} has no payloads")
        print(f"Reading payloads from: {args.payload_file}")
        print(f"Number of messages read: {len(pool)}")
    else:
        rng = random.Random(0)
        pool = [bytes(rng.randrange(65, 91) for _ in range(args.record_size)) for _ in range(64)]
    n = len(pool)
    return lambda i: pool[i % n]


async def _throttle(i: int, started: float, throughput: float) -> None:
    """Java's ThroughputThrottler: sleep while ahead of ``throughput`` records/s."""
    if throughput > 0:
        ahead = (i + 1) / throughput - (time.perf_counter() - started)
        if ahead > 0.002:
            await asyncio.sleep(ahead)


async def run_aioproducer(
    args: argparse.Namespace, settings: dict[str, Any], payload: Callable[[int], bytes], out: Any
) -> tuple[Stats, dict[Any, float]]:
    stats = Stats(args.num_records, out)
    topic, perf_counter, completed = args.topic, time.perf_counter, stats.completed
    txn = settings.get("transactional_id") is not None
    async with Producer(**settings) as producer:
        stats.start = stats.window_start = started = perf_counter()
        txn_started = None  # Java's: a transaction per --transaction-duration-ms
        for i in range(args.num_records):
            value = payload(i)
            sent_at = perf_counter()
            if txn and txn_started is None:
                producer.begin_transaction()
                txn_started = sent_at
            callback = functools.partial(_done, completed, sent_at, len(value))
            await producer.send(topic, value, callback=callback)
            if txn_started is not None and (sent_at - txn_started) * 1000 >= args.txn_ms:
                await producer.commit_transaction()
                txn_started = None
            if args.throughput > 0:
                await _throttle(i, started, args.throughput)
            elif i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        if txn_started is not None:
            await producer.commit_transaction()
        await producer.flush()
        metrics = producer.metrics()
    stats.finish()
    return stats, metrics


def _done(completed: Any, sent_at: float, nbytes: int, md: Any, exc: Any) -> None:
    completed(sent_at, nbytes, exc)


def run(args: argparse.Namespace) -> int:
    if args.record_size is None and not args.payload_file and not args.payload_monotonic:
        raise SystemExit(
            "aioproducer perf: give exactly one of --record-size, --payload-file, "
            "--payload-monotonic"
        )
    settings = producer_settings(args)
    if args.transactional_id:
        settings["transactional_id"] = args.transactional_id
    if args.transaction_duration_ms is not None and not settings.get("transactional_id"):
        settings["transactional_id"] = f"performance-producer-{uuid.uuid4()}"  # as Java
    args.txn_ms = args.transaction_duration_ms or 3000  # Java's default
    payload = payloads(args)
    stats, metrics = asyncio.run(run_aioproducer(args, settings, payload, sys.stdout))
    print(stats.total_line())
    print(stats.percentiles_line())
    if args.print_metrics:
        print_metrics(metrics)
    code = 0
    if stats.errors:
        print(f"{stats.errors} records failed; the first: {stats.first_error}", file=sys.stderr)
        code = 1
    if args.compare:
        from ._peers import compare

        rows = [(f"aioproducer {__version__}", stats)]
        code = compare(args, settings, payload, rows) or code
    return code


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "perf",
        help="measure throughput and latency (kafka-producer-perf-test)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--topic", required=True, metavar="TOPIC")
    p.add_argument("--num-records", type=int, required=True, metavar="NUM-RECORDS")
    payload = p.add_mutually_exclusive_group()
    payload.add_argument("--record-size", type=int, metavar="RECORD-SIZE")
    payload.add_argument("--payload-file", metavar="PAYLOAD-FILE")
    payload.add_argument("--payload-monotonic", action="store_true")
    p.add_argument("--payload-delimiter", default="\\n", metavar="PAYLOAD-DELIMITER")
    p.add_argument("--throughput", type=float, required=True, metavar="THROUGHPUT")
    p.add_argument("--print-metrics", action="store_true")
    p.add_argument("--transactional-id", metavar="TRANSACTIONAL-ID")
    p.add_argument("--transaction-duration-ms", type=int, metavar="TRANSACTION-DURATION")
    p.add_argument(
        "--compare",
        metavar="CLIENTS",
        type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
        help="also run the workload with these clients: aiokafka,confluent",
    )
    add_producer_options(p, shortcuts=False)
    p.set_defaults(run=run)


__all__ = ("Stats", "add_parser", "run")
