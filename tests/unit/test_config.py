from __future__ import annotations

import pytest

from aioproducer import ConfigError, ProducerConfig


def test_java_defaults() -> None:
    c = ProducerConfig()
    assert (c.acks_value, c.batch_size, c.linger_ms, c.buffer_memory, c.max_block_ms) == (
        -1,
        16384,
        5,
        33554432,
        60000,
    )
    assert (c.max_request_size, c.request_timeout_ms, c.delivery_timeout_ms, c.retries) == (
        1048576,
        30000,
        120000,
        2147483647,
    )
    assert (
        c.retry_backoff_ms,
        c.retry_backoff_max_ms,
        c.max_in_flight_requests_per_connection,
    ) == (100, 1000, 5)
    assert (
        c.compression_type,
        c.metadata_max_age_ms,
        c.reconnect_backoff_ms,
        c.reconnect_backoff_max_ms,
    ) == (None, 300000, 50, 1000)
    assert c.enable_idempotence is None and c.idempotence  # on by default, as Java >= 3.0
    assert not ProducerConfig(acks=1).idempotence  # a conflicting default turns it off
    assert not ProducerConfig(max_in_flight_requests_per_connection=6).idempotence
    assert c.client_id and c.client_id.startswith("aioproducer-")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"acks": 2}, "acks=2 is invalid; allowed: 'all', -1, 0, 1"),
        (
            {"delivery_timeout_ms": 1000},
            "delivery_timeout_ms=1000 must be >= linger_ms \\+ request_timeout_ms = 30005",
        ),
        ({"batch_size": -1}, "batch_size=-1 must be >= 0"),
        ({"buffer_memory": 0}, "buffer_memory=0 must be > 0"),
        ({"linger_ms": "5"}, "linger_ms='5' must be an integer"),
        ({"compression_type": "brotli"}, "compression_type='brotli' is not one of"),
        ({"bootstrap_servers": "localhost"}, "bootstrap_servers entry 'localhost'"),
        ({"key_serializer": 5}, "key_serializer must be callable"),
        ({"partitioner": object()}, "partitioner must have a partition"),
        (
            {"interceptors": [object()]},
            r"interceptors\[0\] must be an instance of a subclass of aioproducer.Producer",
        ),
        ({"enable_idempotence": True, "acks": 1}, "enable_idempotence=True requires acks='all'"),
        ({"compression_type": "zstd", "compression_zstd_level": 99}, "level 99 for zstd"),
    ],
)
def test_invalid_settings_name_the_setting(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProducerConfig(**settings)  # type: ignore[arg-type]


def test_acks_spellings() -> None:
    assert [ProducerConfig(acks=a).acks_value for a in ("all", -1, "-1", 0, "0", 1, "1")] == [
        -1,
        -1,
        -1,
        0,
        0,
        1,
        1,
    ]
    assert ProducerConfig(bootstrap_servers="a:1, b:2").bootstrap_list == [("a", 1), ("b", 2)]
    assert ProducerConfig(bootstrap_servers=["[::1]:9"]).bootstrap_list == [("::1", 9)]


def test_transactional_id_implies_idempotence_and_refuses_conflicts() -> None:
    from aioproducer import ConfigError, ProducerConfig

    cfg = ProducerConfig(transactional_id="t")
    assert cfg.idempotence and cfg.transaction_timeout_ms == 60000
    with pytest.raises(ConfigError, match="transactional_id needs idempotence"):
        ProducerConfig(transactional_id="t", enable_idempotence=False)
    with pytest.raises(ConfigError, match="transactional_id='t' requires acks='all'"):
        ProducerConfig(transactional_id="t", acks=1)
    with pytest.raises(ConfigError, match="max_in_flight"):
        ProducerConfig(transactional_id="t", max_in_flight_requests_per_connection=6)
    with pytest.raises(ConfigError, match="non-empty"):
        ProducerConfig(transactional_id="")
    with pytest.raises(ConfigError, match="transaction_timeout_ms"):
        ProducerConfig(transactional_id="t", transaction_timeout_ms=0)
