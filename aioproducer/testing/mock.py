"""librdkafka's mock cluster (from the confluent-kafka wheel), in a helper process.

The mock runs in a child Python process that loads librdkafka with ``ctypes``; this class
sends it commands over a pipe (one JSON object per line). Our event loop never shares a
process with the mock's threads, and a crash of the mock (RELIABILITY.md §5.4 warns of one)
cannot take the test process down.

Known gaps (RELIABILITY.md §5): no idempotent dedupe without a transactional id, Produce up to
v10, ``acks`` ignored, CRC and compressed payloads not checked, no SASL/TLS, no CreateTopics.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

from ._broker import Broker, Config
from ._errors import HarnessError

#: librdkafka's local error that makes a mock broker drop the connection on the next request.
ERR_TRANSPORT = -195


class MockCluster(Broker):
    """A librdkafka mock cluster with ``brokers`` brokers (ids 1..N) on 127.0.0.1."""

    def __init__(self, brokers: int = 3) -> None:
        self.broker_count = brokers
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._bootstrap_servers = ""

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect (empty before start())."""
        return self._bootstrap_servers

    def start(self) -> MockCluster:
        from ._procs import _set_deathsig

        self._proc = subprocess.Popen(
            [sys.executable, "-m", "aioproducer.testing._mock_worker", str(self.broker_count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            preexec_fn=_set_deathsig,
        )
        self._bootstrap_servers = str(self._call("bootstraps"))
        return self

    def _call(self, op: str, *args: Any) -> Any:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise HarnessError("mock cluster is not started")
        with self._lock:
            proc.stdin.write(json.dumps({"op": op, "args": list(args)}) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        if not line:
            raise HarnessError(f"mock cluster helper died (exit {proc.poll()}) during {op}")
        reply = json.loads(line)
        if "error" in reply:
            raise HarnessError(f"mock cluster {op}{args}: {reply['error']}")
        return reply["ok"]

    # -- topics ------------------------------------------------------------------------------
    def _create_topic(self, name: str, partitions: int, rf: int, cfg: Config) -> None:
        """The mock cluster's own call (topic configs do not apply to it)."""
        self._call("topic_create", name, partitions, min(rf, self.broker_count))

    def topic_set_error(self, topic: str, err: int) -> None:
        self._call("topic_set_error", topic, err)

    # -- error injection ---------------------------------------------------------------------
    def push_request_errors(self, api_key: int, errors: list[int]) -> None:
        """Fail the next ``len(errors)`` requests of ``api_key`` (every partition) on any broker."""
        self._call("push_request_errors", api_key, errors)

    def broker_push_request_error_rtts(
        self, broker_id: int, api_key: int, errors: list[tuple[int, int]]
    ) -> None:
        """On one broker, answer the next requests with ``(error, rtt_ms)`` pairs."""
        self._call("broker_push_request_error_rtts", broker_id, api_key, errors)

    def partition_push_request_errors(
        self, topic: str, partition: int, api_key: int, errors: list[int]
    ) -> None:
        self._call("partition_push_request_errors", topic, partition, api_key, errors)

    def clear_request_errors(self, api_key: int) -> None:
        self._call("clear_request_errors", api_key)

    # -- brokers and leadership --------------------------------------------------------------
    def broker_set_down(self, broker_id: int) -> None:
        self._call("broker_set_down", broker_id)

    def broker_set_up(self, broker_id: int) -> None:
        self._call("broker_set_up", broker_id)

    def broker_set_rtt(self, broker_id: int, rtt_ms: int) -> None:
        self._call("broker_set_rtt", broker_id, rtt_ms)

    def broker_set_host_port(self, broker_id: int, host: str, port: int) -> None:
        self._call("broker_set_host_port", broker_id, host, port)

    def partition_set_leader(self, topic: str, partition: int, broker_id: int) -> None:
        self._call("partition_set_leader", topic, partition, broker_id)

    def coordinator_set(self, key_type: str, key: str, broker_id: int) -> None:
        self._call("coordinator_set", key_type, key, broker_id)

    def set_apiversion(self, api_key: int, min_version: int, max_version: int) -> None:
        self._call("set_apiversion", api_key, min_version, max_version)

    # -- request tracking --------------------------------------------------------------------
    def start_request_tracking(self) -> None:
        self._call("start_request_tracking")

    def stop_request_tracking(self) -> None:
        self._call("stop_request_tracking")

    def requests(self) -> list[tuple[int, int, int]]:
        """Tracked requests as ``(broker_id, api_key, timestamp_us)``."""
        return [(int(b), int(api), int(ts)) for b, api, ts in self._call("get_requests")]

    def clear_requests(self) -> None:
        self._call("clear_requests")

    def log_tail(self, max_bytes: int = 0) -> str:
        return ""

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.close()  # EOF: the helper destroys the cluster and exits
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
