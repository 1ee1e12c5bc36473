"""KIP-1242's ids in ApiVersions against a broker older than Kafka 4.4 (a loopback server
answering as 4.0-4.3 do): v5 is refused with UNSUPPORTED_VERSION and the handshake goes on at
the version the broker knows, so a rolling upgrade or an older broker beside 4.4 ones still
connects. (Kafka 4.4 itself: tests/integration/test_cluster_check.py.)"""

from __future__ import annotations

import asyncio
import struct

import pytest

from aioproducer._io.connection import BrokerConnection
from aioproducer._protocol.messages import ApiVersionsResponse
from aioproducer.errors import UnsupportedVersionError

from .test_connection import read_request

pytestmark = pytest.mark.asyncio


def frame(cid: int, resp: ApiVersionsResponse, version: int) -> bytes:
    body = struct.pack(">i", cid) + resp.encode(version)
    return struct.pack(">i", len(body)) + body


async def test_an_older_broker_is_asked_again_at_the_version_it_knows() -> None:
    asked: list[int] = []
    ranges = [ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=4)]

    handled = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, version, cid = await read_request(reader)
            asked.append(version)
            refusal = ApiVersionsResponse(error_code=UnsupportedVersionError.code, api_keys=ranges)
            writer.write(frame(cid, refusal, 0))  # KIP-511: a v0 answer naming its range
            _, version, cid = await read_request(reader)
            asked.append(version)
            writer.write(frame(cid, ApiVersionsResponse(error_code=0, api_keys=ranges), 3))
            await reader.read()  # until the client closes
        finally:
            writer.close()
            handled.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await BrokerConnection.open(
            1,
            "127.0.0.1",
            port,
            client_id="t",
            request_timeout_ms=5000,
            setup_timeout_ms=5000,
            cluster_id="AAAAAAAAAAAAAAAAAAAAAA",
        )
        assert asked == [5, 4]
        assert conn.versions[18] == (0, 4)
        conn.close()
        await asyncio.wait_for(handled.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()
