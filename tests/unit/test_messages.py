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
from aioproducer._protocol.messages import (
    REQUESTS,
    RESPONSES,
    ApiVersionsRequest,
    MetadataRequest,
    ProduceRequest,
    ProduceResponse,
)
from aioproducer._protocol.produce import encode_produce_request
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


REQUEST_CASES = [(cls, v) for cls, v in CASES if cls in REQUESTS.values()]


@pytest.mark.parametrize(
    ("cls", "version"), REQUEST_CASES, ids=[f"{c.__name__}-v{v}" for c, v in REQUEST_CASES]
)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decode_request_reads_what_encode_request_writes(
    cls: type[Message], version: int, data: st.DataObject
) -> None:
    msg = data.draw(struct_strategy(cls, version))
    client_id = data.draw(st.none() | st.text(max_size=20))
    frame = framing.encode_request(msg, version, 12345, client_id)
    header, request = framing.decode_request(frame[4:])
    assert header == framing.RequestHeader(cls.API_KEY, version, 12345, client_id)
    assert type(request) is cls and request == msg


@pytest.mark.parametrize("version", range(3, 12))
def test_decode_request_reads_the_fast_produce_encoder(version: int) -> None:
    frame = encode_produce_request(version, 7, "c", None, -1, 3000, [("t", [(2, [b"ab", b"c"])])])
    header, request = framing.decode_request(frame[4:])
    assert header == framing.RequestHeader(0, version, 7, "c")
    assert isinstance(request, ProduceRequest)
    assert (request.acks, request.timeout_ms, request.transactional_id) == (-1, 3000, None)
    [topic] = request.topic_data
    assert topic.name == "t"
    assert [(p.index, p.records) for p in topic.partition_data] == [(2, b"abc")]


def test_decode_request_skips_the_header_tagged_fields() -> None:
    frame = bytearray(framing.encode_request(MetadataRequest(topics=None), 12, 9, "cid")[4:])
    tags_at = 2 + 2 + 4 + 2 + 3  # api key, version, correlation id, client id "cid"
    assert frame[tags_at] == 0
    frame[tags_at : tags_at + 1] = b"\x02\x00\x01x\x05\x00"  # tag 0 (b"x"), tag 5 (empty)
    header, request = framing.decode_request(bytes(frame))
    assert header == framing.RequestHeader(3, 12, 9, "cid")
    assert request == MetadataRequest(topics=None)


def test_decode_request_refuses_a_bad_frame() -> None:
    frame = framing.encode_request(MetadataRequest(topics=[]), 4, 1, None)[4:]
    assert framing.decode_request(frame)[0].client_id is None
    for cut in range(len(frame)):
        with pytest.raises(ProtocolError):
            framing.decode_request(frame[:cut])
    with pytest.raises(ProtocolError, match="1 bytes after the body"):
        framing.decode_request(frame + b"\0")
    with pytest.raises(ProtocolError, match="API key 999"):
        framing.decode_request(b"\x03\xe7" + frame[2:])
    with pytest.raises(UnsupportedVersion, match="MetadataRequest has no version 99"):
        framing.decode_request(frame[:2] + b"\x00\x63" + frame[4:])


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
