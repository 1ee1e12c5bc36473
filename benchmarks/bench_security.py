"""What TLS + SASL costs: records/s over SASL_SSL + SCRAM-SHA-512 beside plaintext, for
aioproducer and confluent-kafka, on one Kafka node with both listeners, in one run.

    python benchmarks/bench_security.py [--records 200000] [--rounds 3]

Each (client, listener) runs in its own process (``clients.py``), once to warm up, then in
rotated order per round;
the table gives medians and the ratios that matter: secured/plaintext per client, and
aioproducer/confluent-kafka per listener. Writes ``benchmarks/results/security.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLIENTS = ("aioproducer", "confluent")
LISTENERS = ("PLAINTEXT", "SASL_SSL")
MECHANISM = "SCRAM-SHA-512"


def run_one(
    client: str, bootstrap: str, topic: str, records: int, security: dict[str, Any]
) -> float:
    cmd = [
        sys.executable,
        str(HERE / "clients.py"),
        client,
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--records",
        str(records),
        "--size",
        "100",
        "--no-lag-probe",
        "--security",
        json.dumps(security),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{client} failed: {proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["records_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from aioproducer.testing import KafkaCluster, KafkaSecurity

    rates: dict[tuple[str, str], list[float]] = {(c, lis): [] for c in CLIENTS for lis in LISTENERS}
    with KafkaCluster(1, security=KafkaSecurity()) as cluster:
        sec = cluster.security
        assert sec is not None
        settings = {
            "PLAINTEXT": (cluster.bootstrap_servers, {}),
            "SASL_SSL": (
                sec.bootstrap("SASL_SSL"),
                {
                    "aioproducer": {
                        k: v
                        for k, v in sec.producer_config("SASL_SSL", MECHANISM).items()
                        if k != "bootstrap_servers"
                    },
                    "librdkafka": sec.librdkafka_config("SASL_SSL", MECHANISM),
                },
            ),
        }
        runs = [(c, lis) for c in CLIENTS for lis in LISTENERS]
        for client, listener in runs:  # warm-up, not recorded: a cold broker favours no one
            topic = f"bench-security-warmup-{uuid.uuid4().hex[:8]}"
            cluster.create_topic(topic, 1, 1)
            run_one(client, settings[listener][0], topic, args.records // 4, settings[listener][1])
        for rnd in range(args.rounds):
            for client, listener in runs[rnd % len(runs) :] + runs[: rnd % len(runs)]:
                topic = f"bench-security-{uuid.uuid4().hex[:8]}"
                cluster.create_topic(topic, 1, 1)
                bootstrap, security = settings[listener]
                rate = run_one(client, bootstrap, topic, args.records, security)
                rates[(client, listener)].append(rate)
                print(
                    f"round {rnd + 1}: {client:12} {listener:10} {rate:>10,.0f} rec/s", flush=True
                )
    med = {k: statistics.median(v) for k, v in rates.items()}
    lines = [
        f"# TLS + SASL cost: {args.records:,} records of 100 B, acks=all, medians of "
        f"{args.rounds} rounds",
        "",
        "| client | PLAINTEXT rec/s | SASL_SSL + SCRAM-SHA-512 rec/s | secured / plaintext |",
        "|---|---:|---:|---:|",
    ]
    for c in CLIENTS:
        plain, secured = med[(c, "PLAINTEXT")], med[(c, "SASL_SSL")]
        lines.append(f"| {c} | {plain:,.0f} | {secured:,.0f} | {secured / plain:.2f} |")
    lines += [
        "",
        "| listener | aioproducer / confluent-kafka |",
        "|---|---:|",
        *(
            f"| {lis} | {med[('aioproducer', lis)] / med[('confluent', lis)]:.2f} |"
            for lis in LISTENERS
        ),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "security.md").write_text(text)


if __name__ == "__main__":
    main()
