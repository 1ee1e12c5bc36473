"""``BrokerConnection.open`` turns every failure into a typed error naming the broker:

* a connection the broker closes during the handshake — a TLS listener that resets a
  plaintext client instead of sending an alert, a server that offers only TLS 1.1 — says so
  and points at ``security_protocol`` (retriable, as Java: a broker that is restarting or over
  its connection quota closes connections the same way);
* anything else that opening a connection raises (``OverflowError`` for port 70000 in a
  Metadata answer, ``ValueError``, ``socket.gaierror``) is a retriable
  :class:`KafkaConnectionError` naming host:port, raised from the original.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
import trustme

from aioproducer import KafkaConnectionError, KafkaTimeoutError, Producer
from aioproducer._io.connection import BrokerConnection

pytestmark = pytest.mark.asyncio
CA = trustme.CA()
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def open_conn(host: str, port: int, ssl_context: Any = None) -> BrokerConnection:
    return await BrokerConnection.open(
        1,
        host,
        port,
        client_id="t",
        request_timeout_ms=5000,
        setup_timeout_ms=5000,
        ssl_context=ssl_context,
    )


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handle: Handler, ssl_context: ssl.SSLContext | None = None) -> int:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for s in servers:
        s.close()
        await s.wait_closed()


async def reset_after_first_bytes(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    """A TLS listener that resets a connection whose first bytes are not a ClientHello."""
    await reader.read(100)
    sock = w.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.transport.abort()


async def close_after_first_bytes(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await reader.read(100)
    w.close()
    await w.wait_closed()


def tls_server(maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    CA.issue_cert("127.0.0.1").configure_cert(ctx)
    if maximum is not None:
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = maximum
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def tls_client() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    CA.configure_trust(ctx)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # what security_protocol='SSL' sets up
    return ctx


async def noop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.read(100)
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.transport.abort()


@pytest.mark.parametrize(
    "listener",
    [reset_after_first_bytes, close_after_first_bytes, "real-tls"],
    ids=["resets", "closes", "python-tls-listener"],
)
async def test_plaintext_client_closed_during_the_handshake_is_told_about_tls(
    serve: Callable[..., Awaitable[int]], listener: Any
) -> None:
    port = await (serve(noop, tls_server()) if listener == "real-tls" else serve(listener))
    with pytest.raises(KafkaConnectionError) as info:
        await open_conn("127.0.0.1", port)
    exc = info.value
    text = str(exc)
    assert exc.retriable and f"127.0.0.1:{port}" in text
    assert "closed the connection during the handshake" in text
    assert "security_protocol='SSL'" in text


async def test_tls_client_against_a_tls_1_1_only_server_is_told_why(
    serve: Callable[..., Awaitable[int]],
) -> None:
    port = await serve(noop, tls_server(maximum=ssl.TLSVersion.TLSv1_1))
    t0 = time.monotonic()
    with pytest.raises(KafkaConnectionError) as info:
        await open_conn("127.0.0.1", port, tls_client())
    assert time.monotonic() - t0 < 3
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text and "TLS handshake" in text
    assert "security_protocol" in text and "TLS 1.2" in text


async def test_tls_client_against_a_plaintext_listener_is_told_about_security_protocol(
    serve: Callable[..., Awaitable[int]],
) -> None:
    port = await serve(close_after_first_bytes)
    with pytest.raises(KafkaConnectionError) as info:
        await open_conn("127.0.0.1", port, tls_client())
    text = str(info.value)
    assert "closed the connection during the TLS handshake" in text
    assert "security_protocol" in text


async def test_the_producer_warns_at_once_and_start_still_times_out(
    serve: Callable[..., Awaitable[int]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioproducer")
    port = await serve(reset_after_first_bytes)
    t0 = time.time()
    with pytest.raises(KafkaTimeoutError):
        async with Producer(bootstrap_servers=f"127.0.0.1:{port}", max_block_ms=1500):
            pass
    hints = [r for r in caplog.records if "security_protocol='SSL'" in r.getMessage()]
    assert hints and hints[0].levelno == logging.WARNING and hints[0].created - t0 < 1.0
    assert "closed the connection during the handshake" in hints[0].getMessage()


async def test_start_timeout_says_the_connection_was_closed_during_the_handshake(
    serve: Callable[..., Awaitable[int]],
) -> None:
    port = await serve(reset_after_first_bytes)
    with pytest.raises(KafkaTimeoutError) as info:
        async with Producer(bootstrap_servers=f"127.0.0.1:{port}", max_block_ms=1500):
            pass
    assert "closed the connection during the handshake" in str(info.value)
    assert "security_protocol='SSL'" in str(info.value)


@pytest.mark.parametrize(
    ("host", "port", "cause"),
    [
        ("127.0.0.1", 70000, OverflowError),  # a Metadata answer advertising port 70000
        ("127.0.0.1", -1, OverflowError),
        ("127.0.0.1\x00", 9092, ValueError),
        ("no-such-host.invalid", 9092, socket.gaierror),
    ],
)
async def test_any_error_opening_a_connection_is_a_kafka_connection_error(
    host: str, port: int, cause: type[BaseException]
) -> None:
    with pytest.raises(KafkaConnectionError) as info:
        await open_conn(host, port)
    exc = info.value
    assert exc.retriable and f"{host}:{port}" in str(exc)
    assert isinstance(exc.__cause__, cause)


async def test_an_unexpected_error_from_create_connection_is_translated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("something odd")

    monkeypatch.setattr(loop, "create_connection", broken)
    with pytest.raises(KafkaConnectionError, match=r"127\.0\.0\.1:9092.*something odd") as info:
        await open_conn("127.0.0.1", 9092)
    assert isinstance(info.value.__cause__, RuntimeError)


async def test_cancellation_is_not_translated(serve: Callable[..., Awaitable[int]]) -> None:
    asked = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(100)
            asked.set()  # the client's ApiVersions arrived; it never gets an answer
            await asyncio.sleep(0.5)
        finally:
            writer.transport.abort()

    port = await serve(silent)
    task = asyncio.ensure_future(open_conn("127.0.0.1", port))
    await asyncio.wait_for(asked.wait(), 5)  # cancelled mid-handshake, not before it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
