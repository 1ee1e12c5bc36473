"""The benchmark report's arithmetic: rotated client order and the median run per client."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "bench_run", Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
)
assert _spec is not None and _spec.loader is not None
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)


def test_every_client_runs_first_once_in_as_many_rounds() -> None:
    clients = ["a", "b", "c"]
    firsts = [run.rotated(clients, r)[0] for r in range(3)]
    assert sorted(firsts) == clients
    assert all(sorted(run.rotated(clients, r)) == clients for r in range(5))


def test_the_median_run_is_kept_with_its_range_and_failures() -> None:
    rows = [
        {"workload": "w", "client": "a", "records_per_s": v, "cpu_s": v} for v in (30, 10, 20)
    ] + [
        {"workload": "w", "client": "b", "records_per_s": 5},
        {"workload": "w", "client": "b", "error": "boom"},
        {"workload": "w", "client": "c", "error": "down"},
        {"workload": "latency 100 B", "client": "a", "p50_ms": 0.2},
        {"workload": "latency 100 B", "client": "a", "p50_ms": 0.1},
    ]
    out = {(r["workload"], r["client"]): r for r in run.median_rows(rows)}
    a = out[("w", "a")]
    assert (a["records_per_s"], a["cpu_s"], a["range"], a["runs"]) == (20, 20, (10, 30), 3)
    b = out[("w", "b")]
    assert (b["records_per_s"], b["runs"], b["failed"]) == (5, 1, 1)
    assert out[("w", "c")]["error"] == "down"
    assert out[("latency 100 B", "a")]["p50_ms"] == 0.1
    assert run.span(a) == "10 to 30" and run.span(b) == ""


def test_pin_moves_every_thread_of_a_child_and_leaves_this_process_alone() -> None:
    """``--pin``: the broker (a child process, any number of threads) goes to its CPU."""
    import os
    import subprocess
    import sys

    mine = os.sched_getaffinity(0)
    cpu = {min(mine)}
    code = "import threading, time; [threading.Thread(target=time.sleep, args=(30,), daemon=True).start() for _ in range(3)]; print(flush=True); time.sleep(30)"  # noqa: E501
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        child.stdout.readline()  # its threads are running
        assert run.pin_descendants(cpu, root=child.pid) >= 4
        tids = os.listdir(f"/proc/{child.pid}/task")
        assert len(tids) >= 4
        assert all(os.sched_getaffinity(int(t)) == cpu for t in tids)
        assert os.sched_getaffinity(0) == mine
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
