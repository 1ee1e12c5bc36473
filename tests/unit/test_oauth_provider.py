"""The client-credentials provider against the local token endpoint (no broker): Java's
settings for the Basic header, retries, timeouts, the token checks, JWKS, and a refresh that
fails while the current token is valid; and the settings' validation."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aioproducer import ClientCredentialsTokenProvider, ConfigError, ProducerConfig
from aioproducer._core.jwt import InvalidTokenError, parse
from aioproducer._core.oauth import RefreshWindow
from aioproducer._io.jwks import JwksVerifier
from aioproducer._io.sasl import SaslAuthenticator
from aioproducer.errors import SaslAuthenticationError
from aioproducer.testing import TokenEndpoint

from ..helpers import wait_until

SECRET = "s3cret:with spaces+plus"


@pytest.fixture
def idp() -> Iterator[TokenEndpoint]:
    with TokenEndpoint({"app": "plain-secret"}) as endpoint:
        yield endpoint


def _provider(url: str, secret: str = "plain-secret", **kw: Any) -> ClientCredentialsTokenProvider:
    return ClientCredentialsTokenProvider(url, "app", secret, **kw)


@pytest.mark.asyncio
async def test_basic_header_is_url_encoded_only_when_asked() -> None:
    with TokenEndpoint({"app id:1": SECRET}, urlencoded_credentials=True) as idp:
        encoded = ClientCredentialsTokenProvider(idp.url, "app id:1", SECRET, header_urlencode=True)
        assert (await encoded.token()).count(".") == 2
        raw = ClientCredentialsTokenProvider(idp.url, "app id:1", SECRET, retry_backoff_ms=10)
        with pytest.raises(SaslAuthenticationError, match="HTTP 401") as info:
            await raw.token()  # Java's default: the ':' in the id breaks the header
        assert [r[2] for r in idp.requests] == [200, 401]  # a 401 is not retried
        assert SECRET not in str(info.value)


@pytest.mark.asyncio
async def test_endpoint_failing_twice_then_answering_is_retried_with_backoff() -> None:
    with TokenEndpoint({"app": "plain-secret"}, fail_first=2) as idp:
        provider = _provider(idp.url, retry_backoff_ms=200, retry_backoff_max_ms=5000)
        await provider.token()
        assert [r[2] for r in idp.requests] == [503, 503, 200]
        gaps = [b - a for a, b in itertools.pairwise(idp.request_times)]
        assert 0.2 <= gaps[0] < 1.5 and 0.4 <= gaps[1] < 2.0, gaps


@pytest.mark.asyncio
async def test_retries_end_at_the_max_with_a_typed_error() -> None:
    with TokenEndpoint({"app": "plain-secret"}, fail_first=100) as idp:
        provider = _provider(idp.url, retry_backoff_ms=50, retry_backoff_max_ms=400)
        t0 = time.monotonic()
        with pytest.raises(SaslAuthenticationError, match=r"HTTP 503 .*retried for 400 ms"):
            await provider.token()
        assert time.monotonic() - t0 < 3 and 3 <= len(idp.requests) <= 6


@pytest.mark.asyncio
async def test_a_stalled_endpoint_times_out_on_read() -> None:
    with TokenEndpoint({"app": "plain-secret"}, stall_s=1.5) as idp:
        provider = _provider(idp.url, read_timeout_ms=200, retry_backoff_max_ms=100)
        t0 = time.monotonic()
        with pytest.raises(SaslAuthenticationError, match="sasl_login_read_timeout_ms=200"):
            await provider.token()
        assert time.monotonic() - t0 < 1.4


@pytest.mark.asyncio
async def test_token_claims_are_checked_under_their_configured_names(idp: TokenEndpoint) -> None:
    with pytest.raises(SaslAuthenticationError, match="has no 'client_id' claim"):
        await _provider(idp.url, sub_claim_name="client_id").token()
    idp.claims = {"client_id": "app-7", "scp": ["produce", "produce"]}
    with pytest.raises(SaslAuthenticationError, match="'scp' claim has 'produce' twice"):
        await _provider(idp.url, sub_claim_name="client_id", scope_claim_name="scp").token()
    idp.claims = {"client_id": "app-7", "scp": ["produce", "describe"]}
    provider = _provider(idp.url, sub_claim_name="client_id", scope_claim_name="scp")
    await provider.token()
    assert provider.claims is not None and provider.claims.subject == "app-7"
    assert provider.claims.scopes == {"produce", "describe"}


@pytest.mark.asyncio
async def test_the_refresh_happens_in_the_background_at_its_time() -> None:
    """2 s tokens refreshed at half their lifetime (no margins, no jitter): the provider
    fetches the next one about 1 s later by itself, and close() stops it."""
    with TokenEndpoint({"app": "plain-secret"}, lifetime_s=2) as idp:
        provider = _provider(idp.url, refresh=RefreshWindow(0.5, 0.0, 0, 0))
        first = await provider.token()
        await wait_until(lambda: provider.fetches >= 3, "two background refreshes", timeout=5)
        t = idp.request_times
        assert all(0.95 <= b - a < 1.5 for a, b in itertools.pairwise(t[:3])), t
        assert provider._fresh() not in (None, first)
        provider.close()
        fetched = provider.fetches
        await asyncio.sleep(1.3)
        assert provider.fetches == fetched


@pytest.mark.asyncio
async def test_a_failed_refresh_keeps_the_valid_token(
    idp: TokenEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    provider = _provider(idp.url, retry_backoff_max_ms=100, refresh=RefreshWindow(0.5, 0.0))
    first = await provider.token()
    assert provider.claims is not None
    idp.fail_first = 10**6  # the endpoint fails from now on
    provider.refresh_at_ms = 0  # the refresh time has come
    assert await provider.token() == first
    assert provider.refresh_at_ms - time.time() * 1000 == pytest.approx(10_000, abs=1000)
    assert "token refresh failed" in caplog.text
    provider.claims = type(provider.claims)(frozenset(), 0, "app", None)  # now expired
    provider.refresh_at_ms = 0
    with pytest.raises(SaslAuthenticationError, match="HTTP 503"):
        await provider.token()
    provider.close()


@pytest.mark.asyncio
async def test_tokens_are_checked_against_the_jwks() -> None:
    with TokenEndpoint({"app": "plain-secret"}, signing="ES256") as idp:

        def jwks(**kw: Any) -> JwksVerifier:
            kw = {"expected_audience": ["kafka"], "expected_issuer": idp.issuer, **kw}
            return JwksVerifier(idp.jwks_url, **kw)

        provider = _provider(idp.url, jwks=jwks())
        await provider.token()
        assert idp.jwks_fetches == 1
        with pytest.raises(SaslAuthenticationError, match=r"audience \['kafka'\] is not expected"):
            await _provider(idp.url, jwks=jwks(expected_audience=["billing"])).token()
        with pytest.raises(SaslAuthenticationError, match=r"issuer .* is not the expected 'x'"):
            await _provider(idp.url, jwks=jwks(expected_issuer="x")).token()
        idp.lifetime_s = -60  # expired beyond the 30 s skew
        with pytest.raises(SaslAuthenticationError, match="expired at exp="):
            await _provider(idp.url, jwks=jwks()).token()
    with (
        TokenEndpoint({"app": "plain-secret"}) as unsigned,
        TokenEndpoint({}, signing="RS256") as keys,
    ):
        verifier = JwksVerifier(keys.jwks_url, expected_audience=["kafka"], expected_issuer="i")
        with pytest.raises(SaslAuthenticationError, match="not signed"):
            await _provider(unsigned.url, jwks=verifier).token()


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"sasl_login_refresh_window_factor": 0.4}, r"window_factor=0.4 must be within \[0.5"),
        ({"sasl_login_refresh_window_jitter": 0.3}, "window_jitter=0.3 must be within"),
        ({"sasl_login_refresh_min_period_seconds": 901}, "min_period_seconds=901"),
        ({"sasl_login_refresh_buffer_seconds": -1}, "buffer_seconds=-1"),
        ({"sasl_login_read_timeout_ms": 0}, "read_timeout_ms=0 must be > 0"),
        ({"sasl_login_retry_backoff_max_ms": 50}, "retry_backoff_max_ms=50 must be >= "),
        ({"sasl_oauthbearer_sub_claim_name": " "}, "sub_claim_name must not be empty"),
        (
            {"sasl_oauthbearer_expected_audience": "kafka"},
            "expected_audience='kafka' must be a sequence",
        ),
        ({"sasl_oauthbearer_jwks_endpoint_url": "http://idp.example/jwks"}, "scheme 'http'"),
        ({"sasl_oauthbearer_jwks_endpoint_url": "https://i/jwks"}, "needs .*expected_audience"),
        (
            {
                "sasl_oauthbearer_jwks_endpoint_url": "https://i/jwks",
                "sasl_oauthbearer_expected_audience": ["kafka"],
            },
            "needs sasl_oauthbearer_expected_issuer",
        ),
        ({"sasl_oauthbearer_jwks_endpoint_refresh_ms": 0}, "refresh_ms=0 must be > 0"),
    ],
)
def test_settings_are_validated(settings: dict[str, Any], says: str) -> None:
    base: dict[str, Any] = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauthbearer_token_endpoint_url": "https://idp.example/token",
        "sasl_oauthbearer_client_credentials_client_id": "app",
        "sasl_oauthbearer_client_credentials_client_secret": "s",
    }
    with pytest.raises(ConfigError, match=says):
        ProducerConfig(**base, **settings)


def test_java_properties_reach_the_provider() -> None:
    cfg = ProducerConfig.from_properties(
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
            "sasl.oauthbearer.token.endpoint.url": "https://idp.example/token",
            "sasl.oauthbearer.client.credentials.client.id": "app",
            "sasl.oauthbearer.client.credentials.client.secret": "s",
            "sasl.login.refresh.window.factor": "0.9",
            "sasl.login.refresh.window.jitter": "0",
            "sasl.login.read.timeout.ms": "2500",
            "sasl.oauthbearer.header.urlencode": "true",
            "sasl.oauthbearer.jwks.endpoint.url": "file:///etc/jwks.json",
            "sasl.oauthbearer.expected.audience": "kafka, billing",
            "sasl.oauthbearer.expected.issuer": "https://idp.example",
        }
    )
    provider = cfg.oauth_token_provider()
    assert isinstance(provider, ClientCredentialsTokenProvider)
    assert provider.refresh == RefreshWindow(0.9, 0.0, 60, 300)
    assert provider.read_timeout_ms == 2500 and provider.connect_timeout_ms is None
    assert provider.header_urlencode and provider.jwks is not None
    assert provider.jwks.expected_audience == ["kafka", "billing"]
    assert repr(provider) == (
        "<ClientCredentialsTokenProvider https://idp.example/token client_id='app' scope=None>"
    )


@pytest.mark.asyncio
async def test_the_log_of_a_fetch_names_no_secret(
    idp: TokenEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = _provider(idp.url)
    token = await provider.token()
    assert "plain-secret" not in caplog.text and token not in caplog.text
    assert "next refresh in" in caplog.text


def _file_jwks(path: Path, *endpoints: TokenEndpoint) -> None:
    path.write_text(json.dumps({"keys": [e.jwk for e in endpoints]}))


def test_jwks_is_fetched_again_when_due_or_for_an_unknown_key(tmp_path: Path) -> None:
    """Time as an argument: a kid the set lacks makes it fetched at once, then not again for
    a minute; ``refresh_ms`` after a fetch it is fetched again; a failed refresh keeps the
    keys already known."""
    with (
        TokenEndpoint({"app": "s"}, signing="RS256") as old,
        TokenEndpoint({"app": "s"}, signing="ES256") as new,
    ):
        path = tmp_path / "jwks.json"
        _file_jwks(path, old)
        verifier = JwksVerifier(
            path.as_uri(),
            refresh_ms=600_000,
            retry_backoff_max_ms=200,
            expected_audience=["kafka"],
            expected_issuer=old.issuer,
        )
        now = time.time()
        verifier.check(parse(old.token_for("app")), now)
        assert verifier.fetches == 1
        rotated = parse(new.token_for("app"))
        with pytest.raises(InvalidTokenError, match="no key of the JWKS"):
            verifier.check(rotated, now)
        assert verifier.fetches == 2  # fetched again at once for the unknown kid
        _file_jwks(path, old, new)  # the provider publishes the new key
        with pytest.raises(InvalidTokenError, match="no key of the JWKS"):
            verifier.check(rotated, now + 30)  # not again within the minute
        verifier.check(rotated, now + 61)
        assert verifier.fetches == 3
        path.unlink()  # the key set is gone: the known keys stay in use
        verifier.check(rotated, now + 61 + 600)
        assert verifier.fetches == 3


@pytest.mark.asyncio
async def test_closing_the_authenticator_stops_the_background_refresh(idp: TokenEndpoint) -> None:
    provider = _provider(idp.url)
    await provider.token()
    assert provider._refresher.timer is not None
    SaslAuthenticator("OAUTHBEARER", token_provider=provider).close()
    assert provider._refresher.timer is None
