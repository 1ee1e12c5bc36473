"""The connection rules as values (``_core/connection_rules.py``): the setup timeout's growth,
idle expiry and when to rebootstrap, with time and jitter as arguments."""

from __future__ import annotations

import pytest

from aioproducer import ProducerConfig
from aioproducer._core.connection_rules import Recovery, idle_close_in_ms, setup_timeout_ms
from aioproducer.errors import ConfigError

MIDDLE = 0.5  # a jitter factor of exactly 1.0
LOWEST = 0.0  # 0.8
HIGHEST = 0.999999  # just under 1.2


def test_the_setup_timeout_doubles_per_consecutive_failure_up_to_the_max() -> None:
    grown = [setup_timeout_ms(f, 10_000, 30_000, lambda: MIDDLE) for f in range(5)]
    assert grown == [10_000, 20_000, 30_000, 30_000, 30_000]


def test_the_setup_timeout_has_20_percent_jitter_and_never_passes_the_max() -> None:
    low = [setup_timeout_ms(f, 10_000, 30_000, lambda: LOWEST) for f in range(4)]
    high = [setup_timeout_ms(f, 10_000, 30_000, lambda: HIGHEST) for f in range(4)]
    assert low == [8_000, 16_000, 24_000, 24_000]
    assert high[:2] == [11_999, 23_999] and high[2:] == [30_000, 30_000]


def test_a_max_below_the_base_keeps_the_base() -> None:
    assert setup_timeout_ms(0, 10_000, 5_000, lambda: MIDDLE) == 10_000
    assert setup_timeout_ms(3, 10_000, 5_000, lambda: MIDDLE) == 10_000


def test_java_defaults() -> None:
    cfg = ProducerConfig()
    assert cfg.socket_connection_setup_timeout_ms == 10_000
    assert cfg.socket_connection_setup_timeout_max_ms == 30_000
    assert cfg.connections_max_idle_ms == 540_000
    assert cfg.metadata_recovery_strategy == "rebootstrap"
    assert cfg.metadata_recovery_rebootstrap_trigger_ms == 300_000


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"connections_max_idle_ms": -2}, "connections_max_idle_ms=-2 must be >= -1"),
        ({"socket_connection_setup_timeout_max_ms": 0}, "must be > 0"),
        ({"metadata_recovery_rebootstrap_trigger_ms": 0}, "must be > 0"),
        ({"metadata_recovery_strategy": "REBOOTSTRAP"}, "must be one of 'none', 'rebootstrap'"),
    ],
)
def test_bad_values_are_config_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProducerConfig(**settings)  # type: ignore[arg-type]


def test_java_properties_reach_the_new_settings() -> None:
    cfg = ProducerConfig.from_properties(
        {
            "connections.max.idle.ms": "300",
            "socket.connection.setup.timeout.max.ms": "60000",
            "metadata.recovery.strategy": "none",
            "metadata.recovery.rebootstrap.trigger.ms": "1000",
        }
    )
    assert cfg.connections_max_idle_ms == 300
    assert cfg.socket_connection_setup_timeout_max_ms == 60_000
    assert cfg.metadata_recovery_strategy == "none"
    assert cfg.metadata_recovery_rebootstrap_trigger_ms == 1000


def test_idle_expiry() -> None:
    assert idle_close_in_ms(1_000, False, 300, 1_100) == 200
    assert idle_close_in_ms(1_000, False, 300, 1_300) == 0
    assert idle_close_in_ms(1_000, False, 300, 9_999) == 0
    assert idle_close_in_ms(1_000, True, 300, 9_999) == -1  # a request in flight
    assert idle_close_in_ms(1_000, False, -1, 9_999) == -1  # never


def test_rebootstrap_when_no_learned_broker_can_be_reached() -> None:
    on, off = Recovery("rebootstrap", 300_000), Recovery("none", 300_000)
    assert on.when_unreachable(learned=True)
    assert not on.when_unreachable(learned=False)  # already on the bootstrap servers
    assert not off.when_unreachable(learned=True)


def test_rebootstrap_after_trigger_ms_without_metadata() -> None:
    r = Recovery("rebootstrap", 1_000)
    assert not r.stale_for_too_long(50_000)  # nothing was due
    r.update_due(10_000)
    r.update_due(10_500)  # still the same wait: the clock runs from 10 000
    assert not r.stale_for_too_long(10_999)
    assert r.stale_for_too_long(11_000)
    r.rebootstrapped(11_000)
    assert not r.stale_for_too_long(11_999) and r.stale_for_too_long(12_000)
    r.updated()
    assert not r.stale_for_too_long(99_000)
    r.update_due(100_000)
    assert r.stale_for_too_long(101_000)


def test_no_trigger_with_strategy_none() -> None:
    r = Recovery("none", 1_000)
    r.update_due(0)
    assert not r.stale_for_too_long(1_000_000)
