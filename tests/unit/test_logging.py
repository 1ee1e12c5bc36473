"""Named loggers per concern: INFO for the lifecycle, DEBUG for request detail, on the
simulated cluster (whose brokers speak the wire protocol) with a fake clock."""

from __future__ import annotations

import logging

from aioproducer import Producer
from aioproducer._core.cluster import BrokerInfo, Cluster, PartitionInfo, TopicInfo
from aioproducer._io.metadata_updater import log_leader_moves
from tests.sim.scenario import Scenario
from tests.sim.world import World, run_world


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.name, record.levelno, record.getMessage()))

    def lines(self, logger: str, level: int) -> list[str]:
        return [m for n, lv, m in self.seen if n == logger and lv == level]


def test_each_concern_logs_under_its_own_name() -> None:
    async def body(p: Producer, w: World) -> None:
        for i in range(5):
            await p.send("t0", b"%d" % i, partition=0)
        await p.flush()

    world = Scenario(body, enable_idempotence=True)
    world.tracing = True  # the simulator sets the "aioproducer" logger to DEBUG then
    records = Records()
    logger = logging.getLogger("aioproducer")
    logger.addHandler(records)
    try:
        run_world(world)
    finally:
        logger.removeHandler(records)
    assert world.error is None and not world.failures, world.failures
    info, debug = logging.INFO, logging.DEBUG
    connected = records.lines("aioproducer.connection", info)
    assert any(m.startswith("connected to broker") for m in connected), connected
    assert any("producer id" in m for m in records.lines("aioproducer.idempotence", info))
    bootstrap = world.cluster.bootstrap_servers(world.params.bootstrap)
    assert [m for m in records.lines("aioproducer", info) if "started" in m or "closed" in m] == [
        f"producer sim started: 3 broker(s) reached through {bootstrap}",
        "producer sim closed",
    ]
    requests = records.lines("aioproducer.sender", debug)
    assert any(m.startswith("produce request to broker") and "5 record(s)" in m for m in requests)
    wire = records.lines("aioproducer.connection", debug)
    assert any(m.startswith("-> broker") and "Produce v" in m for m in wire)
    assert any(m.startswith("<- broker") for m in wire)
    assert any(
        m.startswith("metadata from broker") for m in records.lines("aioproducer.metadata", debug)
    )
    # Nothing a user must act on happened: no WARNING or worse.
    assert not [r for r in records.seen if r[1] >= logging.WARNING], records.seen


def test_a_leader_move_is_one_info_line() -> None:
    def cluster(leaders: list[int]) -> Cluster:
        parts = [PartitionInfo("t", i, leader) for i, leader in enumerate(leaders)]
        brokers = {n: BrokerInfo(n, "h", 9092 + n) for n in (1, 2, 3)}
        return Cluster(brokers, {"t": TopicInfo("t", parts, [0, 1, 2])})

    records = Records()
    logger = logging.getLogger("aioproducer.metadata")
    logger.addHandler(records)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        log_leader_moves(cluster([1, 2, 3]), cluster([1, 3, 3]), "metadata")
        log_leader_moves(cluster([1, 2, 3]), cluster([1, 2, 3]), "metadata")
    finally:
        logger.removeHandler(records)
        logger.setLevel(old)
    assert records.lines("aioproducer.metadata", logging.INFO) == [
        "leader moved for 1 partition(s) (metadata): t-1 2->3"
    ]
