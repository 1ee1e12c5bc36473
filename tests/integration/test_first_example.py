"""The README's first example works as written, against the brokers the README tells the
user to start: the code block is taken from README.md and run as a script, the way the README
says to run it; the records are read back by the independent reader."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from aioproducer.testing import HarnessError, KafkaCluster, TansuBroker, read_topic

README = Path(__file__).resolve().parents[2] / "README.md"
Broker = KafkaCluster | TansuBroker


def first_example() -> str:
    match = re.search(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
    assert match is not None, "README.md has no python code block"
    return match.group(1)


def records_of(bootstrap_servers: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    try:
        return [(r.key, r.value) for r in read_topic(bootstrap_servers, topic, timeout=30)]
    except HarnessError:  # not created yet
        return []


@pytest.fixture(params=["tansu", "kafka"])
def broker(request: pytest.FixtureRequest) -> Broker:
    b: Broker = request.getfixturevalue(request.param)
    return b


def test_the_readme_first_example_runs_as_written(broker: Broker, tmp_path: Path) -> None:
    if isinstance(broker, KafkaCluster):
        # The harness's Kafka does not create topics on first use: the README says to create
        # the topic first on such a cluster.
        broker.create_topic("events")
    before = records_of(broker.bootstrap_servers, "events")
    script = tmp_path / "example.py"
    script.write_text(first_example())
    proc = subprocess.run(
        [sys.executable, str(script), broker.bootstrap_servers],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = records_of(broker.bootstrap_servers, "events")
    assert after[: len(before)] == before
    assert sorted(after[len(before) :], key=repr) == sorted(
        [(b"user-1", b"value"), (None, b"now")], key=repr
    )
