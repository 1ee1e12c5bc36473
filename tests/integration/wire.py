"""A blocking plain-socket client for interop tests: our encoder and decoder against a real
broker, with no producer machinery in between."""

from __future__ import annotations

import socket
from typing import Any

from aioproducer._protocol import framing
from aioproducer._protocol._schema import Message
from aioproducer._protocol.messages import RESPONSES, ApiVersionsRequest, ApiVersionsResponse
from aioproducer._protocol.versions import broker_ranges
from aioproducer.errors import ProtocolError


class WireClient:
    def __init__(self, bootstrap: str) -> None:
        # Like any client, the first address that answers: a test may have one of them down
        # (fault tests take brokers down and bring them back on a timer).
        refused: list[str] = []
        for address in bootstrap.split(","):
            host, port = address.rsplit(":", 1)
            try:
                self.sock = socket.create_connection((host, int(port)), timeout=30)
                break
            except ConnectionRefusedError:
                refused.append(address)
        else:
            raise ConnectionRefusedError(f"no broker of {bootstrap} accepts connections: {refused}")
        self.decoder = framing.FrameDecoder()
        self.correlation_id = 0
        req = ApiVersionsRequest(
            client_software_name="aioproducer-tests", client_software_version="0"
        )
        try:
            av = self.call(req, 3)
        except ProtocolError:  # librdkafka's mock answers v3 in a non-standard format
            av = ApiVersionsResponse(error_code=35)
        if av.error_code == 35:
            av = self.call(req, 0)
        assert av.error_code == 0, av
        self.ranges = broker_ranges(av)

    def common_versions(self, cls: type[Message]) -> range:
        lo, hi = self.ranges[cls.API_KEY]
        return range(max(lo, cls.VALID_VERSIONS.lo), min(hi, cls.VALID_VERSIONS.hi) + 1)

    def call(self, request: Message, version: int) -> Any:
        self.correlation_id += 1
        self.sock.sendall(framing.encode_request(request, version, self.correlation_id, "tests"))
        while True:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(
                    f"broker closed the connection ({type(request).__name__} v{version})"
                )
            frames = self.decoder.feed(chunk)
            if frames:
                cid, resp = framing.decode_response(frames[0], RESPONSES[request.API_KEY], version)
                assert cid == self.correlation_id
                return resp

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
