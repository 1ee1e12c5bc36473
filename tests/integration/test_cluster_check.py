"""metadata_cluster_check_enable (KIP-1242) against Kafka 4.4: ApiVersions v5 names the cluster
and node the client means to reach, and a broker that is not that node refuses it with
REBOOTSTRAP_REQUIRED."""

from __future__ import annotations

import pytest

from aioproducer import KafkaConnectionError, Producer
from aioproducer._io.connection import BrokerConnection
from aioproducer.errors import RebootstrapRequiredError
from aioproducer.testing import KafkaCluster, TansuBroker

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


async def _open(kafka: KafkaCluster, node_id: int, cluster_id: str | None) -> BrokerConnection:
    host, port = kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)
    return await BrokerConnection.open(
        node_id,
        host,
        int(port),
        client_id="cluster-check",
        request_timeout_ms=10_000,
        setup_timeout_ms=10_000,
        cluster_id=cluster_id,
    )


async def test_the_right_cluster_and_node_are_accepted(kafka: KafkaCluster) -> None:
    assert kafka.version.startswith("4.4")
    conn = await _open(kafka, 1, kafka.cluster_id)
    try:
        assert conn.versions[18][1] >= 5  # the broker knows v5, so the ids were checked
    finally:
        conn.close()


@pytest.mark.parametrize("wrong", ["cluster", "node"])
async def test_a_misrouted_connection_is_refused(kafka: KafkaCluster, wrong: str) -> None:
    other_cluster = "AAAAAAAAAAAAAAAAAAAAAA"  # a well-formed id that is not this cluster's
    cluster_id, node_id = (other_cluster, 1) if wrong == "cluster" else (kafka.cluster_id, 7)
    with pytest.raises(KafkaConnectionError, match="REBOOTSTRAP_REQUIRED") as info:
        await _open(kafka, node_id, cluster_id)
    assert info.value.retriable and info.value.invalid_metadata
    assert isinstance(info.value.__cause__, RebootstrapRequiredError)
    # Without the ids (a bootstrap address, or the check off), nothing is checked.
    (await _open(kafka, node_id, None)).close()


async def test_the_producer_sends_its_clusters_id_and_works(kafka: KafkaCluster) -> None:
    """After the bootstrap connection, the producer connects to node 1 with the cluster id it
    learnt from Metadata; the 4.4 broker accepts it and records go through."""
    topic = f"cluster-check-{id(kafka)}"
    kafka.create_topic(topic, 1, 1)
    sent: list[str | None] = []
    real_open = BrokerConnection.open.__func__  # type: ignore[attr-defined]

    async def spy(cls: type[BrokerConnection], node_id: int, /, *a: object, **kw: object) -> object:
        if node_id >= 0:
            sent.append(kw.get("cluster_id"))  # type: ignore[arg-type]
        return await real_open(cls, node_id, *a, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(BrokerConnection, "open", classmethod(spy))
    try:
        for enabled in (True, False):
            sent.clear()
            async with Producer(
                bootstrap_servers=kafka.bootstrap_servers, metadata_cluster_check_enable=enabled
            ) as p:
                md = await p.send_and_wait(topic, b"v")
                assert md.offset >= 0
            assert sent and set(sent) == ({kafka.cluster_id} if enabled else {None})
    finally:
        mp.undo()


async def test_a_broker_without_api_versions_v5_is_not_asked_it(tansu: TansuBroker) -> None:
    """Tansu drops a connection that asks an ApiVersions version it lacks (instead of
    answering UNSUPPORTED_VERSION): the ids go only to brokers that advertised v5."""
    topic = f"cluster-check-{id(tansu)}"
    tansu.create_topic(topic, 1, 1)
    async with Producer(bootstrap_servers=tansu.bootstrap_servers, max_block_ms=20_000) as p:
        assert (await p.send_and_wait(topic, b"v")).offset >= 0
