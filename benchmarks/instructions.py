"""Instructions per record, side by side: a before/after comparison that machine noise cannot move.

    python benchmarks/instructions.py [--clients aioproducer,aioproducer@DIR] [--sizes 100,1024]

On this shared 2-core machine a wall-clock run of the same client varies by 15-30 % from one
round to the next, which hides a 5 % change however many rounds are taken. This counts the
instructions the client's process executes, under valgrind (callgrind), for the awaited send
loop of ``benchmarks/clients.py`` (``--mode``: or a service workload, ``awaited``, ``handlers``,
``callback``) at two record counts; the slope between them is the cost of one record, start-up
and import excluded. The count still depends a little on timing (how many records a sender turn
finds), so runs of one build agree to about 1 %, not exactly.

``aioproducer@DIR`` is the package found in DIR (``pip install --no-deps --target DIR .`` of
another commit), as in ``run.py``. Needs ``valgrind`` (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent


def instructions(
    client: str,
    bootstrap: str,
    size: int,
    records: int,
    compression: str,
    mode: str,
    keyed: bool = False,
) -> int:
    from aioproducer.testing import create_topic

    env = dict(os.environ)
    name = client
    if client.startswith("aioproducer@"):
        name, path = client.split("@", 1)
        env["PYTHONPATH"] = path
    topic = f"instr-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, 6)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/cg.out",
            sys.executable,
            str(HERE / "clients.py"),
            name,
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--records",
            str(records),
            "--size",
            str(size),
            "--compression",
            compression,
            "--mode",
            mode,
            "--no-lag-probe",
            *(["--keyed"] if keyed else []),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    m = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or not m:
        raise SystemExit(f"{client}: valgrind run failed:\n{proc.stderr[-2000:]}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", default="aioproducer")
    ap.add_argument("--sizes", default="100,1024")
    ap.add_argument("--compression", default="none")
    ap.add_argument(
        "--mode",
        default="throughput",
        help="clients.py's workload: throughput (fire and forget), bulk (send_many), awaited, "
        "handlers, callback",
    )
    ap.add_argument(
        "--records",
        type=int,
        default=20_000,
        help="the smaller record count; the larger is three times it",
    )
    ap.add_argument("--keyed", action="store_true", help="records with keys (clients.py --keyed)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    sys.path.insert(0, str(HERE.parent))
    from aioproducer.testing import KafkaCluster

    clients = args.clients.split(",")
    mode = args.mode
    sizes = [int(s) for s in args.sizes.split(",")]
    low, high = args.records, 3 * args.records
    rows = []
    with KafkaCluster(1) as broker:
        for size in sizes:
            per: dict[str, float] = {}
            for client in clients:
                a, b = (
                    instructions(
                        client,
                        broker.bootstrap_servers,
                        size,
                        n,
                        args.compression,
                        mode,
                        args.keyed,
                    )
                    for n in (low, high)
                )
                per[client] = (b - a) / (high - low)
                print(
                    f"{client} {size} B: {a:,} / {b:,} instructions -> {per[client]:,.0f} "
                    "per record",
                    flush=True,
                )
            first = per[clients[0]]
            rows.extend(
                f"| {mode}{', keyed' if args.keyed else ''}, {size} B, {args.compression} | "
                f"{c} | {per[c]:,.0f} | "
                f"{per[c] / first:.3f}x |"
                for c in clients
            )
    print("\n| workload | client | instructions / record | ratio to first |")
    print("|---|---|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
