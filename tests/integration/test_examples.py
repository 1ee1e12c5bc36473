"""The examples under their real servers, against real Kafka, stopped by SIGTERM mid-load.

Each example runs as a subprocess: the FastAPI app under uvicorn (on uvloop), the aiohttp app
under ``web.run_app`` (aiohttp's runner), the script under ``asyncio.run``. A bounded
concurrent load runs against it; once part of it is answered the process gets SIGTERM, and
the load goes on until the server stops answering. Then:

* every request answered 2xx (every record the script printed) is in Kafka, read back with
  confluent-kafka, at the partition and offset the answer gave;
* the process exited by itself, cleanly, and its stderr holds no warning, error or
  traceback (Python's warnings are shown: ``-W default``);
* the app closed its producer: uvicorn kills its process with the SIGTERM it re-raises, so an
  unclosed producer leaves no warning and no telling exit status there; the FastAPI app runs
  under ``uvicorn_probe.py`` (uvicorn's command line), which reports the state of every
  producer after uvicorn's shutdown, and each must be ``"closed"``. A lifespan that forgets
  ``close()`` (``fastapi_unclosed_app.py``) is caught, and that is tested too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from aioproducer.testing import KafkaCluster, read_topic
from aioproducer.testing._ports import free_ports
from tests.helpers import wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: What stderr must not hold after a shutdown.
TROUBLE = re.compile(
    r"warning|error|traceback|exception|unclosed|never awaited|destroyed", re.IGNORECASE
)
WORKERS = 16
MAX_REQUESTS = 3_000
SIGTERM_AFTER = 300


def start(argv: list[str], env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
    with (tmp / "stdout").open("wb") as out, (tmp / "stderr").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-W", "default", *argv],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=out,
            stderr=err,
        )


def stderr_of(proc: subprocess.Popen[bytes], tmp: Path) -> str:
    return (tmp / "stderr").read_text(errors="replace")


def wait_healthy(proc: subprocess.Popen[bytes], port: int, tmp: Path) -> None:
    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited early:\n{stderr_of(proc, tmp)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                body = json.loads(r.read())
                return bool(r.status == 200 and body["producer"] == "running")
        except OSError:
            return False

    wait_until_sync(healthy, "the server to report a running producer", timeout=60)


async def load(port: int, proc: subprocess.Popen[bytes]) -> dict[bytes, tuple[int, int]]:
    """POST up to ``MAX_REQUESTS`` records from ``WORKERS`` concurrent clients; SIGTERM the
    server after ``SIGTERM_AFTER`` 2xx answers. Returns the 2xx answers (value -> partition,
    offset) and the number of requests that got no answer or another status."""
    answered: dict[bytes, tuple[int, int]] = {}
    refused = 0
    started = 0
    terminated = False

    async def worker(w: int, session: aiohttp.ClientSession) -> None:
        nonlocal refused, started, terminated
        while started < MAX_REQUESTS:
            started += 1
            value = b"req-%d-%d" % (w, started)
            try:
                async with session.post(f"http://127.0.0.1:{port}/events/k{w}", data=value) as resp:
                    body = await resp.read()
                    if 200 <= resp.status < 300:
                        md = json.loads(body)
                        answered[value] = (md["partition"], md["offset"])
                    else:
                        refused += 1
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                refused += 1
                if terminated:
                    return  # the server is going away: stop this client
                await asyncio.sleep(0.01)
            if not terminated and len(answered) >= SIGTERM_AFTER:
                terminated = True
                proc.send_signal(signal.SIGTERM)

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=WORKERS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.wait_for(
            asyncio.gather(*(worker(w, session) for w in range(WORKERS))), timeout=240
        )
    assert terminated, (
        f"only {len(answered)} requests answered 2xx ({refused} not) before the load ended"
    )
    return answered


def check_shutdown(proc: subprocess.Popen[bytes], tmp: Path, exit_codes: tuple[int, ...]) -> str:
    try:
        code = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"no exit within 90 s of SIGTERM:\n{stderr_of(proc, tmp)}") from None
    err = stderr_of(proc, tmp)
    assert code in exit_codes, f"exit status {code}:\n{err}"
    trouble = [line for line in err.splitlines() if TROUBLE.search(line)]
    assert not trouble, "stderr after shutdown:\n" + err
    return err


def check_producers_closed(tmp: Path) -> list[dict[str, str]]:
    """Every producer the app started is closed, as ``uvicorn_probe.py`` saw them after the
    server's shutdown (the lifespan's exit)."""
    path = tmp / "producers.json"
    assert path.exists(), (
        "no report of the app's producers: uvicorn did not hand the SIGTERM back to "
        "uvicorn_probe.py after its shutdown"
    )
    report: list[dict[str, str]] = json.loads(path.read_text())
    assert report, "the app started no producer"
    unclosed = [p for p in report if p["state"] != "closed"]
    assert not unclosed, f"producers left unclosed after the lifespan's exit: {unclosed}"
    return report


def uvicorn_argv(app: str, port: int) -> list[str]:
    """uvicorn's command line, under the probe that reports the app's producers."""
    return [
        *("-m", "tests.integration.uvicorn_probe", app, "--app-dir", str(EXAMPLES)),
        *("--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop"),
        "--no-access-log",
    ]


def check_in_kafka(kafka: KafkaCluster, topic: str, answered: dict[bytes, tuple[int, int]]) -> None:
    got = {(r.partition, r.offset): r.value for r in read_topic(kafka.bootstrap_servers, topic)}
    missing = {v: at for v, at in answered.items() if got.get(at) != v}
    assert not missing, f"{len(missing)} acknowledged records not in Kafka where answered"


def run_http_example(
    argv: Callable[[int], list[str]],
    kafka: KafkaCluster,
    topic: str,
    tmp: Path,
    exit_codes: tuple[int, ...],
) -> None:
    (port,) = free_ports(1)
    env = {
        "KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "KAFKA_TOPIC": topic,
        "PRODUCER_REPORT": str(tmp / "producers.json"),
    }
    proc = start(argv(port), env, tmp)
    try:
        wait_healthy(proc, port, tmp)
        answered = asyncio.run(load(port, proc))
        check_shutdown(proc, tmp, exit_codes)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(answered) >= SIGTERM_AFTER
    check_in_kafka(kafka, topic, answered)


def test_fastapi_under_uvicorn_on_uvloop(
    kafka: KafkaCluster, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(kafka, partitions=3)
    run_http_example(
        lambda port: uvicorn_argv("fastapi_app:app", port),
        kafka,
        topic,
        tmp_path,
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        exit_codes=(-signal.SIGTERM,),
    )
    assert check_producers_closed(tmp_path) == [{"client_id": "fastapi-example", "state": "closed"}]


def test_fastapi_check_catches_a_lifespan_that_forgets_close(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    """The check above can fail: the same app with a lifespan that never closes its producer
    exits as cleanly as the real one to uvicorn's eyes (status, stderr), and the report
    catches it."""
    (port,) = free_ports(1)
    env = {
        "KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "PRODUCER_REPORT": str(tmp_path / "producers.json"),
    }
    argv = uvicorn_argv("tests.integration.fastapi_unclosed_app:app", port)
    proc = start(argv, env, tmp_path)
    try:
        wait_healthy(proc, port, tmp_path)
        proc.send_signal(signal.SIGTERM)
        check_shutdown(proc, tmp_path, exit_codes=(-signal.SIGTERM,))  # blind to it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with pytest.raises(AssertionError, match="left unclosed") as caught:
        check_producers_closed(tmp_path)
    assert "'client_id': 'fastapi-unclosed', 'state': 'running'" in str(caught.value)


def test_aiohttp_under_its_runner(
    kafka: KafkaCluster, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(kafka, partitions=3)
    run_http_example(
        lambda port: [str(EXAMPLES / "aiohttp_app.py"), "--port", str(port)],
        kafka,
        topic,
        tmp_path,
        # web.run_app ends a SIGTERM with GracefulExit, a SystemExit of status 1.
        exit_codes=(0, 1),
    )


def test_the_script_stopped_by_sigterm(
    kafka: KafkaCluster, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(kafka, partitions=3)
    argv = [str(EXAMPLES / "produce_script.py"), "--bootstrap", kafka.bootstrap_servers]
    argv += ["--topic", topic, "--count", "2000000", "--window", "500"]
    proc = start(argv, {}, tmp_path)
    out = tmp_path / "stdout"
    try:

        def printed() -> int:
            if proc.poll() is not None:
                raise AssertionError(f"the script exited early:\n{stderr_of(proc, tmp_path)}")
            return out.read_bytes().count(b"\n")

        wait_until_sync(lambda: printed() >= 5_000, "5,000 acknowledged records", timeout=60)
        proc.send_signal(signal.SIGTERM)
        err = check_shutdown(proc, tmp_path, exit_codes=(0,))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "stopped by a signal" in err, err
    answered = {}
    for line in out.read_bytes().splitlines():
        value, partition, offset = line.split()
        answered[value] = (int(partition), int(offset))
    assert 5_000 <= len(answered) < 2_000_000
    check_in_kafka(kafka, topic, answered)
