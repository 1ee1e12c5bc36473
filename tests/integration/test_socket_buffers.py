"""send_buffer_bytes / receive_buffer_bytes (Java's send.buffer.bytes / receive.buffer.bytes)
set the broker connections' socket buffers; -1 keeps the system's."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from aioproducer import Producer
from aioproducer.testing import TansuBroker, read_topic

pytestmark = [pytest.mark.tansu, pytest.mark.asyncio]


async def test_socket_buffers_are_set_on_broker_connections(
    tansu: TansuBroker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(tansu)
    async with Producer(
        bootstrap_servers=tansu.bootstrap_servers,
        send_buffer_bytes=65536,
        receive_buffer_bytes=16384,
    ) as producer:
        await producer.send_and_wait(topic, b"through small buffers")
        assert producer._sender is not None
        transports = [c._transport for c in producer._sender.connections.values()]
        socks = [t.get_extra_info("socket") for t in transports if t is not None]
        assert socks
        for sock in socks:
            # Linux doubles what it is given (bookkeeping overhead), and reports that.
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) in (65536, 131072)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) in (16384, 32768)
    assert [r.value for r in read_topic(tansu.bootstrap_servers, topic)] == [
        b"through small buffers"
    ]
