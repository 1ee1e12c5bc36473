"""A tiny fake broker for hostile responses (RELIABILITY.md §6 [F]).

It speaks just enough Kafka — ApiVersions, Metadata (itself as node 1, every requested topic
with one partition it leads), InitProducerId, Produce — using aioproducer's own message
classes. Produce answers follow a queue of scripted faults, one per request; with the queue
empty it answers correctly, so a producer's recovery can be checked.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections import deque
from typing import Any, TypeVar

from aioproducer._protocol.framing import decode_request
from aioproducer._protocol.messages import (
    ApiVersionsResponse,
    InitProducerIdResponse,
    MetadataResponse,
    ProduceResponse,
    SaslAuthenticateResponse,
    SaslHandshakeResponse,
)
from aioproducer._records.reader import read_batches

FAULTS = (
    "garbage",
    "neg_len",
    "zero_len",
    "tiny_len",
    "huge_len",
    "unsolicited",
    "duplicate",
    "truncated",
    "unknown_error",
)

_Broker = TypeVar("_Broker", bound="FakeBroker")


class FakeBroker:
    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        sasl_users: dict[str, str] | None = None,
        partitions: int = 1,
        session_lifetime_ms: int = 0,
        sasl_delay: float = 0.0,
    ) -> None:
        self.ssl_context = ssl_context
        self.partitions = partitions  # of every topic, all led by this broker
        self.sasl_users = sasl_users  # SASL/PLAIN accounts; None: no SASL
        self.authenticated = 0
        #: KIP-368: the session lifetime sent on success; how long each SaslHandshake takes.
        self.session_lifetime_ms = session_lifetime_ms
        self.sasl_delay = sasl_delay
        self.connections = 0
        #: Non-SASL requests received between a SaslHandshake and its SaslAuthenticate (Kafka
        #: closes the connection for one: a client must hold its requests while it
        #: re-authenticates).
        self.violations = 0
        self._authenticating: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.faults: deque[str] = deque()
        self.records: list[bytes | None] = []
        self.produce_requests = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self: _Broker) -> _Broker:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.close()
        await self._server.wait_closed()

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                size = struct.unpack(">i", await reader.readexactly(4))[0]
                frame = await reader.readexactly(size)
                if not await self._answer(frame, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, frame: bytes, writer: asyncio.StreamWriter) -> bool:
        header, message = decode_request(frame)
        api_key, version, cid = header.api_key, header.api_version, header.correlation_id
        flexible = message.is_flexible(version)
        request: Any = message  # its class follows from api_key, on which the code below turns
        if writer in self._authenticating and api_key not in (17, 36):
            self.violations += 1
            return False
        if api_key == 18:
            apis = [(0, 3, 9), (3, 1, 9), (18, 0, 3), (22, 0, 4)]
            if self.sasl_users is not None:
                apis += [(17, 0, 1), (36, 0, 2)]
            body = ApiVersionsResponse(
                error_code=0,
                api_keys=[
                    ApiVersionsResponse.ApiVersion(api_key=k, min_version=lo, max_version=hi)
                    for k, lo, hi in apis
                ],
            ).encode(version)
            writer.write(_frame(cid, body, header_tags=False))
            return True
        if api_key == 17:
            ok = self.sasl_users is not None and request.mechanism == "PLAIN"
            self._authenticating.add(writer)
            await asyncio.sleep(self.sasl_delay)  # a client that does not hold sends meanwhile
            body = SaslHandshakeResponse(error_code=0 if ok else 33, mechanisms=["PLAIN"]).encode(
                version
            )
            writer.write(_frame(cid, body, False))
            return True
        if api_key == 36:
            auth_bytes: bytes = request.auth_bytes
            _, user, password = auth_bytes.split(b"\0")
            users = self.sasl_users or {}
            good = users.get(user.decode()) == password.decode()
            self.authenticated += good
            self._authenticating.discard(writer)
            body = SaslAuthenticateResponse(
                session_lifetime_ms=self.session_lifetime_ms if good else 0,
                error_code=0 if good else 58,
                error_message=None
                if good
                else "Authentication failed: Invalid username or password",
            ).encode(version)
            writer.write(_frame(cid, body, flexible))
            return good
        if api_key == 3:
            P = MetadataResponse.MetadataResponseTopic.MetadataResponsePartition
            topics = [
                MetadataResponse.MetadataResponseTopic(
                    name=t.name,
                    partitions=[
                        P(partition_index=i, leader_id=1, replica_nodes=[1], isr_nodes=[1])
                        for i in range(self.partitions)
                    ],
                )
                for t in request.topics or []
            ]
            body = MetadataResponse(
                brokers=[
                    MetadataResponse.MetadataResponseBroker(
                        node_id=1, host="127.0.0.1", port=self.port
                    )
                ],
                topics=topics,
            ).encode(version)
        elif api_key == 22:
            body = InitProducerIdResponse(producer_id=7, producer_epoch=0).encode(version)
        else:
            return await self._produce(request, version, cid, flexible, writer)
        writer.write(_frame(cid, body, flexible))
        return True

    async def _produce(
        self, request: object, version: int, cid: int, flexible: bool, writer: asyncio.StreamWriter
    ) -> bool:
        self.produce_requests += 1
        fault = self.faults.popleft() if self.faults else "ok"
        if fault == "neg_len":
            writer.write(struct.pack(">i", -5))
            return False
        if fault in ("zero_len", "tiny_len"):
            writer.write(
                struct.pack(">i", 0) if fault == "zero_len" else struct.pack(">i", 3) + b"\0\0\0"
            )
            return False
        if fault == "huge_len":
            writer.write(struct.pack(">i", 300 * 1024 * 1024))
            for _ in range(64):  # stream 4 MiB of it; the client must stop reading first
                writer.write(b"\0" * 65536)
                await writer.drain()
            return False
        if fault == "garbage":
            # Valid size and correlation id; the body claims 2**31-1 topics.
            writer.write(_frame(cid, b"\x7f\xff\xff\xff" + b"\x00" * 8, flexible))
            return True
        topic = request.topic_data[0]  # type: ignore[attr-defined]
        part = topic.partition_data[0]
        code = 0
        base = len(self.records)
        if fault == "unknown_error":
            code = 9999  # a code this client has never heard of
        else:
            for batch in read_batches(part.records):
                self.records.extend(rec.value for rec in batch.records)
        P = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
        body = ProduceResponse(
            responses=[
                ProduceResponse.TopicProduceResponse(
                    name=topic.name,
                    partition_responses=[
                        P(index=part.index, error_code=code, base_offset=base if code == 0 else -1)
                    ],
                )
            ]
        ).encode(version)
        good = _frame(cid, body, flexible)
        if fault == "unsolicited":
            writer.write(_frame(cid + 1000, body, flexible))
        if fault == "truncated":
            writer.write(good[:10])
            return False
        writer.write(good)
        if fault == "duplicate":
            writer.write(good)
        return True


def _frame(cid: int, body: bytes, header_tags: bool) -> bytes:
    payload = struct.pack(">i", cid) + (b"\x00" if header_tags else b"") + body
    return struct.pack(">i", len(payload)) + payload
