"""BrokerConnection against a scripted loopback server: framing, correlation, timeouts, limits."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from aioproducer import KafkaConnectionError, KafkaTimeoutError, ProtocolError
from aioproducer._io.connection import BrokerConnection
from aioproducer._protocol.framing import encode_request
from aioproducer._protocol.messages import ApiVersionsResponse, MetadataRequest, MetadataResponse

from ..helpers import wait_until

pytestmark = pytest.mark.asyncio
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
#: The ``serve`` fixture: start a loopback server that answers ApiVersions, then runs a handler.
Serve = Callable[[Handler], Awaitable[tuple[str, int]]]


def api_versions_body(correlation_id: int) -> bytes:
    resp = ApiVersionsResponse(
        error_code=0,
        api_keys=[
            ApiVersionsResponse.ApiVersion(api_key=k, min_version=0, max_version=v)
            for k, v in ((0, 11), (3, 12), (18, 4))
        ],
    )
    body = struct.pack(">i", correlation_id) + resp.encode(3)
    return struct.pack(">i", len(body)) + body


async def read_request(reader: asyncio.StreamReader) -> tuple[int, int, int]:
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    data = await reader.readexactly(size)
    api_key, version, cid = struct.unpack_from(">hhi", data)
    return api_key, version, cid


def metadata_frame(cid: int, version: int = 12) -> bytes:
    body = struct.pack(">i", cid) + b"\0" + MetadataResponse().encode(version)
    return struct.pack(">i", len(body)) + body


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(after_handshake: Handler) -> tuple[str, int]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                _, _, cid = await read_request(reader)
                writer.write(api_versions_body(cid))
                await after_handshake(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return "127.0.0.1", server.sockets[0].getsockname()[1]

    yield start
    for s in servers:
        s.close()
        await s.wait_closed()


async def open_conn(addr: tuple[str, int], request_timeout_ms: int = 5000) -> BrokerConnection:
    return await BrokerConnection.open(
        1,
        addr[0],
        addr[1],
        client_id="t",
        request_timeout_ms=request_timeout_ms,
        setup_timeout_ms=5000,
    )


async def test_negotiates_versions_and_matches_in_order_responses(serve: Serve) -> None:
    async def h(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cids = [(await read_request(reader))[2] for _ in range(3)]
        for cid in cids:
            writer.write(metadata_frame(cid))
        await asyncio.sleep(1)

    conn = await open_conn(await serve(h))
    assert conn.versions[3] == (0, 12) and conn.version_for(3) == 12
    futs = [conn.send(MetadataRequest(topics=[]), 12) for _ in range(3)]
    assert conn.in_flight == 3
    for f in futs:
        assert f is not None
        assert isinstance(await f, MetadataResponse)
    assert conn.in_flight == 0
    conn.close()


@pytest.mark.parametrize("fault", ["wrong_id", "unsolicited", "huge_frame", "garbage"])
async def test_a_misbehaving_broker_fails_the_connection_cleanly(serve: Serve, fault: str) -> None:
    async def h(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cid = (await read_request(reader))[2]
        if fault == "wrong_id":
            writer.write(metadata_frame(cid + 7))
        elif fault == "unsolicited":
            writer.write(metadata_frame(cid))
            writer.write(metadata_frame(cid + 1))
        elif fault == "huge_frame":
            writer.write(struct.pack(">i", 2**31 - 1) + b"\0" * 100)
        else:
            body = struct.pack(">i", cid) + b"\0" + b"\xff" * 13
            writer.write(struct.pack(">i", len(body)) + body)
        await asyncio.sleep(1)

    conn = await open_conn(await serve(h))
    fut = conn.send(MetadataRequest(topics=[]), 12)
    assert fut is not None  # a request that expects a response
    if fault == "unsolicited":
        await fut  # the first answer is fine
        await wait_until(lambda: conn.closed, "the connection to close on the unsolicited frame")
    else:
        with pytest.raises(ProtocolError):
            await fut
    assert conn.closed
    with pytest.raises(KafkaConnectionError):
        conn.send(MetadataRequest(topics=[]), 12)


async def test_request_timeout_fails_every_in_flight_request(serve: Serve) -> None:
    async def h(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)  # never answers

    conn = await open_conn(await serve(h), request_timeout_ms=300)
    f1 = conn.send(MetadataRequest(topics=[]), 12)
    f2 = conn.send(MetadataRequest(topics=[]), 12)
    assert f1 is not None and f2 is not None
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(KafkaTimeoutError, match="request_timeout_ms"):
        await f1
    with pytest.raises(KafkaTimeoutError):
        await f2
    assert 0.25 < loop.time() - t0 < 2 and conn.closed


async def test_a_closed_socket_fails_in_flight_requests_as_retriable(serve: Serve) -> None:
    async def h(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # then close without answering

    conn = await open_conn(await serve(h))
    fut = conn.send(MetadataRequest(topics=[]), 12)
    assert fut is not None
    with pytest.raises(KafkaConnectionError) as info:
        await fut
    assert info.value.retriable


async def test_connection_refused_is_a_kafka_connection_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(KafkaConnectionError, match=f"127.0.0.1:{port}"):
        await open_conn(("127.0.0.1", port))


async def test_request_frames_carry_size_and_header() -> None:
    frame = encode_request(MetadataRequest(topics=[]), 12, 5, "cid")
    assert struct.unpack_from(">ihhi", frame) == (len(frame) - 4, 3, 12, 5)


async def test_the_reported_software_version_is_one_kip_511_accepts() -> None:
    """A local version (``+`` and more) would make the broker refuse ApiVersions."""
    import re

    from aioproducer._io.connection import SOFTWARE_VERSION, software_version

    kafka_rule = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$")
    for v in (SOFTWARE_VERSION, software_version("1.0+g1234.dirty"), software_version("+")):
        assert kafka_rule.match(v), v
    assert software_version("0.1.0.dev0") == "0.1.0.dev0"


async def test_a_response_handler_runs_as_the_answer_is_read_and_failures_a_turn_later(
    serve: Serve,
) -> None:
    """``on_response`` (the produce path): the handler runs inside ``data_received``, one loop
    turn sooner than a future's callback; a failure reaches it on the next turn, never inside
    whatever closed the connection."""
    answer = asyncio.Event()

    async def h(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = (await read_request(reader))[2]
        await read_request(reader)
        await answer.wait()
        writer.write(metadata_frame(first))  # the second request is never answered
        await asyncio.sleep(5)

    conn = await open_conn(await serve(h))
    got: list[tuple[object, BaseException | None]] = []
    request = MetadataRequest(topics=[])
    for _ in range(2):
        reply = conn.send_encoded(
            3,
            12,
            lambda cid, client_id: encode_request(request, 12, cid, client_id),
            on_response=lambda body, exc: got.append((body, exc)),
        )
        assert reply is not None
    original = conn.data_received
    in_data_received: list[int] = []

    def data_received(data: bytes) -> None:
        original(data)
        in_data_received.append(len(got))

    conn.data_received = data_received  # type: ignore[method-assign]
    answer.set()
    await wait_until(lambda: bool(got), "the answer handled")
    assert in_data_received[0] == 1  # handled inside data_received, not a turn later
    assert isinstance(got[0][0], MetadataResponse) and got[0][1] is None
    conn.close()
    assert len(got) == 1  # the failure is handed over on the next turn
    await asyncio.sleep(0)
    assert got[1][0] is None and isinstance(got[1][1], KafkaConnectionError)
