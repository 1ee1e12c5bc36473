"""``make bench``: every client, one at a time, each in its own process, on the same broker.

    python benchmarks/run.py [--broker kafka|tansu] [--full] [--clients a,b,...] [--rounds 3]

Starts an Apache Kafka node from the test harness (or Tansu), runs each workload for each
client (aioproducer, aiokafka, confluent-kafka Producer and AIOProducer, kafka-python, and the
Java producer's ProducerPerformance tool), and writes under ``benchmarks/results/``: a markdown
table with every figure as a ratio to aioproducer (``latest.md``), JSON lines for history
(``history.jsonl``) and a PNG chart of throughput and event-loop lag (``latest.png``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CLIENTS = [
    "aioproducer",
    "aioproducer-trio",
    "aiokafka",
    "confluent",
    "confluent-aio",
    "kafka-python",
    "java",
]


def workloads(full: bool) -> list[dict[str, Any]]:
    base = [
        {"size": 100, "records": 200_000, "compression": "none", "acks": "all"},
        {"size": 1024, "records": 100_000, "compression": "none", "acks": "all"},
        {"size": 100, "records": 200_000, "compression": "lz4", "acks": "all"},
        # 300,000 records: at ~500k rec/s a shorter run gives the loop-lag p99 from ~150
        # ticks, i.e. its second-largest sample.
        {
            "size": 1024,
            "records": 300_000,
            "compression": "zstd",
            "acks": "all",
            "batch_size": 1 << 20,
        },
    ]
    if full:
        base += [
            {"size": 100, "records": 200_000, "compression": "none", "acks": "1"},
            {"size": 100, "records": 200_000, "compression": "none", "acks": "all", "keyed": True},
            {
                "size": 1024,
                "records": 100_000,
                "compression": "none",
                "acks": "all",
                "batch_size": 1 << 20,
            },
            {
                "size": 100,
                "records": 200_000,
                "compression": "none",
                "acks": "all",
                "idempotence": "on",
            },
        ]
    return base


#: Scaling runs (aioproducer and aiokafka): (partitions per topic, topics); cost per record
#: should stay flat. 100 B unkeyed records; with many topics, runs of SCALING_CHUNK records go
#: to one topic before the next, so batches fill alike whatever the topic count.
SCALING = [(1, 1), (10, 1), (100, 1), (1000, 1), (1, 100), (1, 1000)]
SCALING_CLIENTS = ["aioproducer", "aiokafka"]
SCALING_RECORDS = 100_000
SCALING_CHUNK = 128


def warm_up(bootstrap: str, names: list[str], partitions: int, records: int) -> None:
    """``records`` records spread over every partition (with librdkafka) before any client
    runs: a broker's first writes to fresh partitions (segment and index files) are several
    times slower, and whichever client ran first would pay for them (measured: 132k against
    460k rec/s on 100 fresh topics).

    It runs in a process of its own: on Linux a child inherits its parent's peak RSS across
    fork and exec, so a warm-up in this process would raise every client's peak RSS figure."""
    import multiprocessing

    proc = multiprocessing.get_context("spawn").Process(
        target=_warm_up, args=(bootstrap, names, partitions, records)
    )
    proc.start()
    proc.join(600)
    if proc.exitcode != 0:
        raise RuntimeError(f"warm-up failed (exit code {proc.exitcode})")


def _warm_up(bootstrap: str, names: list[str], partitions: int, records: int) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "broker.address.family": "v4"})
    targets = [(n, part) for n in names for part in range(partitions)]
    for i in range(max(records, len(targets))):
        name, part = targets[i % len(targets)]
        while True:
            try:
                p.produce(name, b"w" * 100, partition=part)
                break
            except BufferError:
                p.poll(0.01)
    if p.flush(300) != 0:
        raise RuntimeError("warm-up records not delivered")


def scaling_label(partitions: int, topics: int) -> str:
    return f"scaling: {partitions} partition(s) x {topics} topic(s)"


def label(w: dict[str, Any]) -> str:
    parts = [f"{w['size']} B", w["compression"], f"acks={w['acks']}"]
    if w.get("keyed"):
        parts.append("keyed")
    if w.get("batch_size", 16384) != 16384:
        parts.append(f"batch {w['batch_size'] // 1024} KiB")
    if w.get("idempotence", "default") != "default":
        parts.append(f"idempotence {w['idempotence']}")
    return ", ".join(parts)


def run_python_client(
    client: str,
    bootstrap: str,
    topic: str,
    w: dict[str, Any],
    mode: str = "throughput",
    records: int | None = None,
) -> dict[str, Any]:
    # "aioproducer@DIR": the aioproducer package found in DIR (another checkout, installed with
    # `pip install --target DIR .`), for a before/after comparison in one run.
    env = None
    if client.startswith("aioproducer@"):
        client, path = client.split("@", 1)
        env = {**os.environ, "PYTHONPATH": path}
    cmd = [
        sys.executable,
        str(HERE / "clients.py"),
        client,
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--mode",
        mode,
        "--records",
        str(records or w["records"]),
        "--size",
        str(w["size"]),
        "--acks",
        w["acks"],
        "--compression",
        w["compression"],
        "--batch-size",
        str(w.get("batch_size", 16384)),
        "--idempotence",
        w.get("idempotence", "default"),
        "--topics",
        str(w.get("topics", 1)),
        "--chunk",
        str(w.get("chunk", 1)),
    ]
    if w.get("keyed"):
        cmd.append("--keyed")
    if not w.get("lag_probe", True):
        cmd.append("--no-lag-probe")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_java(libs: Path, bootstrap: str, topic: str, w: dict[str, Any]) -> dict[str, Any]:
    props = [
        f"bootstrap.servers={bootstrap}",
        f"acks={w['acks']}",
        "linger.ms=5",
        f"batch.size={w.get('batch_size', 16384)}",
        f"compression.type={w['compression']}",
    ]
    if w.get("idempotence", "default") != "default":
        props.append(f"enable.idempotence={'true' if w['idempotence'] == 'on' else 'false'}")
    cmd = [
        "java",
        "-Xmx1g",
        "-cp",
        f"{libs}/*",
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(w["records"]),
        "--record-size",
        str(w["size"]),
        "--throughput",
        "-1",
        "--producer-props",
        *props,
    ]
    t0 = time.process_time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    m = re.search(r"records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)", proc.stdout)
    if not m:
        return {"error": (proc.stderr or proc.stdout).strip()[-200:]}
    usage = os.times()
    return {
        "records_per_s": round(float(m.group(1))),
        "mb_per_s": float(m.group(2)),
        "cpu_s": round(usage.children_user + usage.children_system - t0, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", choices=["kafka", "tansu"], default="kafka")
    ap.add_argument("--full", action="store_true", help="the whole workload matrix")
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--latency-sends", type=int, default=2000)
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="runs of each workload per client, order rotated; the median is kept",
    )
    ap.add_argument("--no-scaling", action="store_true", help="skip the scaling runs")
    ap.add_argument("--scaling-only", action="store_true", help="only the scaling runs")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from aioproducer.testing import (
        KafkaCluster,
        TansuBroker,
        create_topic,
        create_topics,
        ensure_kafka_jars,
    )

    clients = args.clients.split(",")
    RESULTS.mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    broker: Any = KafkaCluster(1) if args.broker == "kafka" else TansuBroker()
    libs = ensure_kafka_jars()
    with broker:
        bootstrap = broker.bootstrap_servers
        if not args.scaling_only:
            # The broker's JIT warms up over the first seconds of load, and aioproducer runs
            # first in each workload: unwarmed, the first workload measured aioproducer alone on
            # a cold broker (319k rec/s there against 625k for the same records later in the
            # run). A neutral warm-up with librdkafka first.
            warm = f"bench-warm-{uuid.uuid4().hex[:8]}"
            create_topic(bootstrap, warm, 6)
            warm_up(bootstrap, [warm], 6, 1_000_000)
        # Each workload runs ``--rounds`` times, the clients' order rotated every round, so
        # no client always runs first (after another workload's load) or last; the table
        # reports each client's median run. On this 2-core machine one run of the same client
        # varies by up to 30 % (the broker's page cache, log segment rolls, its GC).
        for w in [] if args.scaling_only else workloads(args.full):
            for rnd in range(args.rounds):
                for client in rotated(clients, rnd):
                    if client == "java" and args.broker != "kafka":
                        continue
                    topic = f"bench-{uuid.uuid4().hex[:8]}"
                    create_topic(bootstrap, topic, 6)
                    if client == "java":
                        res = run_java(libs, bootstrap, topic, w)
                    else:
                        res = run_python_client(client, bootstrap, topic, w)
                    row = {
                        "time": stamp,
                        "broker": args.broker,
                        "workload": label(w),
                        "client": client,
                        "round": rnd,
                        **res,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        # Single awaited send latency: 2,000 sequential send_and_wait / produce+flush.
        lat_w = {"size": 100, "compression": "none", "acks": "all", "records": 0}
        for rnd in range(0 if args.scaling_only else args.rounds):
            for client in rotated(clients, rnd):
                if client == "java":
                    continue
                topic = f"bench-{uuid.uuid4().hex[:8]}"
                create_topic(bootstrap, topic, 1)
                res = run_python_client(
                    client, bootstrap, topic, lat_w, "latency", args.latency_sends
                )
                row = {
                    "time": stamp,
                    "broker": args.broker,
                    "workload": "latency 100 B",
                    "client": client,
                    "round": rnd,
                    **res,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        if not args.no_scaling:
            # A discarded run per client first: the broker's JIT and page cache warm up, so
            # the 1 x 1 baseline is not measured on a cold broker (126k against 573k rec/s).
            warm = f"scale-warm-{uuid.uuid4().hex[:8]}"
            create_topic(bootstrap, warm, 6)
            for client in (c for c in SCALING_CLIENTS if c in clients):
                run_python_client(
                    client,
                    bootstrap,
                    warm,
                    {"size": 100, "records": SCALING_RECORDS, "compression": "none", "acks": "all"},
                )
            for partitions, topics in SCALING:
                prefix = f"scale-{uuid.uuid4().hex[:8]}"
                names = [prefix] if topics == 1 else [f"{prefix}-{j}" for j in range(topics)]
                create_topics(bootstrap, names, partitions, timeout=300)
                warm_up(bootstrap, names, partitions, SCALING_RECORDS)
                w = {
                    "size": 100,
                    "records": SCALING_RECORDS,
                    "compression": "none",
                    "acks": "all",
                    "topics": topics,
                    "chunk": SCALING_CHUNK,
                    # no lag reported here: the probe's CPU would count as the client's
                    "lag_probe": False,
                }
                for client in (c for c in SCALING_CLIENTS if c in clients):
                    res = run_python_client(client, bootstrap, prefix, w)
                    row = {
                        "time": stamp,
                        "broker": args.broker,
                        "workload": scaling_label(partitions, topics),
                        "scaling": True,
                        "client": client,
                        **res,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    with open(RESULTS / "history.jsonl", "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    table = render(median_rows(rows), clients, args.rounds)
    (RESULTS / ("latest-scaling.md" if args.scaling_only else "latest.md")).write_text(table)
    print("\n" + table)
    if not args.scaling_only:
        chart(median_rows(rows), clients)


def rotated(clients: list[str], rnd: int) -> list[str]:
    k = rnd % len(clients)
    return clients[k:] + clients[:k]


def median_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (workload, client): its median run (records/s; p50 for latency), with the
    range over all its runs in ``range``. A client whose every run failed keeps an error row;
    failed runs among good ones are counted in ``failed``."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["workload"], r["client"]), []).append(r)
    out = []
    for group in groups.values():
        good = [r for r in group if "error" not in r]
        if not good:
            out.append(group[0])
            continue
        metric = "p50_ms" if "p50_ms" in good[0] else "records_per_s"
        good.sort(key=lambda r: r[metric])
        row = dict(good[(len(good) - 1) // 2] if metric == "p50_ms" else good[len(good) // 2])
        row["runs"], row["failed"] = len(good), len(group) - len(good)
        row["range"] = (good[0][metric], good[-1][metric])
        out.append(row)
    return out


def span(r: dict[str, Any], fmt: str = "{:,}") -> str:
    """The range of a median row's runs, as "lo to hi", or "" for a single run."""
    if r.get("runs", 1) < 2:
        return ""
    lo, hi = r["range"]
    failed = f", {r['failed']} failed" if r.get("failed") else ""
    return f"{fmt.format(lo)} to {fmt.format(hi)}{failed}"


def render(rows: list[dict[str, Any]], clients: list[str], rounds: int = 1) -> str:
    out = [
        f"Broker: {rows[0]['broker']} (one node on this machine). Each figure is a client's "
        f"median run of {rounds}, the clients' order rotated every round. Ratios are "
        "aioproducer / peer: > 1 means aioproducer is faster (or lower latency).\n"
    ]
    workloads = [
        w
        for w in dict.fromkeys(r["workload"] for r in rows if not r.get("scaling"))
        if w != "latency 100 B"
    ]
    out.append(
        "| workload | client | records/s | range over runs | MB/s | ratio | "
        "loop lag p99 / max ms | CPU s | CPU us/record (send loop) | peak RSS MB |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        ours = next((r for r in rows if r["workload"] == w and r["client"] == "aioproducer"), {})
        for r in (r for r in rows if r["workload"] == w):
            if "error" in r:
                out.append(f"| {w} | {r['client']} | error: {r['error']} | | | | | | | |")
                continue
            ratio = (
                (ours.get("records_per_s", 0) / r["records_per_s"])
                if r.get("records_per_s")
                else float("nan")
            )
            lag = f"{r['lag_p99_ms']} / {r['lag_max_ms']}" if "lag_p99_ms" in r else "n/a"
            out.append(
                f"| {w} | {r['client']} | {r['records_per_s']:,} | {span(r)} | "
                f"{r['mb_per_s']} | "
                f"{ratio:.2f}x | {lag} | {r.get('cpu_s', '')} | "
                f"{r.get('us_per_record', 'n/a')} | {r.get('peak_rss_mb', 'n/a')} |"
            )
    out.append(
        "\n| latency (2,000 sequential awaited sends, 100 B) | p50 ms | p50 range | "
        "p99 ms | p50 ratio (peer / aioproducer) |"
    )
    out.append("|---|---:|---:|---:|---:|")
    lat = [r for r in rows if r["workload"] == "latency 100 B"]
    ours_lat = next((r for r in lat if r["client"] == "aioproducer"), {})
    for r in lat:
        if "error" in r:
            out.append(f"| {r['client']} | error: {r['error']} | | | |")
            continue
        ratio = r["p50_ms"] / ours_lat["p50_ms"] if ours_lat.get("p50_ms") else float("nan")
        out.append(
            f"| {r['client']} | {r['p50_ms']} | {span(r, '{}')} | {r['p99_ms']} | {ratio:.2f}x |"
        )
    scaling = [r for r in rows if r.get("scaling")]
    if scaling:
        out.append(
            "\n| scaling (100 B, acks=all) | client | records/s | CPU us/record | "
            "vs 1 partition x 1 topic |"
        )
        out.append("|---|---|---:|---:|---:|")
        base = {
            r["client"]: r.get("us_per_record")
            for r in scaling
            if r["workload"] == scaling_label(1, 1)
        }
        for r in scaling:
            if "error" in r:
                out.append(f"| {r['workload']} | {r['client']} | error: {r['error']} | | |")
                continue
            b = base.get(r["client"])
            rel = f"{(r['us_per_record'] / b - 1) * 100:+.0f} %" if b else "n/a"
            out.append(
                f"| {r['workload'].removeprefix('scaling: ')} | {r['client']} | "
                f"{r['records_per_s']:,} | {r['us_per_record']} | {rel} |"
            )
    return "\n".join(out) + "\n"


def chart(rows: list[dict[str, Any]], clients: list[str]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart (pip install 'aioproducer[bench]')")
        return
    workloads = [
        w
        for w in dict.fromkeys(r["workload"] for r in rows if not r.get("scaling"))
        if w != "latency 100 B"
    ]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5))
    width = 0.8 / len(clients)
    for i, client in enumerate(clients):
        vals = [
            next(
                (
                    r.get("records_per_s", 0)
                    for r in rows
                    if r["workload"] == w and r["client"] == client
                ),
                0,
            )
            for w in workloads
        ]
        ax1.bar([j + i * width for j in range(len(workloads))], vals, width, label=client)
        lags = [
            next(
                (
                    r.get("lag_p99_ms", 0)
                    for r in rows
                    if r["workload"] == w and r["client"] == client
                ),
                0,
            )
            for w in workloads
        ]
        ax2.bar([j + i * width for j in range(len(workloads))], lags, width, label=client)
    for ax, title in ((ax1, "throughput (records/s)"), (ax2, "event-loop lag p99 (ms)")):
        ax.set_xticks([j + 0.4 for j in range(len(workloads))])
        ax.set_xticklabels(workloads, rotation=20, ha="right", fontsize=8)
        ax.set_title(title)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "latest.png", dpi=100)
    print(f"chart: {RESULTS / 'latest.png'}")


if __name__ == "__main__":
    main()
