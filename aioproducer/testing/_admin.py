"""Admin helpers over confluent-kafka: an independent client we did not write.

The harness uses confluent-kafka (librdkafka) for readiness checks, topic creation and
reading data back, so a bug in aioproducer's own protocol code can never hide a bug in the
harness that checks it.
"""

from __future__ import annotations

import time
from typing import Any

from ._errors import HarnessError, MissingToolError


def confluent() -> Any:
    """The ``confluent_kafka`` module, or a clear error naming the extra to install."""
    try:
        import confluent_kafka
        import confluent_kafka.admin
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingToolError(
            "confluent-kafka", "install the test extra: pip install 'aioproducer[test]'"
        ) from exc
    return confluent_kafka


def admin_client(bootstrap_servers: str, client_config: dict[str, Any] | None = None) -> Any:
    """``client_config``: more librdkafka settings (a secured listener's, say)."""
    ck = confluent()
    return ck.admin.AdminClient(
        {
            "bootstrap.servers": bootstrap_servers,
            "broker.address.family": "v4",
            "log_level": 0,
            **(client_config or {}),
        }
    )


def cluster_metadata(
    bootstrap_servers: str,
    timeout: float = 5.0,
    topic: str | None = None,
    client_config: dict[str, Any] | None = None,
) -> Any:
    return admin_client(bootstrap_servers, client_config).list_topics(topic=topic, timeout=timeout)


def wait_for_brokers(bootstrap_servers: str, count: int, deadline: float) -> None:
    """Block until the cluster's metadata lists ``count`` brokers, or raise at ``deadline``."""
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            md = cluster_metadata(bootstrap_servers, timeout=2.0)
            if len(md.brokers) >= count:
                return
            last = HarnessError(f"{len(md.brokers)}/{count} brokers registered")
        except Exception as exc:  # librdkafka raises KafkaException for a broker not up yet
            last = exc
        time.sleep(0.2)
    raise HarnessError(f"brokers at {bootstrap_servers} not ready: {last}")


def create_topic(
    bootstrap_servers: str,
    name: str,
    partitions: int = 1,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> None:
    """Create a topic and wait until every partition has a leader.

    Retries while the cluster settles (a controller just restarted, say) until ``timeout``.
    """
    create_topics(bootstrap_servers, [name], partitions, replication_factor, config, timeout)


def create_topics(
    bootstrap_servers: str,
    names: list[str],
    partitions: int = 1,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> None:
    """Create topics in one request (each with the same settings) and wait for their leaders."""
    ck = confluent()
    deadline = time.monotonic() + timeout
    todo = list(names)
    while todo:
        admin = admin_client(bootstrap_servers)
        new = [
            ck.admin.NewTopic(
                n,
                num_partitions=partitions,
                replication_factor=replication_factor,
                config=dict(config or {}),
            )
            for n in todo
        ]
        futures = admin.create_topics(new, operation_timeout=10, request_timeout=10)
        failed = []
        for name in todo:
            try:
                futures[name].result(timeout=max(15.0, deadline - time.monotonic()))
            except Exception as exc:
                err = exc.args[0] if exc.args and hasattr(exc.args[0], "code") else None
                if err is not None and err.code() == ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    continue  # an earlier attempt went through
                if time.monotonic() > deadline or (
                    err is not None
                    and not err.retriable()
                    and err.code() != ck.KafkaError._TIMED_OUT
                ):
                    raise HarnessError(f"cannot create topic {name!r}: {exc}") from exc
                failed.append(name)
        todo = failed
        if todo:
            time.sleep(0.5)
    if len(names) == 1:
        wait_for_leaders(bootstrap_servers, names[0], partitions, deadline)
        return
    while True:  # many topics: one metadata request for all of them per round
        try:
            md = cluster_metadata(bootstrap_servers, timeout=10.0)
            waiting = [
                n
                for n in names
                if n not in md.topics
                or md.topics[n].error is not None
                or len(md.topics[n].partitions) != partitions
                or any(p.leader < 0 for p in md.topics[n].partitions.values())
            ]
        except Exception as exc:
            waiting, last = list(names), str(exc)
        else:
            last = f"{len(waiting)} topic(s) without leaders for every partition"
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"creating {len(names)} topics: {last}")
        time.sleep(0.2)


def wait_for_leaders(bootstrap_servers: str, topic: str, partitions: int, deadline: float) -> None:
    last = "no metadata"
    while time.monotonic() < deadline:
        try:
            md = cluster_metadata(bootstrap_servers, timeout=2.0, topic=topic)
            tmd = md.topics.get(topic)
            if tmd is not None and tmd.error is None and len(tmd.partitions) == partitions:
                if all(p.leader >= 0 for p in tmd.partitions.values()):
                    return
                last = "a partition has no leader"
            else:
                last = f"topic metadata: {tmd.error if tmd is not None else 'missing'}"
        except Exception as exc:
            last = str(exc)
        time.sleep(0.1)
    raise HarnessError(f"topic {topic!r} has no leaders for all {partitions} partitions: {last}")


def partition_leader(bootstrap_servers: str, topic: str, partition: int) -> int:
    md = cluster_metadata(bootstrap_servers, timeout=5.0, topic=topic)
    return int(md.topics[topic].partitions[partition].leader)


def partition_isr(bootstrap_servers: str, topic: str, partition: int) -> list[int]:
    md = cluster_metadata(bootstrap_servers, timeout=5.0, topic=topic)
    return sorted(int(b) for b in md.topics[topic].partitions[partition].isrs)
