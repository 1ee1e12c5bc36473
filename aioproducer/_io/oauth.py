"""OAUTHBEARER token providers: the interface (aiokafka's ``AbstractTokenProvider`` shape) and
an OAuth 2 client-credentials provider against a token endpoint (KIP-768), with Java 4.x's
login settings and semantics.

The client-credentials provider POSTs ``grant_type=client_credentials`` (and ``scope``) with
the client id and secret in HTTP Basic authentication (URL-encoded first only with
``header_urlencode``, Java's ``sasl.oauthbearer.header.urlencode``, off by default), within
the connect and read timeouts, retrying with Java's backoff. Each token is checked as Java's
client checks it (:mod:`aioproducer._core.jwt`: its subject and scope claims, ``exp``, and
against a JWKS when one is given), then cached until the refresh time Java's
``ExpiringCredentialRefreshingLogin`` would pick (:func:`~aioproducer._core.oauth.refresh_at_ms`).
As Java's login thread, the refresh happens at that time in the background (a timer on the
running loop, cancelled by :meth:`~ClientCredentialsTokenProvider.close`, which the producer
calls when it closes), so a connection or re-authentication rarely waits for a fetch; a call of
:meth:`~ClientCredentialsTokenProvider.token` past the refresh time fetches too. When a refresh
fails while the current token is still valid, the current one stays in use and the refresh is
tried again 10 s later. Neither the secret nor a
token appears in its repr, its logs or the errors it raises.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from .._core.jwt import InvalidTokenError, TokenClaims, parse, token_claims
from .._core.oauth import RELOGIN_RETRY_MS, RefreshWindow, refresh_at_ms
from ..errors import SaslAuthenticationError
from .backend import Later, ops_for, running_loop
from .jwks import JwksVerifier
from .oauth_http import HttpFailure, form_encode, redact, request, with_retries

if TYPE_CHECKING:
    from ..config import ProducerConfig

log = logging.getLogger("aioproducer.oauth")


class AbstractTokenProvider:
    """What ``sasl_oauth_token_provider`` must look like: ``token()`` returns the token (a
    plain method or a coroutine function), and ``extensions()`` optionally returns the SASL
    extensions (KIP-342) as a dict of str to str. Subclassing is optional."""

    async def token(self) -> str:
        raise NotImplementedError

    def extensions(self) -> dict[str, str]:
        return {}


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (seconds since the epoch) of a JWT, or None for an opaque token."""
    try:
        exp = parse(token).payload.get("exp")
    except (InvalidTokenError, ValueError):
        return None
    return float(exp) if isinstance(exp, (int, float)) else None


class ClientCredentialsTokenProvider(AbstractTokenProvider):
    """OAuth 2 client credentials grant against ``token_endpoint_url`` (KIP-768).

    ``ssl_context`` verifies an https endpoint (default: the system's trust store).
    ``extensions`` are sent with every token (KIP-342). The other keywords are Java's
    ``sasl.login.*`` and ``sasl.oauthbearer.*`` settings (``ProducerConfig`` documents each),
    with Java's defaults; ``jwks`` checks every token against a key set.
    """

    def __init__(
        self,
        token_endpoint_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        extensions: dict[str, str] | None = None,
        ssl_context: Any = None,
        connect_timeout_ms: int | None = None,
        read_timeout_ms: int | None = None,
        retry_backoff_ms: int = 100,
        retry_backoff_max_ms: int = 10000,
        refresh: RefreshWindow | None = None,
        header_urlencode: bool = False,
        scope_claim_name: str = "scope",
        sub_claim_name: str = "sub",
        jwks: JwksVerifier | None = None,
    ) -> None:
        self.refresh = refresh or RefreshWindow()
        if not 0.5 <= self.refresh.window_factor <= 1.0:
            raise ValueError("the refresh window factor must be within [0.5, 1.0]")
        if retry_backoff_max_ms < retry_backoff_ms:
            raise ValueError("retry_backoff_max_ms must be at least retry_backoff_ms")
        self.token_endpoint_url = token_endpoint_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self._extensions = dict(extensions or {})
        self._ssl_context = ssl_context
        self.connect_timeout_ms = connect_timeout_ms
        self.read_timeout_ms = read_timeout_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.retry_backoff_max_ms = retry_backoff_max_ms
        self.header_urlencode = header_urlencode
        self.scope_claim_name = scope_claim_name
        self.sub_claim_name = sub_claim_name
        self.jwks = jwks
        self._token: str | None = None
        #: The current token's claims, and when (ms since the epoch) to fetch the next one.
        self.claims: TokenClaims | None = None
        self.refresh_at_ms = 0
        self._lock: Any = None
        #: The background refresh (Java's refresher thread).
        self._refresher = Later()
        #: How many tokens were fetched (tests and metrics look at it).
        self.fetches = 0

    def __repr__(self) -> str:
        return (
            f"<ClientCredentialsTokenProvider {redact(self.token_endpoint_url)} "
            f"client_id={self.client_id!r} scope={self.scope!r}>"
        )

    def extensions(self) -> dict[str, str]:
        return dict(self._extensions)

    def _fresh(self) -> str | None:
        return self._token if time.time() * 1000 < self.refresh_at_ms else None

    async def token(self) -> str:
        token = self._fresh()
        if token is not None:
            return token
        ops = ops_for(running_loop())
        if self._lock is None:
            self._lock = ops.make_lock()
        async with self._lock:  # one fetch for every connection that needs a token now
            token = self._fresh()
            if token is None:
                try:
                    await ops.to_thread(self._fetch)
                except SaslAuthenticationError as exc:
                    if not self._keep_current(exc):
                        raise
                self._schedule()
            assert self._token is not None
            return self._token

    def _schedule(self) -> None:
        """Refresh in the background at ``refresh_at_ms`` (Java's refresher thread)."""
        self._refresher.after(max(0.0, self.refresh_at_ms / 1000 - time.time()), self._refresh)

    async def _refresh(self) -> None:
        try:
            await self.token()
        except Exception as exc:  # the next connection or re-authentication reports it
            log.warning("SASL/OAUTHBEARER: background token refresh failed: %s", exc)

    def close(self) -> None:
        """Stop the background refresh (the token stays cached; a later ``token()`` call
        fetches again when due)."""
        self._refresher.cancel()

    def _keep_current(self, exc: Exception) -> bool:
        """After a failed refresh: keep the current token while it is valid, and try again
        10 s later (Java's login thread); False when there is none to keep."""
        now_ms = time.time() * 1000
        if self._token is None or self.claims is None or now_ms >= self.claims.expires_ms:
            return False
        self.refresh_at_ms = int(now_ms) + RELOGIN_RETRY_MS
        log.warning(
            "SASL/OAUTHBEARER: token refresh failed (%s); the current token stays in use until "
            "it expires in %.0f s, next attempt in %d s",
            exc,
            (self.claims.expires_ms - now_ms) / 1000,
            RELOGIN_RETRY_MS // 1000,
        )
        return True

    def authorization(self) -> str:
        """The ``Authorization`` header (Java's ``formatAuthorizationHeader``)."""
        client_id, secret = self.client_id.strip(), self._client_secret.strip()
        if self.header_urlencode:
            client_id, secret = form_encode(client_id), form_encode(secret)
        return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    def _who(self) -> str:
        """Who asked, for an error (never a secret)."""
        return f"client {self.client_id!r}"

    def _grant(self) -> tuple[str, dict[str, str]]:
        """The form body (without the scope) and extra headers of one token request."""
        return "grant_type=client_credentials", {"Authorization": self.authorization()}

    def _post(self) -> bytes:
        body, headers = self._grant()
        if self.scope and self.scope.strip():
            body += "&scope=" + form_encode(self.scope.strip())
        return request(
            "POST",
            self.token_endpoint_url,
            {
                **headers,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "Cache-Control": "no-cache",
            },
            body.encode(),
            connect_timeout_ms=self.connect_timeout_ms,
            read_timeout_ms=self.read_timeout_ms,
            ssl_context=self._ssl_context,
        )

    def _fetch(self) -> None:
        where = f"SASL/OAUTHBEARER: token endpoint {redact(self.token_endpoint_url)}"
        try:
            body = with_retries(self._post, self.retry_backoff_ms, self.retry_backoff_max_ms, where)
        except HttpFailure as exc:
            text = str(exc)
            if text.startswith("HTTP"):
                raise SaslAuthenticationError(f"{where} refused {self._who()}: {text}") from None
            raise SaslAuthenticationError(f"{where} {text}") from None
        try:
            answer = json.loads(body)
            token = answer["access_token"]
            if not isinstance(token, str) or not token.strip():
                raise ValueError("access_token is not a non-empty string")
        except (ValueError, KeyError, TypeError) as exc:
            raise SaslAuthenticationError(
                f"{where} answered without an access_token: {exc!r}"
            ) from None
        token = token.strip()
        try:
            jwt = parse(token)
            if self.jwks is not None:
                self.jwks.check(jwt)
            claims = token_claims(jwt, self.scope_claim_name, self.sub_claim_name)
        except InvalidTokenError as exc:
            raise SaslAuthenticationError(f"{where}: {exc}") from None
        except HttpFailure as exc:
            raise SaslAuthenticationError(
                f"SASL/OAUTHBEARER: JWKS endpoint {redact(self.jwks.url if self.jwks else '')} "
                f"{exc}"
            ) from None
        now_ms = int(time.time() * 1000)
        self._token, self.claims = token, claims
        self.refresh_at_ms = refresh_at_ms(
            self.refresh, now_ms, claims.issued_at_ms, claims.expires_ms, random.random()
        )
        self.fetches += 1
        log.info(
            "SASL/OAUTHBEARER: token for %r valid until %.3f; next refresh in %.1f s",
            claims.subject,
            claims.expires_ms / 1000,
            (self.refresh_at_ms - now_ms) / 1000,
        )


def token_provider_for(cfg: ProducerConfig) -> ClientCredentialsTokenProvider:
    """The provider the ``sasl_oauthbearer_*``/``sasl_login_*`` settings of ``cfg`` describe
    (validated already): client credentials, or the jwt-bearer grant when an assertion file or
    a private key to sign one is given."""
    assert cfg.sasl_oauthbearer_token_endpoint_url is not None
    jwks = None
    if cfg.sasl_oauthbearer_jwks_endpoint_url is not None:
        jwks = JwksVerifier(
            cfg.sasl_oauthbearer_jwks_endpoint_url,
            refresh_ms=cfg.sasl_oauthbearer_jwks_endpoint_refresh_ms,
            retry_backoff_ms=cfg.sasl_oauthbearer_jwks_endpoint_retry_backoff_ms,
            retry_backoff_max_ms=cfg.sasl_oauthbearer_jwks_endpoint_retry_backoff_max_ms,
            clock_skew_seconds=cfg.sasl_oauthbearer_clock_skew_seconds,
            expected_audience=cfg.sasl_oauthbearer_expected_audience,
            expected_issuer=cfg.sasl_oauthbearer_expected_issuer,
            allow_unverified_audience=cfg.sasl_oauthbearer_allow_unverified_audience,
            allow_unverified_issuer=cfg.sasl_oauthbearer_allow_unverified_issuer,
            connect_timeout_ms=cfg.sasl_login_connect_timeout_ms,
            read_timeout_ms=cfg.sasl_login_read_timeout_ms,
        )
    common: dict[str, Any] = dict(
        connect_timeout_ms=cfg.sasl_login_connect_timeout_ms,
        read_timeout_ms=cfg.sasl_login_read_timeout_ms,
        retry_backoff_ms=cfg.sasl_login_retry_backoff_ms,
        retry_backoff_max_ms=cfg.sasl_login_retry_backoff_max_ms,
        refresh=RefreshWindow(
            cfg.sasl_login_refresh_window_factor,
            cfg.sasl_login_refresh_window_jitter,
            cfg.sasl_login_refresh_min_period_seconds,
            cfg.sasl_login_refresh_buffer_seconds,
        ),
        header_urlencode=cfg.sasl_oauthbearer_header_urlencode,
        scope_claim_name=cfg.sasl_oauthbearer_scope_claim_name,
        sub_claim_name=cfg.sasl_oauthbearer_sub_claim_name,
        jwks=jwks,
    )
    url, scope = cfg.sasl_oauthbearer_token_endpoint_url, cfg.sasl_oauthbearer_scope
    if cfg.sasl_oauthbearer_assertion_file or cfg.sasl_oauthbearer_assertion_private_key_file:
        from .oauth_assertion import jwt_bearer_provider_for

        return jwt_bearer_provider_for(cfg, url, scope, common)
    return ClientCredentialsTokenProvider(
        url,
        cfg.sasl_oauthbearer_client_credentials_client_id or "",
        cfg.sasl_oauthbearer_client_credentials_client_secret or "",
        scope,
        **common,
    )


__all__ = ("AbstractTokenProvider", "ClientCredentialsTokenProvider", "token_provider_for")
