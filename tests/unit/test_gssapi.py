"""SASL/GSSAPI without Kerberos: the RFC 4752 exchange over a fake GSS-API context, the ticket
cache refresh rule (Java's KerberosLogin), the MIT ccache reader, and the settings' checks.
The real exchange against a KDC and Kafka: tests/integration/test_gssapi_kafka.py."""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from aioproducer import ProducerConfig
from aioproducer._core.gssapi import (
    CcacheFormatError,
    GssapiClient,
    Ticket,
    ccache_tickets,
    find_tgt,
    refresh_plan,
)
from aioproducer._io.gssapi import ccache_path
from aioproducer.errors import ConfigError, SaslAuthenticationError


class FakeContext:
    """A GSS-API context whose tokens are scripted; wrap/unwrap frame with a marker."""

    def __init__(self, rounds: int = 2, last_token: bytes | None = None) -> None:
        self.rounds, self.last_token = rounds, last_token
        self.received: list[bytes | None] = []
        self.complete = False
        self.wrapped: list[bytes] = []

    def step(self, token: bytes | None) -> bytes | None:
        self.received.append(token)
        if len(self.received) >= self.rounds:
            self.complete = True
            return self.last_token
        return f"token-{len(self.received)}".encode()

    def wrap(self, message: bytes) -> bytes:
        self.wrapped.append(message)
        return b"W(" + message + b")"

    def unwrap(self, message: bytes) -> bytes:
        if not (message.startswith(b"W(") and message.endswith(b")")):
            raise ValueError("bad MIC")
        return message[2:-1]


def _offer(layers: int, size: int) -> bytes:
    return b"W(" + bytes([layers]) + size.to_bytes(3, "big") + b")"


def test_exchange_tokens_then_answers_the_offer_with_no_security_layer() -> None:
    ctx = FakeContext(rounds=2)
    client = GssapiClient(ctx)
    assert client.step(None) == b"token-1"  # AP-REQ
    # The broker's AP-REP completes the context; nothing to send: an empty message.
    assert client.step(b"ap-rep") == b""
    assert ctx.received == [None, b"ap-rep"]
    answer = client.step(_offer(0x07, 65536))
    assert client.offer == (0x07, 65536)
    assert answer == b"W(\x01\x00\x00\x00)"  # no security layer, max size 0
    assert client.step(b"") is None


def test_a_final_context_token_is_sent_and_the_authorization_id_follows_the_layer() -> None:
    ctx = FakeContext(rounds=1, last_token=b"only-token")
    client = GssapiClient(ctx, authorization_id="alice")
    assert client.step(None) == b"only-token"
    assert client.step(_offer(0x01, 0)) == b"W(\x01\x00\x00\x00alice)"
    assert ctx.wrapped == [struct.pack(">I", 1 << 24) + b"alice"]
    assert client.step(None) is None


@pytest.mark.parametrize(
    ("offer", "says"),
    [
        (_offer(0x06, 1000), r"requires a security layer \(offer 0x06\)"),
        (b"W(\x01\x00\x00)", "has 3 bytes, not 4"),
        (b"forged", "offer does not verify: bad MIC"),
    ],
)
def test_a_bad_offer_is_refused(offer: bytes, says: str) -> None:
    client = GssapiClient(FakeContext(rounds=1, last_token=b"t"))
    client.step(None)
    with pytest.raises(SaslAuthenticationError, match=says):
        client.step(offer)


def test_a_stuck_context_or_a_message_after_the_end_is_refused() -> None:
    class Stuck(FakeContext):
        def step(self, token: bytes | None) -> bytes | None:
            return None

    with pytest.raises(SaslAuthenticationError, match="not established and has nothing"):
        GssapiClient(Stuck()).step(None)
    client = GssapiClient(FakeContext(rounds=1, last_token=b"t"))
    client.step(None)
    client.step(_offer(1, 0))
    with pytest.raises(SaslAuthenticationError, match="after the security-layer exchange"):
        client.step(b"more")


def _tgt(start: int, end: int, renew_till: int) -> Ticket:
    return Ticket("krbtgt/EXAMPLE.COM@EXAMPLE.COM", start, end, renew_till)


@pytest.mark.parametrize(
    ("tgt", "now", "rand", "expected"),
    [
        # 10 h ticket, 80 % + up to 5 % jitter: at 8 h (rand 0) or 8.5 h (rand 1).
        (_tgt(0, 36000, 10**6), 0, 0.0, 28800.0),
        (_tgt(0, 36000, 10**6), 100, 1.0, 30600.0 - 100),
        # The minimum time binds when the proposed time is sooner.
        (_tgt(0, 36000, 10**6), 28790, 0.0, 60.0),
        # The ticket expires before the minimum time: now.
        (_tgt(0, 36000, 10**6), 35950, 0.0, 0.0),
        # Window + jitter past the end: now.
        (_tgt(0, 100, 10**6), 0, 1.0, 0.0),
    ],
)
def test_refresh_plan_follows_javas_kerberos_login(
    tgt: Ticket, now: float, rand: float, expected: float
) -> None:
    factor, jitter = (0.8, 0.05) if tgt.end > 100 else (0.99, 0.05)
    plan = refresh_plan(tgt, now, factor, jitter, 60.0, rand)
    assert plan.delay_s == pytest.approx(expected)


def test_refresh_plan_without_tgt_or_renewability() -> None:
    assert refresh_plan(None, 0, 0.8, 0.05, 60.0, 0.5).delay_s == 60.0
    plan = refresh_plan(_tgt(0, 3600, 0), 10, 0.8, 0.05, 60.0, 0.5)
    assert plan.delay_s is None and "cannot be renewed beyond its expiry" in plan.reason


def _counted(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _principal(realm: str, *parts: str) -> bytes:
    out = struct.pack(">II", 1, len(parts)) + _counted(realm.encode())
    return out + b"".join(_counted(p.encode()) for p in parts)


def _credential(server: bytes, times: tuple[int, int, int, int]) -> bytes:
    return (
        _principal("EXAMPLE.COM", "alice")
        + server
        + struct.pack(">H", 18)
        + _counted(b"k" * 32)
        + struct.pack(">IIII", *times)
        + b"\x00"
        + struct.pack(">I", 0x40E10000)
        + struct.pack(">I", 1)
        + struct.pack(">H", 2)
        + _counted(b"\x7f\x00\x00\x01")
        + struct.pack(">I", 0)
        + _counted(b"ticket-bytes")
        + _counted(b"")
    )


def test_ccache_reader_finds_the_tgt_among_credentials() -> None:
    header = struct.pack(">HH", 0x0504, 12) + struct.pack(">HH", 1, 8) + b"\x00" * 8
    data = (
        header
        + _principal("EXAMPLE.COM", "alice")
        + _credential(_principal("EXAMPLE.COM", "krbtgt", "EXAMPLE.COM"), (5, 10, 100, 500))
        + _credential(_principal("EXAMPLE.COM", "kafka", "localhost"), (20, 0, 100, 0))
    )
    tickets = ccache_tickets(data)
    assert tickets[1] == Ticket("kafka/localhost@EXAMPLE.COM", 20, 100, 0)  # no start: auth
    assert find_tgt(tickets) == Ticket("krbtgt/EXAMPLE.COM@EXAMPLE.COM", 10, 100, 500)
    assert find_tgt(tickets[1:]) is None
    with pytest.raises(CcacheFormatError, match="truncated"):
        ccache_tickets(data[:-3])
    with pytest.raises(CcacheFormatError, match="0x0502 is not read"):
        ccache_tickets(b"\x05\x02" + data[2:])


def test_ccache_path_reads_krb5ccname() -> None:
    assert ccache_path({"KRB5CCNAME": "FILE:/tmp/cc"}) == "/tmp/cc"
    assert ccache_path({"KRB5CCNAME": "/tmp/cc2"}) == "/tmp/cc2"
    assert ccache_path({"KRB5CCNAME": "KEYRING:persistent:0"}) is None
    assert ccache_path({}) is not None and ccache_path({}).startswith("/tmp/krb5cc_")  # type: ignore[union-attr]


GSSAPI: dict[str, Any] = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "GSSAPI"}


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"sasl_kerberos_service_name": ""}, "sasl_kerberos_service_name=''"),
        ({"sasl_kerberos_service_name": "kafka@host"}, "without '@'"),
        ({"sasl_kerberos_domain_name": " "}, "sasl_kerberos_domain_name must be a host"),
        ({"sasl_kerberos_kinit_cmd": ""}, "sasl_kerberos_kinit_cmd must name"),
        ({"sasl_kerberos_min_time_before_relogin": -1}, "must be >= 0"),
        ({"sasl_kerberos_ticket_renew_jitter": 1.5}, "jitter=1.5: must be in"),
        ({"sasl_kerberos_ticket_renew_window_factor": 0}, "window_factor=0: must be in"),
        ({"sasl_kerberos_min_time_before_relogin": "1m"}, "sasl_kerberos_min_time_before"),
    ],
)
def test_kerberos_settings_are_validated(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        ProducerConfig(**GSSAPI, **settings)


def test_kerberos_settings_from_java_properties_and_defaults() -> None:
    cfg = ProducerConfig.from_properties(
        {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "GSSAPI",
            "sasl.kerberos.service.name": "kafka-prod",
            "sasl.kerberos.kinit.cmd": "/opt/krb5/bin/kinit",
            "sasl.kerberos.min.time.before.relogin": "30000",
            "sasl.kerberos.ticket.renew.jitter": "0.1",
            "sasl.kerberos.ticket.renew.window.factor": "0.9",
        }
    )
    assert (
        cfg.sasl_kerberos_service_name,
        cfg.sasl_kerberos_kinit_cmd,
        cfg.sasl_kerberos_min_time_before_relogin,
        cfg.sasl_kerberos_ticket_renew_jitter,
        cfg.sasl_kerberos_ticket_renew_window_factor,
    ) == ("kafka-prod", "/opt/krb5/bin/kinit", 30000, 0.1, 0.9)
    default = ProducerConfig(**GSSAPI)
    assert default.sasl_kerberos_service_name == "kafka"
    assert default.sasl_kerberos_domain_name is None
    assert (default.sasl_kerberos_ticket_renew_window_factor, default.sasl_kerberos_kinit_cmd) == (
        0.8,
        "/usr/bin/kinit",
    )


def test_missing_gssapi_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gssapi", None)  # import gssapi raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'aioproducer\[gssapi\]'"):
        ProducerConfig(**GSSAPI)
    ProducerConfig()  # other mechanisms do not need it


def test_krb5_login_module_line_becomes_the_kerberos_settings(tmp_path: Path) -> None:
    keytab = tmp_path / "app.keytab"
    keytab.write_bytes(b"\x05\x02")
    jaas = (
        "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true "
        f'keyTab="{keytab}" principal="app@EXAMPLE.COM" serviceName="kafka-svc";'
    )
    cfg = ProducerConfig.from_properties(
        {"security.protocol": "SASL_SSL", "sasl.mechanism": "GSSAPI", "sasl.jaas.config": jaas}
    )
    assert (cfg.sasl_kerberos_keytab, cfg.sasl_kerberos_principal) == (
        str(keytab),
        "app@EXAMPLE.COM",
    )
    assert cfg.sasl_kerberos_service_name == "kafka-svc"
    cache_only = ProducerConfig.from_properties(
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "GSSAPI",
            "sasl.jaas.config": "com.sun.security.auth.module.Krb5LoginModule required "
            "useTicketCache=true;",
        }
    )
    assert (cache_only.sasl_kerberos_keytab, cache_only.sasl_kerberos_principal) == (None, None)


@pytest.mark.parametrize(
    ("jaas", "says"),
    [
        ("useTicketCache=true ticketCache=/tmp/cc;", "set KRB5CCNAME=FILE:/tmp/cc"),
        ('useKeyTab=true principal="a@B";', "useKeyTab=true needs keyTab= and principal="),
        ('serviceName="kfk";', "serviceName='kfk' conflicts with sasl.kerberos.service.name="),
    ],
)
def test_krb5_login_module_options_we_cannot_honour_are_refused(jaas: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        ProducerConfig.from_properties(
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "GSSAPI",
                "sasl.kerberos.service.name": "kafka",
                "sasl.jaas.config": f"com.sun.security.auth.module.Krb5LoginModule required {jaas}",
            }
        )


def test_keytab_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sasl_kerberos_keytab needs sasl_kerberos_principal"):
        ProducerConfig(**GSSAPI, sasl_kerberos_keytab=str(tmp_path))
    with pytest.raises(ConfigError, match="no such readable file"):
        ProducerConfig(
            **GSSAPI, sasl_kerberos_keytab=tmp_path / "none", sasl_kerberos_principal="a@B"
        )
    with pytest.raises(ConfigError, match="sasl_kerberos_principal must be a principal"):
        ProducerConfig(**GSSAPI, sasl_kerberos_principal=" ")


@pytest.mark.asyncio
async def test_a_failing_kinit_is_tried_once_more_then_the_refresher_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Java's refresh thread: a failed ``kinit -R`` is retried once (after 10 s, shortened
    here), then the thread exits; the producer keeps what the cache holds."""
    import time

    from aioproducer._io import gssapi as shell
    from tests.helpers import wait_until

    now = int(time.time())
    header = struct.pack(">HH", 0x0504, 0)
    tgt = _principal("EXAMPLE.COM", "krbtgt", "EXAMPLE.COM")
    cache = tmp_path / "cc"
    cache.write_bytes(
        header
        + _principal("EXAMPLE.COM", "alice")
        + _credential(tgt, (now - 100, now - 100, now + 100, now + 1000))
    )
    calls = tmp_path / "calls"
    kinit = tmp_path / "kinit"
    kinit.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "kinit: no KDC" >&2\nexit 1\n')
    kinit.chmod(0o755)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    monkeypatch.setattr(shell, "KINIT_RETRY_S", 0.05)
    cfg = ProducerConfig(
        **GSSAPI,
        sasl_kerberos_kinit_cmd=str(kinit),
        sasl_kerberos_ticket_renew_window_factor=0.5,
        sasl_kerberos_ticket_renew_jitter=0.0,
        sasl_kerberos_min_time_before_relogin=0,
    )
    refresher = shell.TicketRefresher(cfg)
    refresher.start()  # half of the TGT's life is over: renew now
    try:
        await wait_until(lambda: refresher.stopped, "the refresher to stop", timeout=10)
    finally:
        refresher.close()
    assert refresher.stopped is not None and "-R failed: kinit: no KDC" in refresher.stopped
    assert calls.read_text().split() == ["-R", "-R"]
    assert refresher.renewals == 0
