"""The harness never leaves orphans and names what is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aioproducer.testing import MissingToolError, ensure_kafka_jars

CHILD = """
import sys, time
from aioproducer.testing import TansuBroker
b = TansuBroker().start()
print(b.process.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie awaiting its reaper is dead for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"


@pytest.mark.tansu
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_broker_dies_with_the_process_that_started_it(sig: signal.Signals) -> None:
    parent = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    broker_pid = int(parent.stdout.readline())
    assert _alive(broker_pid)
    parent.send_signal(sig)
    parent.wait(timeout=10)
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while _alive(broker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(broker_pid), f"broker {broker_pid} outlived its parent ({sig.name})"


def test_missing_maven_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOPRODUCER_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match="mvn"):
        ensure_kafka_jars("4.4.0")
