"""The hand-written Produce codec (``_protocol/produce.py``) against the generic schema codec:
the same request bytes at every version, and the same acknowledgements from any response, or
None (the generic codec's turn) for a response that holds anything but success."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aioproducer._protocol import framing
from aioproducer._protocol.messages import ProduceRequest, ProduceResponse
from aioproducer._protocol.produce import (
    HIGHEST,
    LOWEST,
    V12_AS,
    Ack,
    PartitionData,
    decode_produce_acks,
    decode_produce_v12,
    encode_produce_request,
)

TopicData = list[tuple[str, list[PartitionData]]]


def schema(version: int) -> int:
    """The generated schema's version for ``version``: Produce v12 is v11's format (KIP-890),
    beyond the vendored schema."""
    return V12_AS if version == 12 else version


versions = st.integers(LOWEST, HIGHEST)
names = st.text(min_size=1, max_size=200)
records = st.lists(st.binary(max_size=300), min_size=1, max_size=3)  # a batch, in parts
partitions = st.lists(st.tuples(st.integers(0, 2**31 - 1), records), min_size=1, max_size=4)
topics = st.lists(st.tuples(names, partitions), min_size=1, max_size=3)
# Some lists long enough for a two-byte compact-array length.
many_partitions = st.lists(
    st.tuples(st.integers(0, 2**31 - 1), st.lists(st.binary(max_size=4), min_size=1, max_size=1)),
    min_size=120,
    max_size=140,
)


def generic_request(
    version: int,
    cid: int,
    client_id: str | None,
    txn: str | None,
    acks: int,
    timeout: int,
    data: TopicData,
) -> bytes:
    request = ProduceRequest(
        transactional_id=txn,
        acks=acks,
        timeout_ms=timeout,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=name,
                partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(
                        index=i, records=b"".join(parts)
                    )
                    for i, parts in ps
                ],
            )
            for name, ps in data
        ],
    )
    frame = framing.encode_request(request, schema(version), cid, client_id)
    return frame[:6] + struct.pack(">h", version) + frame[8:]  # the header names the version


@settings(max_examples=300)
@given(
    version=versions,
    cid=st.integers(0, 2**31 - 1),
    client_id=st.none() | st.text(max_size=50),
    txn=st.none() | st.text(max_size=50),
    acks=st.sampled_from([-1, 0, 1]),
    timeout=st.integers(0, 2**31 - 1),
    data=topics | st.builds(lambda p: [("t", p)], many_partitions),
)
def test_request_bytes_equal_the_generic_codec(
    version: int,
    cid: int,
    client_id: str | None,
    txn: str | None,
    acks: int,
    timeout: int,
    data: TopicData,
) -> None:
    fast = encode_produce_request(version, cid, client_id, txn, acks, timeout, data)
    assert fast == generic_request(version, cid, client_id, txn, acks, timeout, data)
    (size,) = struct.unpack_from(">i", fast)
    assert size == len(fast) - 4


def test_request_refuses_versions_it_does_not_write() -> None:
    for version in (LOWEST - 1, HIGHEST + 1):
        with pytest.raises(ValueError, match=f"Produce v{version}"):
            encode_produce_request(version, 1, None, None, -1, 1000, [("t", [(0, [b"x"])])])


P = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
partition_ok = st.builds(
    P,
    index=st.integers(0, 2**31 - 1),
    error_code=st.just(0),
    base_offset=st.integers(-1, 2**63 - 1),
    log_append_time_ms=st.integers(-1, 2**63 - 1),
    log_start_offset=st.integers(-1, 2**63 - 1),
)
partition_any = st.builds(
    P,
    index=st.integers(0, 2**31 - 1),
    error_code=st.sampled_from([0, 0, 1, 6, 45, 46, 87]),
    base_offset=st.integers(-1, 2**63 - 1),
    log_append_time_ms=st.integers(-1, 2**63 - 1),
    record_errors=st.lists(
        st.builds(
            P.BatchIndexAndErrorMessage,
            batch_index=st.integers(0, 100),
            batch_index_error_message=st.none() | st.text(max_size=20),
        ),
        max_size=2,
    ),
    error_message=st.none() | st.text(max_size=20),
    current_leader=st.builds(
        P.LeaderIdAndEpoch, leader_id=st.integers(-1, 5), leader_epoch=st.integers(-1, 5)
    ),
)


def response_frame(resp: ProduceResponse, version: int, cid: int = 7) -> bytes:
    buf = bytearray(struct.pack(">i", cid))
    if version >= 9:
        buf.append(0)  # response header v1: no tagged fields
    resp.encode_into(buf, schema(version))
    return bytes(buf)


def generic_acks(frame: bytes, version: int) -> list[Ack] | None:
    """What the fast path must return: the acks when every partition succeeded and nothing
    else is in the response (at this version), else None."""
    _, resp = framing.decode_response(frame, ProduceResponse, schema(version))
    acks: list[Ack] = []
    for t in resp.responses:
        for p in t.partition_responses:
            if p.error_code or p.record_errors or p.error_message is not None:
                return None
            if version >= 10 and p.current_leader.leader_id != -1:
                return None
            acks.append((t.name, p.index, p.base_offset, p.log_append_time_ms))
    if version >= 10 and resp.node_endpoints:
        return None
    if resp.throttle_time_ms:  # KIP-219: the sender must see it
        return None
    return acks


def responses(
    partition: st.SearchStrategy[ProduceResponse.TopicProduceResponse.PartitionProduceResponse],
) -> st.SearchStrategy[ProduceResponse]:
    return st.builds(
        ProduceResponse,
        responses=st.lists(
            st.builds(
                ProduceResponse.TopicProduceResponse,
                name=names,
                partition_responses=st.lists(partition, max_size=4),
            ),
            max_size=3,
        ),
        throttle_time_ms=st.integers(0, 1000),
        node_endpoints=st.lists(
            st.builds(
                ProduceResponse.NodeEndpoint,
                node_id=st.integers(0, 5),
                host=st.just("127.0.0.1"),
                port=st.integers(1, 65535),
            ),
            max_size=1,
        ),
    )


@settings(max_examples=300)
@given(version=versions, resp=responses(partition_ok))
def test_all_success_responses_are_read_by_the_fast_path(
    version: int, resp: ProduceResponse
) -> None:
    if version < 10:
        resp.node_endpoints = []
    frame = response_frame(resp, version)
    expected = generic_acks(frame, version)
    if not resp.node_endpoints and not resp.throttle_time_ms:
        assert expected is not None
    assert decode_produce_acks(frame, version) == expected


@settings(max_examples=300)
@given(version=versions, resp=responses(partition_any))
def test_any_response_is_read_the_same_or_left_to_the_generic_codec(
    version: int, resp: ProduceResponse
) -> None:
    frame = response_frame(resp, version)
    assert decode_produce_acks(frame, version) == generic_acks(frame, version)


def test_long_arrays_and_names_are_read_by_the_fast_path() -> None:
    # 200 partitions and a 300-byte name: two-byte compact lengths at the flexible versions.
    resp = ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name="t" * 300, partition_responses=[P(index=i, base_offset=i) for i in range(200)]
            )
        ]
    )
    for version in range(LOWEST, HIGHEST + 1):
        frame = response_frame(resp, version)
        acks = decode_produce_acks(frame, version)
        assert acks == generic_acks(frame, version)
        assert acks is not None and len(acks) == 200


@given(version=versions, resp=responses(partition_ok), cut=st.integers(1, 40))
def test_truncated_frames_are_left_to_the_generic_codec(
    version: int, resp: ProduceResponse, cut: int
) -> None:
    frame = response_frame(resp, version)
    truncated = frame[: max(4, len(frame) - cut)]
    assert decode_produce_acks(truncated, version) is None


def test_a_v12_answer_the_fast_path_leaves_is_read_as_v11() -> None:
    resp = ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name="t", partition_responses=[P(index=0, error_code=47, base_offset=-1)]
            )
        ]
    )
    frame = response_frame(resp, 12)
    assert decode_produce_acks(frame, 12) is None
    read = decode_produce_v12(frame, 12)
    assert isinstance(read, ProduceResponse)
    assert read.responses[0].partition_responses[0].error_code == 47
    ok = ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name="t", partition_responses=[P(index=3, base_offset=42)]
            )
        ]
    )
    assert decode_produce_v12(response_frame(ok, 12), 12) == [("t", 3, 42, -1)]
