"""The JWKS a client checks its access tokens against (Java 4.x: a client with
``sasl.oauthbearer.jwks.endpoint.url`` validates each token as a broker does).

Java's ``RefreshingHttpsJwks``, on demand rather than on a timer: the key set is fetched on
first use, fetched again once ``jwks_endpoint_refresh_ms`` has passed, and at once when a token
names a ``kid`` the set lacks (at most once a minute per ``kid``). Fetches retry with the
``jwks_endpoint_retry_backoff_ms``/``_max_ms`` backoff; when a refresh fails, the keys already
known stay in use. Blocking: it runs in the token provider's worker thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .._core.jwt import InvalidTokenError, Jwt, candidate_keys, check_signed
from .oauth_http import HttpFailure, log, redact, request, with_retries

#: A ``kid`` missing from the set triggers a new fetch at most this often (Java's
#: ``MISSING_KEY_ID_CACHE_IN_FLIGHT_MS``).
MISSING_KID_RETRY_MS = 60_000
#: How many such ``kid``s are remembered (Java's ``MISSING_KEY_ID_CACHE_MAX_ENTRIES``).
MISSING_KIDS_KEPT = 16
#: Java's JWKS client (jose4j) waits this long to connect and to read when no
#: ``sasl_login_*_timeout_ms`` is set.
DEFAULT_TIMEOUT_MS = 20_000


class JwksVerifier:
    """Checks tokens against the key set at ``url`` (``https://``, loopback ``http://`` or
    ``file:``), with Java's ``BrokerJwtValidator`` rules (:func:`check_signed`)."""

    def __init__(
        self,
        url: str,
        *,
        refresh_ms: int = 3_600_000,
        retry_backoff_ms: int = 100,
        retry_backoff_max_ms: int = 10_000,
        clock_skew_seconds: int = 30,
        expected_audience: Sequence[str] | None = None,
        expected_issuer: str | None = None,
        allow_unverified_audience: bool = False,
        allow_unverified_issuer: bool = False,
        ssl_context: Any = None,
        connect_timeout_ms: int | None = None,
        read_timeout_ms: int | None = None,
    ) -> None:
        if not expected_audience and not allow_unverified_audience:
            raise ValueError(
                "a JWKS needs the expected audience (sasl_oauthbearer_expected_audience), or "
                "sasl_oauthbearer_allow_unverified_audience=True"
            )
        if expected_issuer is None and not allow_unverified_issuer:
            raise ValueError(
                "a JWKS needs the expected issuer (sasl_oauthbearer_expected_issuer), or "
                "sasl_oauthbearer_allow_unverified_issuer=True"
            )
        self.url = url
        self.refresh_ms = refresh_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.retry_backoff_max_ms = retry_backoff_max_ms
        self.clock_skew_seconds = clock_skew_seconds
        self.expected_audience = list(expected_audience) if expected_audience else None
        self.expected_issuer = expected_issuer
        self.allow_unverified_audience = allow_unverified_audience
        self._ssl_context = ssl_context
        self._timeouts = (
            connect_timeout_ms if connect_timeout_ms is not None else DEFAULT_TIMEOUT_MS,
            read_timeout_ms if read_timeout_ms is not None else DEFAULT_TIMEOUT_MS,
        )
        self._keys: list[Mapping[str, Any]] | None = None
        self._fetched_at = 0.0
        self._missing: dict[str, float] = {}
        self._lock = threading.Lock()
        #: How many times the key set was fetched (tests look at it).
        self.fetches = 0

    def __repr__(self) -> str:
        return f"<JwksVerifier {redact(self.url)}>"

    def _fetch(self) -> list[Mapping[str, Any]]:
        where = f"SASL/OAUTHBEARER: JWKS endpoint {redact(self.url)}"
        connect, read = self._timeouts
        body = with_retries(
            lambda: request(
                "GET",
                self.url,
                {"Accept": "application/json"},
                connect_timeout_ms=connect,
                read_timeout_ms=read,
                ssl_context=self._ssl_context,
            ),
            self.retry_backoff_ms,
            self.retry_backoff_max_ms,
            where,
        )
        try:
            keys = json.loads(body)["keys"]
            if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
                raise ValueError("'keys' is not a list of objects")
        except (ValueError, KeyError, TypeError) as exc:
            raise HttpFailure(f"answered no JSON Web Key Set: {exc!r}", retriable=False) from None
        self.fetches += 1
        return keys

    def keys(self, jwt: Jwt, now: float) -> list[Mapping[str, Any]]:
        """The key set to check ``jwt`` with, fetched (again) when due."""
        with self._lock:
            kid = jwt.header.get("kid")
            due = self._keys is None or now * 1000 >= self._fetched_at * 1000 + self.refresh_ms
            if not due and not candidate_keys(jwt, self._keys or []) and isinstance(kid, str):
                due = now >= self._missing.get(kid, 0.0)
                if due:
                    self._missing.pop(kid, None)
                    self._missing[kid] = now + MISSING_KID_RETRY_MS / 1000
                    while len(self._missing) > MISSING_KIDS_KEPT:
                        del self._missing[next(iter(self._missing))]
            if due:
                try:
                    self._keys = self._fetch()
                    self._fetched_at = now
                except HttpFailure as exc:
                    if self._keys is None:
                        raise
                    log.warning("JWKS endpoint %s: refresh failed (%s)", redact(self.url), exc)
            assert self._keys is not None
            return self._keys

    def check(self, jwt: Jwt, now: float | None = None) -> None:
        """Raise :class:`InvalidTokenError` unless ``jwt`` passes Java's broker-side checks;
        :class:`HttpFailure` when the key set cannot be fetched."""
        now = time.time() if now is None else now
        audience = None if self.allow_unverified_audience else self.expected_audience
        try:
            check_signed(
                jwt,
                self.keys(jwt, now),
                now,
                self.clock_skew_seconds,
                audience,
                self.expected_issuer,
                check_audience=not self.allow_unverified_audience,
            )
        except InvalidTokenError as exc:
            raise InvalidTokenError(f"{exc} (JWKS {redact(self.url)})") from None


__all__ = ("JwksVerifier",)
