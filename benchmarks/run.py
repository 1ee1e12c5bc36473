"""``make bench``: every client, one at a time, each in its own process, on the same broker.

    python benchmarks/run.py [--broker kafka|tansu] [--full] [--clients a,b,...] [--rounds 3]
                             [--pin]

Starts an Apache Kafka node from the test harness (or Tansu), runs each workload for each
client (aioproducer, aiokafka, confluent-kafka Producer and AIOProducer, kafka-python, and the
Java producer's ProducerPerformance tool), and writes under ``benchmarks/results/``: a markdown
table with every figure as a ratio to aioproducer (``latest.md``), JSON lines for history
(``history.jsonl``) and a PNG chart of throughput and event-loop lag (``latest.png``).

``--pin`` (Linux, 2 CPUs or more) runs the broker on the last CPU and each client on the first:
on a 2-core machine the client and the broker otherwise share both cores, and two runs of
the same build differ by up to 10 %; pinned, by 1-3 %. Use it to compare builds
(``--clients aioproducer,aioproducer@DIR``); a pinned client gets no second core for its
compression thread, so its figures are not the unpinned ones.
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
sys.path.insert(0, str(HERE))  # report.py, beside this script

from report import chart, median_rows, render, span  # noqa: E402

#: ``--pin``: (the clients' CPUs, the broker's CPUs), or None.
PIN: tuple[set[int], set[int]] | None = None


def pin_cpus() -> tuple[set[int], set[int]]:
    """The first CPU for the clients, the last for the broker."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--pin needs at least 2 CPUs")
    return {cpus[0]}, {cpus[-1]}


def pin_descendants(cpus: set[int], root: int | None = None) -> int:
    """Move every thread of this process's descendants (the broker's JVM), or of ``root`` and
    its descendants, to ``cpus``; threads they start later inherit it. Returns the number of
    threads moved."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    mine = set() if root is None else {root}
    todo = [os.getpid() if root is None else root]
    while todo:
        pid = todo.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        mine.update(kids)
        todo.extend(kids)
    moved = 0
    for pid in mine:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(int(tid), cpus)
                moved += 1
            except OSError:
                continue
    return moved


def _pin_client() -> None:  # preexec_fn of a client's process
    if PIN is not None:
        os.sched_setaffinity(0, PIN[0])


RESULTS = HERE / "results"
#: ``aioproducer:uvloop`` is aioproducer on uvloop (the ``uvloop`` extra), left out when uvloop
#: is not installed. ``aioproducer@DIR`` (with --clients) is the package found in DIR.
CLIENTS = [
    "aioproducer",
    "aioproducer:uvloop",
    "aioproducer-trio",
    "aiokafka",
    "confluent",
    "confluent-aio",
    "kafka-python",
    "java",
]
__all__ = ["median_rows", "rotated", "span"]


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


_SERVICE = {"compression": "none", "acks": "all"}
#: Sequential send_and_wait (confluent: produce + flush), one partition.
LATENCY = {**_SERVICE, "mode": "latency", "size": 100, "partitions": 1}
#: How services use a producer (issue 17): every future awaited; request handlers awaiting each
#: record; a callback per record; send_and_wait from concurrent tasks.
SERVICE_WORKLOADS: list[dict[str, Any]] = [
    {**_SERVICE, "mode": "awaited", "size": 100, "records": 100_000},
    {**_SERVICE, "mode": "awaited", "size": 1024, "records": 50_000},
    {**_SERVICE, "mode": "handlers", "size": 100, "records": 100_000, "tasks": 1000},
    {**_SERVICE, "mode": "handlers", "size": 1024, "records": 50_000, "tasks": 1000},
    {**_SERVICE, "mode": "callback", "size": 100, "records": 100_000},
    {**_SERVICE, "mode": "concurrent-latency", "size": 100, "records": 20_000, "tasks": 100},
]
#: --cluster3: the headline workloads on three nodes, topics of replication factor 3.
CLUSTER3_WORKLOADS: list[dict[str, Any]] = [
    {**_SERVICE, "size": 100, "records": 200_000},
    {**_SERVICE, "size": 1024, "records": 100_000},
    SERVICE_WORKLOADS[0],
    SERVICE_WORKLOADS[2],
]

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
    if "scaling" in w:
        return scaling_label(*w["scaling"])
    mode = w.get("mode", "throughput")
    size = f"{w['size']} B" if w["size"] < 1024 else f"{w['size'] // 1024} KiB"
    nodes = ", 3 nodes RF 3" if w.get("replication_factor", 1) == 3 else ""
    if mode == "latency":
        return f"latency: {w['records']:,} sequential awaited sends, {size}"
    if mode == "awaited":
        return f"awaited: every future read, {size}, acks=all{nodes}"
    if mode == "handlers":
        return f"handlers: {w['tasks']:,} tasks awaiting each record, {size}, acks=all{nodes}"
    if mode == "callback":
        return f"callback per record, {size}, acks=all{nodes}"
    if mode == "concurrent-latency":
        return f"send_and_wait from {w['tasks']} tasks, {size}"
    parts = [f"{w['size']} B", w["compression"], f"acks={w['acks']}"]
    if w.get("keyed"):
        parts.append("keyed")
    if w.get("batch_size", 16384) != 16384:
        parts.append(f"batch {w['batch_size'] // 1024} KiB")
    if w.get("idempotence", "default") != "default":
        parts.append(f"idempotence {w['idempotence']}")
    return ", ".join(parts) + nodes


def run_python_client(client: str, bootstrap: str, topic: str, w: dict[str, Any]) -> dict[str, Any]:
    # "aioproducer@DIR": the aioproducer package found in DIR (another checkout, installed with
    # `pip install --target DIR .`), for a before/after comparison in one run;
    # "aioproducer:uvloop": on uvloop.
    env = None
    loop = "asyncio"
    if ":" in client:
        client, loop = client.split(":", 1)
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
        w.get("mode", "throughput"),
        "--records",
        str(w["records"]),
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
        "--tasks",
        str(w.get("tasks", 1000)),
        "--loop",
        loop,
    ]
    if w.get("keyed"):
        cmd.append("--keyed")
    if not w.get("lag_probe", True):
        cmd.append("--no-lag-probe")
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env=env, preexec_fn=_pin_client
    )
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
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, preexec_fn=_pin_client)
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
    ap.add_argument("--no-services", action="store_true", help="skip the service workloads")
    ap.add_argument(
        "--services-only", action="store_true", help="only the service workloads (issue 17)"
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="the broker on the last CPU, each client on the first (to compare builds)",
    )
    ap.add_argument(
        "--cluster3",
        action="store_true",
        help="then the headline workloads on a 3-node Kafka cluster (RF 3, acks=all)",
    )
    args = ap.parse_args()
    global PIN
    PIN = pin_cpus() if args.pin else None
    sys.path.insert(0, str(HERE.parent))
    from aioproducer.testing import KafkaCluster, TansuBroker, ensure_kafka_jars

    clients = [c for c in args.clients.split(",") if c != "aioproducer:uvloop" or has_uvloop()]
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    libs = ensure_kafka_jars()
    ws: list[dict[str, Any]] = []
    if not (args.scaling_only or args.services_only):
        ws += workloads(args.full)
        ws.append({**LATENCY, "records": args.latency_sends})
    if not (args.scaling_only or args.no_services):
        ws += SERVICE_WORKLOADS
    bench = Bench(clients, args.rounds, args.broker, stamp, libs)
    broker: Any = KafkaCluster(1) if args.broker == "kafka" else TansuBroker()
    with broker:
        bench.bootstrap = broker.bootstrap_servers
        if PIN is not None:
            print(f"pinned: {pin_descendants(PIN[1])} broker threads", file=sys.stderr)
        if ws:
            # The broker's JIT warms up over the first seconds of load, and aioproducer runs
            # first in each workload: unwarmed, the first workload measured aioproducer alone
            # on a cold broker (319k rec/s there against 625k for the same records later in
            # the run). A neutral warm-up with librdkafka first.
            bench.warm(1_000_000)
        bench.run(ws)
        if not (args.no_scaling or args.services_only):
            bench.scaling()
    if args.cluster3:
        bench.broker = "kafka"
        with KafkaCluster(3) as cluster:
            bench.bootstrap = cluster.bootstrap_servers
            bench.warm(300_000, replication_factor=3)
            bench.run([{**w, "replication_factor": 3} for w in CLUSTER3_WORKLOADS])
    rows = bench.rows
    with open(RESULTS / "history.jsonl", "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    table = render(median_rows(rows), clients, args.rounds)
    (RESULTS / ("latest-scaling.md" if args.scaling_only else "latest.md")).write_text(table)
    print("\n" + table)
    if not args.scaling_only:
        chart(median_rows(rows), clients, RESULTS)


class Bench:
    """The runs of one ``make bench``, in order, each printed and kept as a row."""

    def __init__(self, clients: list[str], rounds: int, broker: str, stamp: str, libs: Path):
        self.clients, self.rounds, self.broker, self.stamp, self.libs = (
            clients,
            rounds,
            broker,
            stamp,
            libs,
        )
        self.bootstrap = ""
        self.rows: list[dict[str, Any]] = []

    def topic(self, partitions: int, replication_factor: int = 1) -> str:
        from aioproducer.testing import create_topic

        name = f"bench-{uuid.uuid4().hex[:8]}"
        create_topic(self.bootstrap, name, partitions, replication_factor)
        return name

    def warm(self, records: int, replication_factor: int = 1) -> None:
        warm_up(self.bootstrap, [self.topic(6, replication_factor)], 6, records)

    def row(self, w: dict[str, Any], client: str, res: dict[str, Any], **extra: Any) -> None:
        row = {
            "time": self.stamp,
            "broker": self.broker,
            "workload": label(w),
            "client": client,
            **extra,
            **res,
        }
        self.rows.append(row)
        print(json.dumps(row), flush=True)

    def run(self, ws: list[dict[str, Any]]) -> None:
        """Each workload ``rounds`` times, the clients' order rotated every round, so no
        client always runs first (after another workload's load) or last; the table reports
        each client's median run. On this 2-core machine one run of the same client varies by
        up to 30 % (the broker's page cache, log segment rolls, its GC)."""
        for w in ws:
            for rnd in range(self.rounds):
                for client in rotated(self.clients, rnd):
                    if not applies(client, w, self.broker):
                        continue
                    topic = self.topic(w.get("partitions", 6), w.get("replication_factor", 1))
                    if client == "java":
                        res = run_java(self.libs, self.bootstrap, topic, w)
                    else:
                        res = run_python_client(client, self.bootstrap, topic, w)
                    self.row(w, client, res, round=rnd)

    def scaling(self) -> None:
        from aioproducer.testing import create_topics

        clients = [c for c in SCALING_CLIENTS if c in self.clients]
        base = {"size": 100, "records": SCALING_RECORDS, "compression": "none", "acks": "all"}
        # A discarded run per client first: the broker's JIT and page cache warm up, so the
        # 1 x 1 baseline is not measured on a cold broker (126k against 573k rec/s).
        warm = self.topic(6)
        for client in clients:
            run_python_client(client, self.bootstrap, warm, base)
        for partitions, topics in SCALING:
            prefix = f"scale-{uuid.uuid4().hex[:8]}"
            names = [prefix] if topics == 1 else [f"{prefix}-{j}" for j in range(topics)]
            create_topics(self.bootstrap, names, partitions, timeout=300)
            warm_up(self.bootstrap, names, partitions, SCALING_RECORDS)
            w = {
                **base,
                "topics": topics,
                "chunk": SCALING_CHUNK,
                # no lag reported here: the probe's CPU would count as the client's
                "lag_probe": False,
                "scaling": (partitions, topics),
            }
            for client in clients:
                res = run_python_client(client, self.bootstrap, prefix, w)
                self.row(w, client, res, scaling=True)


def has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def base_client(client: str) -> str:
    """``aioproducer@DIR`` and ``aioproducer:uvloop`` are aioproducer."""
    return client.split("@", 1)[0].split(":", 1)[0]


def applies(client: str, w: dict[str, Any], broker: str) -> bool:
    mode, base = w.get("mode", "throughput"), base_client(client)
    if base == "java":
        return mode == "throughput" and broker == "kafka"
    if mode in ("awaited", "callback"):
        return base in ("aioproducer", "aiokafka", "confluent-aio", "confluent")
    if mode in ("handlers", "concurrent-latency"):
        return base in ("aioproducer", "aiokafka", "confluent-aio")
    return True


def rotated(clients: list[str], rnd: int) -> list[str]:
    k = rnd % len(clients)
    return clients[k:] + clients[:k]


if __name__ == "__main__":
    main()
