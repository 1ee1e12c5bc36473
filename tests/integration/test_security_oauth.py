"""OAUTHBEARER's login settings (Java's ``sasl.login.*`` and ``sasl.oauthbearer.*``) against a
real Kafka node: a token endpoint that fails twice then answers (retry backoff), one that stalls
(read timeout), the subject and scope claim names, a refresh inside the window while
connections re-authenticate, tokens signed by a JWKS that both aioproducer and Kafka's
secured validator check (the ``OAUTH`` listener), and the jwt-bearer grant (KIP-1139) with an
assertion signed here or read from a file.

One Kafka node for the module (``oauth_kafka``), started after the signing token endpoint whose
JWKS it loads. Records are read back with confluent-kafka over the SASL_SSL listener.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aioproducer import Producer
from aioproducer._core.assertion import AssertionClaims
from aioproducer.errors import SaslAuthenticationError
from aioproducer.testing import (
    KafkaCluster,
    KafkaSecurity,
    StaticTokenProvider,
    TokenEndpoint,
    read_topic,
)

pytestmark = pytest.mark.asyncio
CLIENT_ID, CLIENT_SECRET = "producer-app", "cl1ent-S3cret-value"
MAX_BLOCK_MS = 15000


@pytest.fixture(scope="module")
def signing_idp() -> Iterator[TokenEndpoint]:
    with TokenEndpoint({CLIENT_ID: CLIENT_SECRET}, signing="RS256") as idp:
        yield idp


@pytest.fixture(scope="module")
def oauth_kafka(signing_idp: TokenEndpoint) -> Iterator[KafkaCluster]:
    security = KafkaSecurity(
        reauth_ms=2500,
        jwks_url=signing_idp.jwks_url,
        jwks_audience=signing_idp.audience,
        jwks_issuer=signing_idp.issuer,
    )
    with KafkaCluster(1, security=security) as cluster:
        yield cluster


def _sec(cluster: KafkaCluster) -> KafkaSecurity:
    assert cluster.security is not None
    return cluster.security


def _config(
    cluster: KafkaCluster, listener: str, idp: TokenEndpoint, **extra: Any
) -> dict[str, Any]:
    cfg = _sec(cluster).producer_config(listener, "OAUTHBEARER")
    del cfg["sasl_oauth_token_provider"]
    cfg.update(
        sasl_oauthbearer_token_endpoint_url=idp.url,
        sasl_oauthbearer_client_credentials_client_id=CLIENT_ID,
        sasl_oauthbearer_client_credentials_client_secret=CLIENT_SECRET,
        max_block_ms=MAX_BLOCK_MS,
        **extra,
    )
    return cfg


async def _produce(cfg: dict[str, Any], topic: str, count: int) -> list[bytes]:
    values = [f"record-{i}".encode() for i in range(count)]
    async with Producer(**cfg) as p:
        futures = [await p.send(topic, v) for v in values]
        await p.flush()
        assert all(f.result().topic == topic for f in futures)
    return values


def _read_back(cluster: KafkaCluster, topic: str) -> list[bytes | None]:
    sec = _sec(cluster)
    got = read_topic(
        sec.bootstrap("SASL_SSL"),
        topic,
        timeout=30,
        client_config=sec.librdkafka_config("SASL_SSL", "OAUTHBEARER"),
    )
    return [r.value for r in got]


async def test_token_endpoint_failing_twice_then_answering_is_retried_with_backoff(
    oauth_kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(oauth_kafka)
    with TokenEndpoint({CLIENT_ID: CLIENT_SECRET}, fail_first=2) as idp:
        cfg = _config(oauth_kafka, "SASL_SSL", idp, sasl_login_retry_backoff_ms=200)
        sent = await _produce(cfg, topic, 20)
    assert [r[2] for r in idp.requests] == [503, 503, 200]
    t = idp.request_times
    assert t[1] - t[0] >= 0.2 and t[2] - t[1] >= 0.4, t  # 200 ms, then doubled
    assert _read_back(oauth_kafka, topic) == sent


async def test_stalled_token_endpoint_fails_start_on_the_read_timeout(
    oauth_kafka: KafkaCluster,
) -> None:
    with TokenEndpoint({CLIENT_ID: CLIENT_SECRET}, stall_s=4) as idp:
        cfg = _config(
            oauth_kafka,
            "SASL_SSL",
            idp,
            sasl_login_read_timeout_ms=300,
            sasl_login_retry_backoff_max_ms=500,
        )
        t0 = time.monotonic()
        with pytest.raises(SaslAuthenticationError, match="sasl_login_read_timeout_ms=300"):
            async with Producer(**cfg):
                pass
        assert time.monotonic() - t0 < 3.5  # the timeouts, not the 4 s stall nor max_block_ms
        assert 2 <= len(idp.request_times) <= 4  # retried within the 500 ms


async def test_subject_and_scope_claim_names(
    oauth_kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(oauth_kafka)
    with TokenEndpoint(
        {CLIENT_ID: CLIENT_SECRET}, claims={"azp": CLIENT_ID, "scp": ["kafka.produce"]}
    ) as idp:
        wrong = _config(oauth_kafka, "SASL_SSL", idp, sasl_oauthbearer_sub_claim_name="client_id")
        with pytest.raises(SaslAuthenticationError, match="has no 'client_id' claim") as info:
            async with Producer(**wrong):
                pass
        assert CLIENT_SECRET not in str(info.value)
        cfg = _config(
            oauth_kafka,
            "SASL_SSL",
            idp,
            sasl_oauthbearer_sub_claim_name="azp",
            sasl_oauthbearer_scope_claim_name="scp",
        )
        sent = await _produce(cfg, topic, 10)
    assert _read_back(oauth_kafka, topic) == sent


async def test_refresh_inside_the_window_while_connections_reauthenticate(
    oauth_kafka: KafkaCluster, new_topic: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """6 s tokens, refreshed at half their lifetime (factor 0.5, no jitter): over ~8 s of
    steady sends on the REAUTH listener (2.5 s sessions), each new token is fetched no sooner
    than 3 s after the previous one and well before it expires (in the background, not at the
    next re-authentication), and every record is delivered."""
    caplog.set_level(logging.DEBUG, logger="aioproducer")
    topic = new_topic(oauth_kafka)
    futures = []
    with TokenEndpoint({CLIENT_ID: CLIENT_SECRET}, lifetime_s=6) as idp:
        cfg = _config(
            oauth_kafka,
            "REAUTH",
            idp,
            linger_ms=2,
            sasl_login_refresh_window_factor=0.5,
            sasl_login_refresh_window_jitter=0.0,
        )
        deadline = time.monotonic() + 8.0
        async with Producer(**cfg) as p:
            i = 0
            while time.monotonic() < deadline and i < 100_000:
                futures.append(await p.send(topic, f"r{i}".encode()))
                i += 1
                if i % 100 == 0:
                    await asyncio.sleep(0.01)
            await p.flush()
    assert not [f.exception() for f in futures if f.exception() is not None]
    t = idp.request_times
    gaps = [b - a for a, b in itertools.pairwise(t)]
    # At 50 % of 6 s (Java's default factor would give 4.8 s), before the token expires.
    assert len(t) >= 2 and all(2.9 <= g < 3.8 for g in gaps), gaps
    reauths = [r for r in caplog.records if r.getMessage().startswith("re-authenticated with")]
    assert len(reauths) >= 2
    assert _read_back(oauth_kafka, topic) == [f"r{n}".encode() for n in range(len(futures))]


async def test_jwks_signed_tokens_are_checked_here_and_by_the_broker(
    oauth_kafka: KafkaCluster, new_topic: Callable[..., str], signing_idp: TokenEndpoint
) -> None:
    sec = _sec(oauth_kafka)
    topic = new_topic(oauth_kafka)
    jwks = {
        "sasl_oauthbearer_jwks_endpoint_url": signing_idp.jwks_url,
        "sasl_oauthbearer_expected_audience": [signing_idp.audience],
        "sasl_oauthbearer_expected_issuer": signing_idp.issuer,
    }
    fetched = signing_idp.jwks_fetches  # the broker's, at start-up
    sent = await _produce(_config(oauth_kafka, "OAUTH", signing_idp, **jwks), topic, 15)
    assert signing_idp.jwks_fetches == fetched + 1  # ours
    assert _read_back(oauth_kafka, topic) == sent
    # A token for another audience is refused here, before the broker sees it.
    grants = len(signing_idp.requests)
    other = {**jwks, "sasl_oauthbearer_expected_audience": ["billing"]}
    with pytest.raises(SaslAuthenticationError, match=r"audience \['kafka'\] is not expected"):
        async with Producer(**_config(oauth_kafka, "OAUTH", signing_idp, **other)):
            pass
    assert len(signing_idp.requests) == grants + 1
    # The listener really checks signatures: an unsigned token is refused by the broker.
    unsigned = sec.producer_config("OAUTH", "OAUTHBEARER", token_provider=StaticTokenProvider("x"))
    with pytest.raises(SaslAuthenticationError, match="OAUTHBEARER"):
        async with Producer(**unsigned, max_block_ms=MAX_BLOCK_MS):
            pass


def _key_pems(key: Any, passphrase: str | None = None) -> tuple[bytes, bytes]:
    """``key``'s private PEM (PKCS#8, encrypted with ``passphrase`` if given) and public PEM."""
    from cryptography.hazmat.primitives import serialization as ser

    encryption: Any = (
        ser.BestAvailableEncryption(passphrase.encode()) if passphrase else ser.NoEncryption()
    )
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, encryption)
    public = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def _jwt_bearer_config(cluster: KafkaCluster, idp: TokenEndpoint, **extra: Any) -> dict[str, Any]:
    cfg = _config(cluster, "OAUTH", idp, **extra)
    del cfg["sasl_oauthbearer_client_credentials_client_id"]
    del cfg["sasl_oauthbearer_client_credentials_client_secret"]
    return cfg


async def test_jwt_bearer_grant_with_a_signed_assertion(
    oauth_kafka: KafkaCluster,
    new_topic: Callable[..., str],
    signing_idp: TokenEndpoint,
    tmp_path: Path,
) -> None:
    """KIP-1139: an assertion signed here (RS256, encrypted PKCS#8 key, a template file, a
    jti) is exchanged at the token endpoint for a JWKS-signed token that the broker's secured
    validator accepts; records read back with confluent-kafka."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    topic = new_topic(oauth_kafka)
    private, public = _key_pems(rsa.generate_private_key(65537, 2048), "k3y-Pass")
    (tmp_path / "key.pem").write_bytes(private)
    (tmp_path / "template.json").write_text('{"header": {"kid": "app-key-1"}}')
    signing_idp.assertion_keys["svc-signed"] = public
    seen = len(signing_idp.assertions)
    cfg = _jwt_bearer_config(
        oauth_kafka,
        signing_idp,
        sasl_oauthbearer_assertion_private_key_file=str(tmp_path / "key.pem"),
        sasl_oauthbearer_assertion_private_key_passphrase="k3y-Pass",
        sasl_oauthbearer_assertion_template_file=str(tmp_path / "template.json"),
        sasl_oauthbearer_assertion_claim_sub="svc-signed",
        sasl_oauthbearer_assertion_claim_aud=signing_idp.url,
        sasl_oauthbearer_assertion_claim_jti_include=True,
        sasl_oauthbearer_jwks_endpoint_url=signing_idp.jwks_url,
        sasl_oauthbearer_expected_audience=[signing_idp.audience],
        sasl_oauthbearer_expected_issuer=signing_idp.issuer,
    )
    sent = await _produce(cfg, topic, 15)
    header, payload = signing_idp.assertions[seen]
    assert header == {"kid": "app-key-1", "alg": "RS256", "typ": "JWT"}
    assert payload["aud"] == signing_idp.url and payload["exp"] - payload["iat"] == 300
    assert signing_idp.requests[-1] == ("svc-signed", None, 200) and payload["jti"]
    assert _read_back(oauth_kafka, topic) == sent


async def test_jwt_bearer_grant_with_an_assertion_file(
    oauth_kafka: KafkaCluster,
    new_topic: Callable[..., str],
    signing_idp: TokenEndpoint,
    tmp_path: Path,
) -> None:
    """A ready-made ES256 assertion in a file: used as it is, read again for every token
    request (a file the endpoint refuses fails start with a typed error)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from aioproducer._io.oauth_assertion import SignedAssertion

    topic = new_topic(oauth_kafka)
    private, public = _key_pems(ec.generate_private_key(ec.SECP256R1()))
    (tmp_path / "key.pem").write_bytes(private)
    signing_idp.assertion_keys["svc-file"] = public
    path = tmp_path / "assertion.jwt"
    path.write_text("not-a-jwt")
    cfg = _jwt_bearer_config(oauth_kafka, signing_idp, sasl_oauthbearer_assertion_file=str(path))
    with pytest.raises(SaslAuthenticationError, match=r"assertion\.jwt is not a JWT"):
        async with Producer(**cfg):
            pass
    maker = SignedAssertion(AssertionClaims("ES256", sub="svc-file"), str(tmp_path / "key.pem"))
    assertion = maker.create()
    path.write_text(assertion + "\n")
    sent = await _produce(cfg, topic, 10)
    assert signing_idp.requests[-1] == ("svc-file", None, 200)
    assert _read_back(oauth_kafka, topic) == sent
