"""Every version of every generated message round-trips; decoders only raise ProtocolError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aioproducer._protocol import framing
from aioproducer._protocol._schema import Message
from aioproducer._protocol.messages import REQUESTS, RESPONSES, ApiVersionsRequest, ProduceResponse
from aioproducer.errors import ProtocolError, UnsupportedVersion

from .strategies import struct_strategy

ROOT = Path(__file__).resolve().parents[2]
CASES = [
    (cls, v)
    for cls in [*REQUESTS.values(), *RESPONSES.values()]
    for v in range(cls.VALID_VERSIONS.lo, cls.VALID_VERSIONS.hi + 1)
]


def test_every_api_the_issue_names_is_generated() -> None:
    names = {c.__name__.removesuffix("Request") for c in REQUESTS.values()}
    assert {
        "ApiVersions",
        "Metadata",
        "Produce",
        "InitProducerId",
        "FindCoordinator",
        "AddPartitionsToTxn",
        "AddOffsetsToTxn",
        "EndTxn",
        "TxnOffsetCommit",
        "SaslHandshake",
        "SaslAuthenticate",
        "CreateTopics",
        "DeleteTopics",
    } <= names
    assert set(REQUESTS) == set(RESPONSES)


@pytest.mark.parametrize(("cls", "version"), CASES, ids=[f"{c.__name__}-v{v}" for c, v in CASES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(cls: type[Message], version: int, data: st.DataObject) -> None:
    msg = data.draw(struct_strategy(cls, version))
    encoded = msg.encode(version)
    assert cls.decode(encoded, version) == msg
    # Every strict prefix is a ProtocolError, never IndexError/struct.error.
    cut = data.draw(st.integers(0, max(0, len(encoded) - 1)))
    if cut < len(encoded):
        with pytest.raises(ProtocolError):
            cls.decode(encoded[:cut], version)


@pytest.mark.parametrize(("cls", "version"), CASES, ids=[f"{c.__name__}-v{v}" for c, v in CASES])
@settings(max_examples=30, deadline=None)
@given(junk=st.binary(max_size=200), data=st.data())
def test_fuzz_decoders_raise_only_protocol_error(
    cls: type[Message], version: int, junk: bytes, data: st.DataObject
) -> None:
    try:
        cls.decode(junk, version)
    except ProtocolError:
        pass
    # Mutate a valid encoding: flip bytes, then decode.
    msg = data.draw(struct_strategy(cls, version))
    enc = bytearray(msg.encode(version))
    if enc:
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(enc) - 1))
            enc[i] = data.draw(st.integers(0, 255))
    try:
        cls.decode(bytes(enc), version)
    except ProtocolError:
        pass


def test_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedVersion, match="ProduceResponse has no version 99"):
        ProduceResponse().encode(99)


def test_request_header_v1_and_v2() -> None:
    req = ApiVersionsRequest(client_software_name="a", client_software_version="b")
    v0 = framing.encode_request(req, 0, 7, "cid")
    assert v0 == b"\x00\x00\x00\x0d" + b"\x00\x12\x00\x00\x00\x00\x00\x07\x00\x03cid"
    v3 = framing.encode_request(req, 3, 7, None)
    # header v2: api key, version, correlation id, null client id (int16 -1), no tags; then body
    assert v3[4:14] == b"\x00\x12\x00\x03\x00\x00\x00\x07\xff\xff"
    assert v3[14] == 0 and v3[15:] == b"\x02a\x02b\x00"


def test_frame_decoder_checks_size_before_buffering() -> None:
    dec = framing.FrameDecoder(max_frame=1000)
    assert dec.feed(b"\x00\x00\x00\x03ab") == []
    assert dec.feed(b"c\x00\x00") == [b"abc"]
    assert dec.feed(b"\x00\x01x") == [b"x"]
    with pytest.raises(ProtocolError, match="exceeds"):
        framing.FrameDecoder(max_frame=1000).feed(b"\x7f\xff\xff\xff")
    with pytest.raises(ProtocolError, match="negative"):
        framing.FrameDecoder().feed(b"\xff\xff\xff\xfe")


def test_checked_in_generated_code_is_current() -> None:
    # The generator's default input: the schemas vendored in the repository, so a clone needs
    # nothing beside it ($KAFKA_PROTOCOL_DIR, an override, is left out).
    assert (ROOT / "tools" / "kafka-protocol" / "error-codes.tsv").is_file()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_PROTOCOL_DIR"}
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_protocol.py"), "--check"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, f"run tools/gen_protocol.py: {res.stderr}"
