"""OAUTHBEARER token providers: the interface (aiokafka's ``AbstractTokenProvider`` shape) and
an OAuth 2 client-credentials provider against a token endpoint (KIP-768).

The client-credentials provider POSTs ``grant_type=client_credentials`` (and ``scope``) with
the client id and secret in HTTP Basic authentication (RFC 6749 §2.3.1, URL-encoded first, as
Java's client does), caches the access token, and fetches a new one once
``refresh_window_factor`` of its lifetime has passed (Java's ``sasl.login.refresh.window.factor``,
0.8), so every connection, and every re-authentication, gets a token that is still valid.
Neither the secret nor a token appears in its repr or in the errors it raises.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..errors import SaslAuthenticationError
from .backend import ops_for, running_loop


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
    parts = token.split(".")
    if len(parts) < 2:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = payload.get("exp") if isinstance(payload, dict) else None
    except ValueError:
        return None
    return float(exp) if isinstance(exp, (int, float)) else None


def _redact(url: str) -> str:
    """``url`` without user information (never shown in an error)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class ClientCredentialsTokenProvider(AbstractTokenProvider):
    """OAuth 2 client credentials grant against ``token_endpoint_url`` (KIP-768).

    ``ssl_context`` verifies an https endpoint (default: the system's trust store).
    ``extensions`` are sent with every token (KIP-342).
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
        timeout_ms: int = 10000,
        refresh_window_factor: float = 0.8,
    ) -> None:
        if not 0.5 <= refresh_window_factor <= 1.0:
            raise ValueError("refresh_window_factor must be within [0.5, 1.0]")
        self.token_endpoint_url = token_endpoint_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self._extensions = dict(extensions or {})
        self._ssl_context = ssl_context
        self._timeout = timeout_ms / 1000
        self._window = refresh_window_factor
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock: asyncio.Lock | None = None
        #: How many tokens were fetched (tests and metrics look at it).
        self.fetches = 0

    def __repr__(self) -> str:
        return (
            f"<ClientCredentialsTokenProvider {_redact(self.token_endpoint_url)} "
            f"client_id={self.client_id!r} scope={self.scope!r}>"
        )

    def extensions(self) -> dict[str, str]:
        return dict(self._extensions)

    async def token(self) -> str:
        if self._token is not None and time.time() < self._refresh_at:
            return self._token
        ops = ops_for(running_loop())
        if self._lock is None:
            self._lock = ops.make_lock()
        async with self._lock:  # one fetch for every connection that needs a token now
            if self._token is None or time.time() >= self._refresh_at:
                await ops.to_thread(self._fetch)
            assert self._token is not None
            return self._token

    def _fetch(self) -> None:
        url = self.token_endpoint_url
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        basic = ":".join(
            urllib.parse.quote(v, safe="") for v in (self.client_id, self._client_secret)
        )
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        where = f"SASL/OAUTHBEARER: token endpoint {_redact(url)}"
        started = time.time()
        try:
            with urllib.request.urlopen(
                request, timeout=self._timeout, context=self._ssl_context
            ) as resp:
                body = resp.read(1 << 20)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode(errors="replace") if exc.fp is not None else ""
            raise SaslAuthenticationError(
                f"{where} refused client {self.client_id!r}: HTTP {exc.code} {detail}".rstrip()
            ) from None
        except (OSError, ValueError) as exc:
            raise SaslAuthenticationError(f"{where} unreachable: {exc}") from None
        try:
            answer = json.loads(body)
            token = answer["access_token"]
            if not isinstance(token, str) or not token:
                raise ValueError("access_token is not a non-empty string")
        except (ValueError, KeyError, TypeError) as exc:
            raise SaslAuthenticationError(
                f"{where} answered without an access_token: {exc!r}"
            ) from None
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, (int, float)) and expires_in > 0:
            expiry = started + float(expires_in)
        else:
            expiry = _jwt_expiry(token) or started + 300.0
        self._token = token
        self._refresh_at = started + max(0.0, expiry - started) * self._window
        self.fetches += 1


__all__ = ("AbstractTokenProvider", "ClientCredentialsTokenProvider")
