"""What Kerberos costs at connection time: ``Producer.start()`` (bootstrap connection,
authentication, metadata) over SASL_PLAINTEXT with GSSAPI and with SCRAM-SHA-512, beside
PLAINTEXT, on one Kafka node with the three listeners and an MIT KDC on 127.0.0.1, in one run.

    python benchmarks/bench_gssapi_connect.py [--starts 10] [--rounds 3]

After authentication GSSAPI adds nothing per request (Kafka takes no security layer), so the
throughput is plaintext's; only connecting differs. Medians, and ratios to plaintext.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aioproducer import Producer
from aioproducer.testing import KafkaCluster, KafkaSecurity, KerberosKdc


async def _starts(cfg: dict[str, Any], count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        producer = Producer(**cfg)
        await producer.start()
        out.append(time.perf_counter() - t0)
        await producer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with KerberosKdc() as kdc, KafkaCluster(1, security=KafkaSecurity(kerberos=kdc)) as cluster:
        sec = cluster.security
        assert sec is not None
        os.environ.update(kdc.env)
        cache = Path(tempfile.mkdtemp(prefix="aioproducer-bench-cc-")) / "cc"
        os.environ["KRB5CCNAME"] = f"FILE:{cache}"
        kdc.kinit("alice", cache)
        configs: dict[str, dict[str, Any]] = {
            "PLAINTEXT": {"bootstrap_servers": cluster.bootstrap_servers},
            "SASL_PLAINTEXT GSSAPI": {
                "bootstrap_servers": sec.bootstrap("GSSAPI"),
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "GSSAPI",
            },
            "SASL_PLAINTEXT SCRAM-SHA-512": sec.producer_config("SASL_PLAINTEXT", "SCRAM-SHA-512"),
        }

        async def run() -> dict[str, list[float]]:
            for cfg in configs.values():  # warm up
                await _starts(cfg, 2)
            times: dict[str, list[float]] = {name: [] for name in configs}
            for _ in range(args.rounds):
                for name, cfg in configs.items():
                    times[name] += await _starts(cfg, args.starts)
            return times

        times = asyncio.run(run())
    base = statistics.median(times["PLAINTEXT"])
    print(f"{'listener':30s} {'start() median':>15s} {'vs plaintext':>13s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:30s} {median * 1000:12.2f} ms {median / base:12.2f}x  (n={len(values)})")


if __name__ == "__main__":
    main()
