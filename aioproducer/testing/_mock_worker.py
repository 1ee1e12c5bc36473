"""Helper process hosting librdkafka's mock cluster; driven by :class:`MockCluster`.

Protocol: one JSON object per line on stdin ``{"op": name, "args": [...]}``, one reply per line
on stdout ``{"ok": value}`` or ``{"error": message}``. EOF on stdin destroys the cluster.
C signatures: RELIABILITY.md §5.5; ctypes rules: §5.6 (variadics take explicit ctypes values).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import sys
from ctypes import c_char_p, c_int, c_int16, c_int32, c_int64, c_size_t, c_void_p
from pathlib import Path
from typing import Any


def _load_librdkafka() -> ctypes.CDLL:
    spec = importlib.util.find_spec("confluent_kafka")
    if spec is None or spec.origin is None:
        raise RuntimeError("confluent-kafka is not installed: pip install 'aioproducer[test]'")
    site = Path(spec.origin).parent.parent
    candidates = sorted((site / "confluent_kafka.libs").glob("librdkafka*.so*"))
    if not candidates:
        raise RuntimeError(f"no bundled librdkafka under {site / 'confluent_kafka.libs'}")
    lib = ctypes.CDLL(str(candidates[0]))
    if not hasattr(lib, "rd_kafka_mock_cluster_new"):
        raise RuntimeError(f"{candidates[0]} lacks the rd_kafka_mock_* API")
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "rd_kafka_conf_new": (c_void_p, []),
        "rd_kafka_conf_set": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
        "rd_kafka_new": (c_void_p, [c_int, c_void_p, c_char_p, c_size_t]),
        "rd_kafka_destroy": (None, [c_void_p]),
        "rd_kafka_mock_cluster_new": (c_void_p, [c_void_p, c_int]),
        "rd_kafka_mock_cluster_destroy": (None, [c_void_p]),
        "rd_kafka_mock_cluster_bootstraps": (c_char_p, [c_void_p]),
        "rd_kafka_mock_topic_create": (c_int, [c_void_p, c_char_p, c_int, c_int]),
        "rd_kafka_mock_topic_set_error": (None, [c_void_p, c_char_p, c_int]),
        "rd_kafka_mock_push_request_errors_array": (
            None,
            [c_void_p, c_int16, c_size_t, ctypes.POINTER(c_int)],
        ),
        "rd_kafka_mock_clear_request_errors": (None, [c_void_p, c_int16]),
        "rd_kafka_mock_partition_set_leader": (c_int, [c_void_p, c_char_p, c_int32, c_int32]),
        "rd_kafka_mock_broker_set_down": (c_int, [c_void_p, c_int32]),
        "rd_kafka_mock_broker_set_up": (c_int, [c_void_p, c_int32]),
        "rd_kafka_mock_broker_set_rtt": (c_int, [c_void_p, c_int32, c_int]),
        "rd_kafka_mock_broker_set_host_port": (None, [c_void_p, c_int32, c_char_p, c_int]),
        "rd_kafka_mock_coordinator_set": (c_int, [c_void_p, c_char_p, c_char_p, c_int32]),
        "rd_kafka_mock_set_apiversion": (c_int, [c_void_p, c_int16, c_int16, c_int16]),
        "rd_kafka_mock_start_request_tracking": (None, [c_void_p]),
        "rd_kafka_mock_stop_request_tracking": (None, [c_void_p]),
        "rd_kafka_mock_get_requests": (
            ctypes.POINTER(c_void_p),
            [c_void_p, ctypes.POINTER(c_size_t)],
        ),
        "rd_kafka_mock_request_id": (c_int32, [c_void_p]),
        "rd_kafka_mock_request_api_key": (c_int16, [c_void_p]),
        "rd_kafka_mock_request_timestamp": (c_int64, [c_void_p]),
        "rd_kafka_mock_request_destroy_array": (None, [ctypes.POINTER(c_void_p), c_size_t]),
        "rd_kafka_mock_clear_requests": (None, [c_void_p]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


class _Mock:
    def __init__(self, brokers: int) -> None:
        self.lib = lib = _load_librdkafka()
        _declare(lib)
        errstr = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        for k, v in ((b"log_level", b"0"),):
            lib.rd_kafka_conf_set(conf, k, v, errstr, len(errstr))
        self.rk = lib.rd_kafka_new(0, conf, errstr, len(errstr))
        if not self.rk:
            raise RuntimeError(f"rd_kafka_new failed: {errstr.value.decode()}")
        self.mc = lib.rd_kafka_mock_cluster_new(self.rk, brokers)
        if not self.mc:
            raise RuntimeError("rd_kafka_mock_cluster_new failed")

    def _rc(self, rc: int, what: str) -> None:
        if rc != 0:
            raise RuntimeError(f"{what} returned error {rc}")

    def bootstraps(self) -> str:
        return str(self.lib.rd_kafka_mock_cluster_bootstraps(self.mc).decode())

    def topic_create(self, topic: str, partitions: int, rf: int) -> None:
        self._rc(
            self.lib.rd_kafka_mock_topic_create(self.mc, topic.encode(), partitions, rf),
            "topic_create",
        )

    def topic_set_error(self, topic: str, err: int) -> None:
        self.lib.rd_kafka_mock_topic_set_error(self.mc, topic.encode(), err)

    def push_request_errors(self, api_key: int, errors: list[int]) -> None:
        arr = (c_int * len(errors))(*errors)
        self.lib.rd_kafka_mock_push_request_errors_array(self.mc, api_key, len(errors), arr)

    def broker_push_request_error_rtts(
        self, broker: int, api_key: int, pairs: list[list[int]]
    ) -> None:
        flat: list[Any] = []
        for err, rtt in pairs:
            flat += [c_int(err), c_int(rtt)]
        fn = self.lib.rd_kafka_mock_broker_push_request_error_rtts
        fn.restype = c_int
        self._rc(
            fn(c_void_p(self.mc), c_int32(broker), c_int16(api_key), c_size_t(len(pairs)), *flat),
            "broker_push_request_error_rtts",
        )

    def partition_push_request_errors(
        self, topic: str, partition: int, api_key: int, errors: list[int]
    ) -> None:
        fn = self.lib.rd_kafka_mock_partition_push_request_errors
        fn.restype = c_int
        self._rc(
            fn(
                c_void_p(self.mc),
                c_char_p(topic.encode()),
                c_int32(partition),
                c_int16(api_key),
                c_size_t(len(errors)),
                *[c_int(e) for e in errors],
            ),
            "partition_push_request_errors",
        )

    def clear_request_errors(self, api_key: int) -> None:
        self.lib.rd_kafka_mock_clear_request_errors(self.mc, api_key)

    def broker_set_down(self, broker: int) -> None:
        self._rc(self.lib.rd_kafka_mock_broker_set_down(self.mc, broker), "broker_set_down")

    def broker_set_up(self, broker: int) -> None:
        self._rc(self.lib.rd_kafka_mock_broker_set_up(self.mc, broker), "broker_set_up")

    def broker_set_rtt(self, broker: int, rtt: int) -> None:
        self._rc(self.lib.rd_kafka_mock_broker_set_rtt(self.mc, broker, rtt), "broker_set_rtt")

    def broker_set_host_port(self, broker: int, host: str, port: int) -> None:
        self.lib.rd_kafka_mock_broker_set_host_port(self.mc, broker, host.encode(), port)

    def partition_set_leader(self, topic: str, partition: int, broker: int) -> None:
        self._rc(
            self.lib.rd_kafka_mock_partition_set_leader(self.mc, topic.encode(), partition, broker),
            "partition_set_leader",
        )

    def coordinator_set(self, key_type: str, key: str, broker: int) -> None:
        self._rc(
            self.lib.rd_kafka_mock_coordinator_set(
                self.mc, key_type.encode(), key.encode(), broker
            ),
            "coordinator_set",
        )

    def set_apiversion(self, api_key: int, lo: int, hi: int) -> None:
        self._rc(self.lib.rd_kafka_mock_set_apiversion(self.mc, api_key, lo, hi), "set_apiversion")

    def start_request_tracking(self) -> None:
        self.lib.rd_kafka_mock_start_request_tracking(self.mc)

    def stop_request_tracking(self) -> None:
        self.lib.rd_kafka_mock_stop_request_tracking(self.mc)

    def get_requests(self) -> list[list[int]]:
        cnt = c_size_t(0)
        arr = self.lib.rd_kafka_mock_get_requests(self.mc, ctypes.byref(cnt))
        out = []
        for i in range(cnt.value):
            r = arr[i]
            out.append(
                [
                    self.lib.rd_kafka_mock_request_id(r),
                    self.lib.rd_kafka_mock_request_api_key(r),
                    self.lib.rd_kafka_mock_request_timestamp(r),
                ]
            )
        if cnt.value:
            self.lib.rd_kafka_mock_request_destroy_array(arr, cnt.value)
        return out

    def clear_requests(self) -> None:
        self.lib.rd_kafka_mock_clear_requests(self.mc)

    def destroy(self) -> None:
        self.lib.rd_kafka_mock_cluster_destroy(self.mc)
        self.lib.rd_kafka_destroy(self.rk)


def main() -> None:
    brokers = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    mock = _Mock(brokers)
    try:
        for line in sys.stdin:
            req = json.loads(line)
            try:
                result = getattr(mock, req["op"])(*req["args"])
                reply: dict[str, Any] = {"ok": result}
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        mock.destroy()


if __name__ == "__main__":
    main()
