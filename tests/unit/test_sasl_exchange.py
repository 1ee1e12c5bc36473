"""The SASL exchange on a connection and KIP-368 re-authentication against the fake broker,
and the OAuth client-credentials provider against the harness's loopback token endpoint.
(The mechanisms against real Kafka: tests/integration/test_security_kafka.py.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from aioproducer import ClientCredentialsTokenProvider, Producer, ProducerConfig
from aioproducer._io.oauth import _jwt_expiry
from aioproducer.errors import ConfigError, SaslAuthenticationError
from aioproducer.testing import TokenEndpoint, unsecured_jwt

from ..faults.fake_broker import FakeBroker
from ..helpers import wait_until

PASSWORD = "s3cr3t-Pa55word"
SECRET = "cl1ent-S3cret"


@pytest_asyncio.fixture
async def reauth_broker() -> AsyncIterator[FakeBroker]:
    broker = await FakeBroker(
        sasl_users={"alice": PASSWORD}, session_lifetime_ms=1200, sasl_delay=0.05
    ).start()
    yield broker
    await broker.close()


@pytest.mark.asyncio
async def test_reauthentication_holds_requests_and_loses_none(
    reauth_broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Sessions of 1.2 s, a handshake that takes 50 ms, records sent for 2.5 s: every
    connection re-authenticates at least twice (Kafka allows one a second at most); no
    request reaches the broker between a SaslHandshake and its SaslAuthenticate; no
    connection is replaced; nothing fails."""
    caplog.set_level(logging.DEBUG, logger="aioproducer")
    async with Producer(
        bootstrap_servers=reauth_broker.bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_plain_username="alice",
        sasl_plain_password=PASSWORD,
        linger_ms=0,
    ) as p:
        futures = [await p.send("t", b"r0")]
        await futures[0]  # the connection to node 1 is open
        connections = reauth_broker.connections
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            futures.append(await p.send("t", f"r{len(futures)}".encode()))
            await asyncio.sleep(0.002)
        await p.flush()
        assert reauth_broker.connections == connections  # the same connections throughout
    assert [f.exception() for f in futures if f.exception()] == []
    assert reauth_broker.records == [f"r{i}".encode() for i in range(len(futures))]
    assert reauth_broker.violations == 0
    reauths = [r for r in caplog.records if r.getMessage().startswith("re-authenticated")]
    assert len(reauths) >= 2
    assert reauth_broker.authenticated >= 1 + len(reauths)
    assert PASSWORD not in caplog.text


@pytest.mark.asyncio
async def test_a_failed_reauthentication_closes_the_connection_as_retriable(
    reauth_broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    async with Producer(
        bootstrap_servers=reauth_broker.bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_plain_username="alice",
        sasl_plain_password=PASSWORD,
        retry_backoff_ms=50,
    ) as p:
        await p.send_and_wait("t", b"before")
        reauth_broker.sasl_users = {"alice": "changed"}  # the password is revoked

        def refused() -> bool:
            return any("re-authentication with broker" in r.getMessage() for r in caplog.records)

        await wait_until(refused, "a refused re-authentication", timeout=5)
        reauth_broker.sasl_users = {"alice": PASSWORD}
        assert (await p.send_and_wait("t", b"after")).offset == 1
    assert PASSWORD not in caplog.text and "changed" not in caplog.text


@pytest.fixture
def idp() -> Iterator[TokenEndpoint]:
    with TokenEndpoint({"app": SECRET}, lifetime_s=2) as endpoint:
        yield endpoint


@pytest.mark.asyncio
async def test_client_credentials_token_is_cached_then_refreshed(idp: TokenEndpoint) -> None:
    provider = ClientCredentialsTokenProvider(
        idp.url, "app", SECRET, scope="s1", connect_timeout_ms=5000, read_timeout_ms=5000
    )
    first = await provider.token()
    assert await provider.token() == first and provider.fetches == 1
    assert idp.requests == [("app", "s1", 200)]
    assert _jwt_expiry(first) is not None
    # 80 % of the 2 s lifetime later, a new token is fetched.
    deadline = time.monotonic() + 5
    while provider.fetches == 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        await provider.token()
    assert provider.fetches == 2
    assert SECRET not in repr(provider)


@pytest.mark.asyncio
async def test_client_credentials_refused_or_unreachable(idp: TokenEndpoint) -> None:
    wrong = ClientCredentialsTokenProvider(idp.url, "app", "wrong-" + SECRET)
    with pytest.raises(SaslAuthenticationError, match=r"OAUTHBEARER.*HTTP 401") as info:
        await wrong.token()
    assert SECRET not in str(info.value)
    dead = ClientCredentialsTokenProvider(
        "http://user:pw@127.0.0.1:9/token", "app", SECRET, retry_backoff_max_ms=300
    )
    with pytest.raises(SaslAuthenticationError, match="unreachable") as info:
        await dead.token()
    assert "user:pw" not in str(info.value) and SECRET not in str(info.value)


def test_unsecured_jwt_carries_subject_and_expiry() -> None:
    token = unsecured_jwt("alice", 60, now=1000.0)
    assert token.endswith(".") and _jwt_expiry(token) == 1060.0
    assert _jwt_expiry("opaque-token") is None


class _Provider:
    def token(self) -> str:
        return "t"


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"sasl_mechanism": "KERBEROS"}, "allowed 'PLAIN', 'SCRAM-SHA-256'.*'GSSAPI'"),
        ({"sasl_mechanism": "SCRAM-SHA-512"}, "needs sasl_plain_username"),
        ({"sasl_mechanism": "OAUTHBEARER"}, "needs sasl_oauth_token_provider"),
        (
            {"sasl_mechanism": "OAUTHBEARER", "sasl_oauth_token_provider": object()},
            "token\\(\\) method",
        ),
        (
            {
                "sasl_mechanism": "OAUTHBEARER",
                "sasl_oauth_token_provider": _Provider(),
                "sasl_oauthbearer_token_endpoint_url": "https://idp/token",
            },
            "either",
        ),
        (
            {
                "sasl_mechanism": "OAUTHBEARER",
                "sasl_oauthbearer_token_endpoint_url": "http://idp.example/token",
                "sasl_oauthbearer_client_credentials_client_id": "a",
                "sasl_oauthbearer_client_credentials_client_secret": SECRET,
            },
            "https://",
        ),
        (
            {
                "sasl_mechanism": "OAUTHBEARER",
                "sasl_oauthbearer_token_endpoint_url": "https://idp.example/token",
            },
            "client_id and _client_secret",
        ),
    ],
)
def test_sasl_settings_are_validated(settings: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says) as info:
        ProducerConfig(security_protocol="SASL_SSL", **settings)  # type: ignore[arg-type]
    assert SECRET not in str(info.value)


def test_tls_settings_are_validated_and_secrets_stay_out_of_reprs(tmp_path: object) -> None:
    import ssl

    with pytest.raises(ConfigError, match="not both"):
        ProducerConfig(
            security_protocol="SSL", ssl_context=ssl.create_default_context(), ssl_cafile="x"
        )
    with pytest.raises(ConfigError, match="need ssl_certfile"):
        ProducerConfig(security_protocol="SSL", ssl_keyfile="k.pem", ssl_password=SECRET)
    cfg = ProducerConfig(
        security_protocol="SASL_SSL",
        ssl_certfile="/nonexistent/c.pem",
        ssl_password=SECRET,
        sasl_mechanism="OAUTHBEARER",
        sasl_oauthbearer_token_endpoint_url="https://idp.example/token",
        sasl_oauthbearer_client_credentials_client_id="app",
        sasl_oauthbearer_client_credentials_client_secret=SECRET,
    )
    assert SECRET not in repr(cfg)
    assert SECRET not in repr(cfg.oauth_token_provider())
    with pytest.raises(ConfigError, match="cannot load the client certificate") as info:
        cfg.make_ssl_context()
    assert SECRET not in str(info.value)
