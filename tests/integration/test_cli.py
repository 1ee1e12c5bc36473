"""The installed ``aioproducer`` command against a real broker (Tansu, the fastest to start),
read back with confluent-kafka (``read_topic``; the Debian kcat cannot read from Tansu).

The script is the console script pip installed next to this interpreter; ``make setup``
installs it (a missing one fails here, with what to run). It imports the package this test
runs on (PYTHONPATH is passed on), so a worktree tests its own code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from aioproducer.testing import KafkaCluster, TansuBroker, read_topic

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "aioproducer"


def aioproducer(
    *args: str, stdin: bytes = b"", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: run `make setup` (pip install -e .)"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [str(SCRIPT), *args], input=stdin, capture_output=True, timeout=timeout, env=env
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


def test_the_script_runs_this_checkout() -> None:
    res = aioproducer("--version")
    assert res.returncode == 0 and res.stdout.startswith("aioproducer "), res
    res = aioproducer("produce", "--help")
    assert "--key-separator" in res.stdout


@pytest.mark.tansu
def test_produce_lines_with_keys_and_headers_from_stdin_and_files(
    tansu: TansuBroker, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(tansu, partitions=3)
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"h:1,g:2|k3\tfrom a file\r\n|k4\t\xff binary\n")
    stdin = b"k1\tv1\nk2\tv2 with\ttab\nno key\n"
    res = aioproducer(
        "produce", "--bootstrap-server", tansu.bootstrap_servers, "--topic", topic,
        "--key-separator", "\\t", "--headers-separator", "|", "-H", "src=cli",
        "--acks", "1", "--compression", "lz4", "--no-idempotence",
        "-", str(lines), stdin=stdin,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "produced 5 of 5 records" in res.stdout
    assert "\r" not in res.stderr  # off a terminal: lines, not a redrawn bar
    got = sorted(
        ((r.key, r.value, r.headers) for r in read_topic(tansu.bootstrap_servers, topic)),
        key=repr,
    )
    src = ("src", b"cli")
    assert got == sorted(
        [
            (b"k1", b"v1", (src,)),
            (b"k2", b"v2 with\ttab", (src,)),
            (None, b"no key", (src,)),
            (b"k3", b"from a file", (src, ("h", b"1"), ("g", b"2"))),
            (b"k4", b"\xff binary", (src,)),
        ],
        key=repr,
    )


@pytest.mark.tansu
def test_produce_whole_files(
    tansu: TansuBroker, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(tansu)
    files = []
    for i in range(3):
        f = tmp_path / f"doc{i}.json"
        f.write_text(f'{{"doc": {i},\n "lines": 2}}\n')
        files.append(str(f))
    res = aioproducer(
        "produce", "--bootstrap-server", tansu.bootstrap_servers, "--topic", topic,
        "--whole-files", *files,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    values = [r.value for r in read_topic(tansu.bootstrap_servers, topic)]
    assert values == [Path(f).read_bytes() for f in files]


@pytest.mark.tansu
def test_produce_errors_name_the_cause(tansu: TansuBroker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(tansu)
    res = aioproducer(
        "produce", "--bootstrap-server", tansu.bootstrap_servers, "--topic", topic,
        "--producer-props", "lingerms=5",
    )  # fmt: skip
    assert res.returncode == 2 and "did you mean 'linger_ms'" in res.stderr, res.stderr
    res = aioproducer(
        "produce", "--bootstrap-server", tansu.bootstrap_servers, "--topic", topic,
        "--producer-props", "max.request.size=100", stdin=b"small\n" + b"x" * 200 + b"\n",
    )  # fmt: skip
    assert res.returncode == 1 and "RecordTooLargeError" in res.stderr, res.stderr


JAVA_TOTAL = re.compile(
    r"^(\d+) records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, "
    r"[\d.]+ ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99.9th\.$",
    re.M,
)


@pytest.mark.tansu
def test_perf_prints_javas_lines_and_compares_with_the_peers(
    tansu: TansuBroker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(tansu, partitions=2)
    res = aioproducer(
        "perf", "--topic", topic, "--num-records", "3000", "--record-size", "100",
        "--throughput", "-1", "--print-metrics", "--compare", "aiokafka,confluent",
        "--producer-props", f"bootstrap.servers={tansu.bootstrap_servers}", "acks=1",
        "linger.ms=5",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    totals = JAVA_TOTAL.findall(res.stdout)
    assert totals == ["3000", "3000", "3000"], res.stdout  # aioproducer, aiokafka, confluent
    assert re.search(r"^latency percentiles: [\d.]+ ms 50th, .* ms 99.9th, [\d.]+ ms max\.$",
                     res.stdout, re.M), res.stdout  # fmt: skip
    assert re.search(
        r"^producer-metrics:buffer-total-bytes:\{client-id=[^}]+\} +: 33554432\.000$",
        res.stdout,
        re.M,
    ), res.stdout
    table = res.stdout[res.stdout.index("client ") :].splitlines()
    assert [row.split()[0] for row in table[1:]] == ["aioproducer", "aiokafka", "confluent-kafka"]
    assert table[1].split()[-2:] == ["1.00x", "1.00x"]
    assert len(read_topic(tansu.bootstrap_servers, topic)) == 9000
    assert all(len(r.value or b"") == 100 for r in read_topic(tansu.bootstrap_servers, topic))


@pytest.mark.tansu
def test_perf_throughput_is_held(tansu: TansuBroker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(tansu)
    res = aioproducer(
        "perf", "--topic", topic, "--num-records", "600", "--payload-monotonic",
        "--throughput", "1000", "--producer-props", f"bootstrap.servers={tansu.bootstrap_servers}",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    m = re.search(r"^600 records sent, ([\d.]+) records/sec", res.stdout, re.M)
    assert m and float(m.group(1)) <= 1100, res.stdout
    assert [r.value for r in read_topic(tansu.bootstrap_servers, topic)] == [
        str(i).encode() for i in range(600)
    ]


def test_demo_off_a_terminal_is_line_based() -> None:
    res = aioproducer("demo", "--records", "5000", timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "verified 5000/5000" in res.stdout
    assert "\r" not in res.stdout + res.stderr
    assert "5,000/5,000 records" in res.stderr


@pytest.mark.kafka
def test_perf_in_transactions_on_kafka(kafka: KafkaCluster, new_topic: Callable[..., str]) -> None:
    """--transactional-id / --transaction-duration-ms: a transaction committed every 100 ms, every
    record visible to a read_committed reader."""
    topic = new_topic(kafka, partitions=2)
    res = aioproducer(
        "perf", "--topic", topic, "--num-records", "3000", "--record-size", "50",
        "--throughput", "10000", "--transactional-id", "perf-txn", "--transaction-duration-ms",
        "100", "--producer-props", f"bootstrap.servers={kafka.bootstrap_servers}",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert JAVA_TOTAL.findall(res.stdout) == ["3000"], res.stdout
    committed = read_topic(kafka.bootstrap_servers, topic, isolation_level="read_committed")
    assert len(committed) == 3000
