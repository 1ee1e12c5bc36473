"""§6 G: TLS and SASL/PLAIN against the fake broker — secure by default, honest errors, no
secret in logs or reprs (53-56, 58), and authorization failures by scope on the mock (60)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

import pytest
import pytest_asyncio
import trustme

from aioproducer import Producer
from aioproducer.errors import (
    ClusterAuthorizationFailedError,
    SaslAuthenticationError,
    SecurityProtocolMismatchError,
    SslAuthenticationError,
    TopicAuthorizationFailedError,
)
from aioproducer.testing import MockCluster

from .fake_broker import FakeBroker

pytestmark = pytest.mark.asyncio
CA = trustme.CA()
PASSWORD = "s3cr3t-Pa55word"


def server_context(*names: str, ca: trustme.CA = CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(ctx)
    return ctx


@pytest.fixture
def cafile(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    CA.cert_pem.write_to_path(str(path))
    return str(path)


class TlsBrokerFor(Protocol):
    """The ``tls_broker_for`` fixture: a started TLS fake broker with a certificate for
    ``names`` signed by ``ca``."""

    def __call__(
        self, *names: str, ca: trustme.CA = ..., sasl_users: dict[str, str] | None = ...
    ) -> Awaitable[FakeBroker]: ...


@pytest_asyncio.fixture
async def tls_broker_for(request: pytest.FixtureRequest) -> AsyncIterator[TlsBrokerFor]:
    brokers: list[FakeBroker] = []

    async def make(
        *names: str, ca: trustme.CA = CA, sasl_users: dict[str, str] | None = None
    ) -> FakeBroker:
        ctx = server_context(*names, ca=ca)
        b = await FakeBroker(ssl_context=ctx, sasl_users=sasl_users).start()
        brokers.append(b)
        return b

    yield make
    for b in brokers:
        await b.close()


async def test_tls_with_a_valid_certificate_works(
    tls_broker_for: TlsBrokerFor, cafile: str
) -> None:
    broker = await tls_broker_for("127.0.0.1")
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers, security_protocol="SSL", ssl_cafile=cafile
    ) as p:
        assert (await p.send_and_wait("t", b"over tls")).offset == 0
    assert broker.records == [b"over tls"]


async def test_s53_hostname_verification_is_on_by_default(
    tls_broker_for: TlsBrokerFor,
    cafile: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = await tls_broker_for("other.test")
    t0 = time.monotonic()
    with pytest.raises(SslAuthenticationError, match=r"127\.0\.0\.1"):
        async with Producer(
            bootstrap_servers=broker.bootstrap_servers, security_protocol="SSL", ssl_cafile=cafile
        ):
            pass
    assert time.monotonic() - t0 < 5  # surfaced promptly by start(), not after max_block_ms
    caplog.set_level(logging.WARNING, logger="aioproducer")
    async with Producer(
        bootstrap_servers=broker.bootstrap_servers,
        security_protocol="SSL",
        ssl_cafile=cafile,
        ssl_check_hostname=False,
    ) as p:
        await p.send_and_wait("t", b"x")
    warnings = [r for r in caplog.records if "ssl_check_hostname=False" in r.getMessage()]
    assert len(warnings) == 1


async def test_s54_untrusted_certificate_is_refused(
    tls_broker_for: TlsBrokerFor, cafile: str
) -> None:
    broker = await tls_broker_for("127.0.0.1", ca=trustme.CA())  # signed by a stranger
    with pytest.raises(SslAuthenticationError, match=r"issuer certificate|verify failed"):
        async with Producer(
            bootstrap_servers=broker.bootstrap_servers, security_protocol="SSL", ssl_cafile=cafile
        ):
            pass


async def test_s55_plaintext_client_against_a_tls_listener() -> None:
    """A TLS listener answers plaintext bytes with a TLS alert record (as Kafka's SSLEngine
    does): 0x15 0x03 0x03 reads as a 350 MB frame length. It must not be trusted."""

    async def tls_listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"\x15\x03\x03\x00\x02\x02\x0a")  # fatal alert: unexpected_message
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(tls_listener, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tracemalloc.start()
    try:
        with pytest.raises(SecurityProtocolMismatchError, match="security_protocol='SSL'"):
            async with Producer(bootstrap_servers=f"127.0.0.1:{port}"):
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.close()
        await server.wait_closed()
    assert peak < 10 * 1024 * 1024


@pytest_asyncio.fixture
async def sasl_broker() -> AsyncIterator[FakeBroker]:
    broker = await FakeBroker(sasl_users={"alice": PASSWORD}).start()
    yield broker
    await broker.close()


async def test_s56_sasl_plain_hygiene(
    sasl_broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    p = Producer(
        bootstrap_servers=sasl_broker.bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_plain_username="alice",
        sasl_plain_password=PASSWORD,
    )
    async with p:
        assert (await p.send_and_wait("t", b"authenticated")).offset == 0
    assert sasl_broker.authenticated >= 1
    assert any(
        "password in clear" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(p.config) and PASSWORD not in repr(p)


async def test_s58_sasl_errors_are_clear_and_not_a_storm(sasl_broker: FakeBroker) -> None:
    t0 = time.monotonic()
    with pytest.raises(SaslAuthenticationError, match="Invalid username or password") as info:
        async with Producer(
            bootstrap_servers=sasl_broker.bootstrap_servers,
            security_protocol="SASL_PLAINTEXT",
            sasl_plain_username="alice",
            sasl_plain_password="wrong",
        ):
            pass
    assert PASSWORD not in str(info.value) and "wrong" not in str(info.value)
    assert time.monotonic() - t0 < 5
    plain = await FakeBroker().start()  # no SASL at all
    try:
        with pytest.raises(SaslAuthenticationError, match="does not support SaslHandshake"):
            async with Producer(
                bootstrap_servers=plain.bootstrap_servers,
                security_protocol="SASL_PLAINTEXT",
                sasl_plain_username="a",
                sasl_plain_password="b",
            ):
                pass
    finally:
        await plain.close()


@pytest.mark.mock_cluster
async def test_s60_authorization_failures_by_scope(
    mock_cluster: MockCluster, new_topic: Callable[..., str]
) -> None:
    allowed = new_topic(mock_cluster, partitions=1, replication_factor=1)
    denied = new_topic(mock_cluster, partitions=1, replication_factor=1)
    mock_cluster.push_request_errors(22, [31])  # InitProducerId: CLUSTER_AUTHORIZATION_FAILED
    with pytest.raises(ClusterAuthorizationFailedError, match="IdempotentWrite"):
        async with Producer(bootstrap_servers=mock_cluster.bootstrap_servers):
            pass
    async with Producer(bootstrap_servers=mock_cluster.bootstrap_servers) as p:
        await p.send_and_wait(allowed, b"ok")
        mock_cluster.partition_push_request_errors(denied, 0, 0, [29])
        with pytest.raises(TopicAuthorizationFailedError, match=denied):
            await p.send_and_wait(denied, b"no")
        assert (await p.send_and_wait(allowed, b"still ok")).offset == 1
    await asyncio.sleep(0)


async def test_s56_the_new_secret_settings_stay_out_of_reprs_logs_and_errors(
    sasl_broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """SCRAM/OAUTHBEARER, mutual TLS and KIP-768 secrets: never in a repr, a log line at any
    level, an error or its traceback (the broker here refuses OAUTHBEARER)."""
    import traceback

    token, client_secret, key_password = "eyJ.T0KEN-value.", "cl1ent-S3cret", "k3y-Pa55"

    class Provider:
        def token(self) -> str:
            return token

    caplog.set_level(logging.DEBUG)
    p = Producer(
        bootstrap_servers=sasl_broker.bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_provider=Provider(),
    )
    with pytest.raises(SaslAuthenticationError, match="OAUTHBEARER") as info:
        async with p:
            pass
    text = "".join(traceback.format_exception(info.value)) + caplog.text + repr(p)
    others = Producer(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="alice",
        sasl_plain_password=PASSWORD,
        ssl_certfile="client.pem",
        ssl_password=key_password,
    )
    oauth = Producer(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauthbearer_token_endpoint_url="https://idp.example/token",
        sasl_oauthbearer_client_credentials_client_id="app",
        sasl_oauthbearer_client_credentials_client_secret=client_secret,
    )
    text += repr(others) + repr(others.config) + repr(oauth) + repr(oauth.config)
    for secret in (token, client_secret, key_password, PASSWORD):
        assert secret not in text
