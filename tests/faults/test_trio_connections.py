"""Connections under trio against the fake broker, which runs on its own asyncio loop in a
thread (trio owns the test's thread).

TLS and SASL through the anyio-based shell (``anyio.connect_tcp`` with a TLS wrap), with the
outcomes of ``test_catalogue_security.py`` on asyncio: a valid certificate works, a wrong
hostname or an untrusted issuer is an ``SslAuthenticationError`` raised promptly by
``start()``, SASL/PLAIN over TLS authenticates, a plaintext client answered with a TLS alert
is told to set ``security_protocol``. And a producer left open when its trio run ends: its
records fail, the next run gets ``WrongEventLoopError`` from ``send()`` and may close it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
import trustme

from aioproducer import (
    Producer,
    ProducerClosedError,
    RecordFuture,
    SecurityProtocolMismatchError,
    SslAuthenticationError,
    WrongEventLoopError,
)
from tests.faults.fake_broker import FakeBroker

from .test_catalogue_security import CA, cafile, server_context

__all__ = ["cafile"]  # the fixture, used here by name


@contextmanager
def loop_in_a_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop running in its own thread (trio owns the test's thread)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="asyncio-peer", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def broker_in_a_thread(**kwargs: Any) -> Iterator[FakeBroker]:
    with loop_in_a_thread() as loop:
        broker = asyncio.run_coroutine_threadsafe(FakeBroker(**kwargs).start(), loop).result(10)
        try:
            yield broker
        finally:
            asyncio.run_coroutine_threadsafe(broker.close(), loop).result(10)


def tls_config(broker: FakeBroker, cafile: str, **extra: Any) -> dict[str, Any]:
    base = dict(
        bootstrap_servers=broker.bootstrap_servers,
        security_protocol="SSL",
        ssl_cafile=cafile,
        max_block_ms=10_000,
    )
    return {**base, **extra}


def test_tls_and_sasl_over_tls_work_under_trio(cafile: str) -> None:
    users = {"alice": "s3cret"}
    with broker_in_a_thread(ssl_context=server_context("127.0.0.1"), sasl_users=users) as broker:

        async def main() -> int:
            cfg = tls_config(broker, cafile, security_protocol="SASL_SSL")
            cfg.update(sasl_mechanism="PLAIN", sasl_plain_username="alice")
            async with Producer(**cfg, sasl_plain_password="s3cret") as p:
                return (await p.send_and_wait("t", b"over tls")).offset

        assert trio.run(main) == 0
        assert broker.records == [b"over tls"] and broker.authenticated >= 1


@pytest.mark.parametrize(
    ("names", "ca", "match"),
    [
        (("other.test",), CA, r"127\.0\.0\.1"),
        (("127.0.0.1",), trustme.CA(), r"issuer certificate|verify failed"),
    ],
    ids=["wrong-hostname", "untrusted-issuer"],
)
def test_a_refused_certificate_fails_start_promptly_under_trio(
    cafile: str, names: tuple[str, ...], ca: trustme.CA, match: str
) -> None:
    with broker_in_a_thread(ssl_context=server_context(*names, ca=ca)) as broker:

        async def main() -> None:
            async with Producer(**tls_config(broker, cafile)):
                pass

        t0 = time.monotonic()
        with pytest.raises(SslAuthenticationError, match=match):
            trio.run(main)
        assert time.monotonic() - t0 < 5  # from start(), not after max_block_ms


def test_a_plaintext_client_against_a_tls_listener_is_told_under_trio() -> None:
    """As test_s55: the listener answers plaintext bytes with a TLS alert record."""

    async def tls_listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"\x15\x03\x03\x00\x02\x02\x0a")  # fatal alert: unexpected_message
        await writer.drain()
        writer.close()

    async def main(port: int) -> None:
        async with Producer(bootstrap_servers=f"127.0.0.1:{port}", max_block_ms=10_000):
            pass

    with loop_in_a_thread() as loop:
        start = asyncio.start_server(tls_listener, "127.0.0.1", 0)
        server = asyncio.run_coroutine_threadsafe(start, loop).result(10)
        try:
            with pytest.raises(SecurityProtocolMismatchError, match="security_protocol='SSL'"):
                trio.run(main, server.sockets[0].getsockname()[1])
        finally:
            server.close()
            asyncio.run_coroutine_threadsafe(server.wait_closed(), loop).result(10)


def test_a_producer_outliving_its_trio_run_refuses_the_next_one() -> None:
    """A producer left open when its trio run ends (its tasks are cancelled with the run)
    refuses a send from the next run with WrongEventLoopError, and closes from it."""
    with broker_in_a_thread() as broker:
        producer = Producer(bootstrap_servers=broker.bootstrap_servers, linger_ms=60_000)

        async def first() -> RecordFuture:
            await producer.start()
            return await producer.send("t", b"pending")

        pending = trio.run(first)
        assert pending.done() and isinstance(pending.exception(), ProducerClosedError)

        async def second() -> None:
            with pytest.raises(WrongEventLoopError, match="another event loop"):
                await producer.send("t", b"v")
            await producer.close()

        trio.run(second)
        assert producer.state == "closed"
