"""bootstrap_resolve_timeout_ms (Java 4.4): bootstrap names resolved when the producer starts.

Real resolution for names that cannot resolve (``.invalid``, RFC 2606) and for 127.0.0.1; the
one test of a name that resolves only after a while stands in for the loop's resolver."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import pytest

from aioproducer import (
    BootstrapResolutionError,
    ConfigError,
    KafkaTimeoutError,
    Producer,
    ProducerClosedError,
)
from aioproducer._io import bootstrap_dns

NOWHERE = "no-such-host.invalid:9092"


@pytest.mark.asyncio
async def test_no_resolvable_bootstrap_server_is_a_config_error_at_start() -> None:
    p = Producer(bootstrap_servers=[NOWHERE, "also-not.invalid:9093"], max_block_ms=60_000)
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="no bootstrap server resolves") as info:
        await p.start()
    assert time.monotonic() - t0 < 10  # not max_block_ms of connection attempts
    assert "no-such-host.invalid:9092" in str(info.value)
    assert "also-not.invalid:9093" in str(info.value)
    await p.close()


@pytest.mark.asyncio
async def test_one_resolvable_server_is_enough_the_others_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 127.0.0.1:1 resolves (nothing listens): start goes on to connect, and times out there.
    p = Producer(bootstrap_servers=f"{NOWHERE},127.0.0.1:1", max_block_ms=300)
    with (
        caplog.at_level(logging.WARNING, "aioproducer.connection"),
        pytest.raises(KafkaTimeoutError, match="could not reach any broker"),
    ):
        await p.start()
    assert any("no-such-host.invalid:9092 does not resolve" in r.message for r in caplog.records)


@pytest.mark.asyncio
async def test_a_positive_timeout_retries_then_fails_for_good() -> None:
    p = Producer(
        bootstrap_servers=NOWHERE,
        bootstrap_resolve_timeout_ms=400,
        retry_backoff_ms=50,
        retry_backoff_max_ms=100,
    )
    t0 = time.monotonic()
    with pytest.raises(BootstrapResolutionError, match="bootstrap_resolve_timeout_ms=400") as info:
        await p.start()
    assert 0.4 <= time.monotonic() - t0 < 10
    assert info.value.fatal and not info.value.retriable
    with pytest.raises(ProducerClosedError):  # unrecoverable: a new producer is needed
        await p.start()


@pytest.mark.asyncio
async def test_a_name_that_resolves_within_the_timeout_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    async def flaky_async_dns(host: str, port: int, **kw: Any) -> Any:
        calls.append(host)
        if len(calls) < 3:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return socket.getaddrinfo("127.0.0.1", port, **kw)

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", flaky_async_dns)
    p = Producer(
        bootstrap_servers="kafka.example:1",
        bootstrap_resolve_timeout_ms=5_000,
        retry_backoff_ms=10,
        max_block_ms=200,
    )
    # Resolved on the third try; then the connection attempts (nothing listens) time out.
    with pytest.raises(KafkaTimeoutError, match="could not reach any broker"):
        await p.start()
    # Two failed tries, the third resolves; the connection attempts then resolve it too.
    assert calls[:3] == ["kafka.example"] * 3 and len(calls) > 3


def test_the_timeout_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match="bootstrap_resolve_timeout_ms=-1 must be >= 0"):
        Producer(bootstrap_resolve_timeout_ms=-1)


def test_ip_addresses_need_no_resolver() -> None:
    """No thread and no resolver call for IP literals (the simulated loop counts executor jobs,
    and a DNS job among them moved its schedules)."""
    assert not bootstrap_dns.needs_dns([("127.0.0.1", 9092), ("::1", 9092), ("10.0.0.2", 1)])
    assert bootstrap_dns.needs_dns([("127.0.0.1", 9092), ("localhost", 9092)])


def test_under_trio_names_resolve_in_a_worker_thread() -> None:
    """anyio's loop has no resolver of its own: the system's runs in a worker thread."""
    import trio

    retrying: dict[str, Any] = {"bootstrap_resolve_timeout_ms": 300, "retry_backoff_ms": 50}
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({}, ConfigError),
        (retrying, BootstrapResolutionError),
    ]

    async def main() -> list[str]:
        seen = []
        for settings, error in cases:
            p = Producer(bootstrap_servers=NOWHERE, **settings)
            with pytest.raises(error):
                await p.start()
            await p.close()
            seen.append(error.__name__)
        return seen

    assert trio.run(main) == ["ConfigError", "BootstrapResolutionError"]
