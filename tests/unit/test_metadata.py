"""When metadata is asked for, and for which topics (Java's ``ProducerMetadata``): full
updates on request, after a failure or at max age; partial updates for pending topics, a new
topic at once; partial answers merged into the snapshot."""

from __future__ import annotations

from aioproducer._core.cluster import Cluster, Metadata, TopicPartition

from .fakes import make_cluster


def started(now: int = 0) -> Metadata:
    """Metadata after the first (full, topic-less) update that learns the brokers."""
    md = Metadata(max_age_ms=300_000, max_idle_ms=300_000, refresh_backoff_ms=100)
    assert md.time_to_next_update(now) == 0
    assert md.topics_to_request(now) == ([], False)
    md.attempt(now)
    md.update(make_cluster({}), now)
    return md


def test_a_new_topic_is_asked_for_at_once_alone_and_merged() -> None:
    md = started()
    md.update(make_cluster({"a": [1, 2]}), 1, ["a"])
    md.add_topic("a", 1)  # known by now in this test: not new to the snapshot, new to topics
    assert md.topics_to_request(1) == (["a"], True)
    md.attempt(1)
    md.update(make_cluster({"a": [1, 2]}), 2, ["a"])
    assert md.add_topic("b", 2)
    assert md.time_to_next_update(2) == 0  # no backoff for a topic never asked for
    assert md.topics_to_request(2) == (["b"], True)
    md.attempt(2)
    md.update(make_cluster({"b": [3]}), 3, ["b"])
    c = md.cluster
    assert set(c.topics) == {"a", "b"}
    assert c.leader_for(TopicPartition("a", 1)) == 2 and c.leader_for(TopicPartition("b", 0)) == 3
    assert c.partitions_for_node(1) == [TopicPartition("a", 0)]
    assert c.positions_for_node(3) == {TopicPartition("b", 0): 0}
    assert md.time_to_next_update(3) > 100  # nothing pending: the next one is at max age


def test_a_topic_still_missing_is_asked_for_again_after_the_backoff() -> None:
    md = started()
    md.add_topic("new", 10)
    assert md.topics_to_request(10) == (["new"], True)
    md.attempt(10)
    md.update(make_cluster({}), 11, ["new"])  # being created: not in the answer
    assert md.time_to_next_update(11) == 100  # the backoff counts from the answer
    assert md.time_to_next_update(111) == 0
    assert md.topics_to_request(111) == (["new"], True)


def test_a_failure_makes_the_next_update_full_after_the_backoff() -> None:
    md = started()
    md.add_topic("a", 0)
    md.topics_to_request(0)
    md.attempt(0)
    md.failed(5)
    md.add_topic("b", 6)  # new, but the last attempt failed: the backoff holds
    assert md.time_to_next_update(6) == 99
    assert md.topics_to_request(105) == (["a", "b"], False)


def test_request_update_is_a_full_update_of_every_topic() -> None:
    md = started()
    for t in ("a", "b"):
        md.add_topic(t, 0)
    md.topics_to_request(0)
    md.attempt(0)
    md.update(make_cluster({"a": [1], "b": [1]}), 1, ["a", "b"])
    md.request_update()
    assert md.time_to_next_update(1) == 100
    assert md.topics_to_request(101) == (["a", "b"], False)
    md.attempt(101)
    md.update(make_cluster({"a": [2], "b": [-1]}), 102)
    assert md.cluster.leader_for(TopicPartition("a", 0)) == 2
    assert md.update_requested  # b is leaderless: keep asking


def test_merging_a_known_topic_rebuilds_the_indexes() -> None:
    base = make_cluster({"a": [1, 1], "b": [2]})
    merged = base.merged(make_cluster({"a": [2, 3]}))
    assert merged.leader_for(TopicPartition("a", 0)) == 2
    assert sorted(merged.partitions_for_node(2)) == [TopicPartition("a", 0), TopicPartition("b", 0)]
    assert merged.partitions_for_node(1) == []
    assert base.leader_for(TopicPartition("a", 0)) == 1  # snapshots are immutable
    fresh = Cluster().merged(base)
    assert fresh.partitions_for_node(1) == base.partitions_for_node(1)
