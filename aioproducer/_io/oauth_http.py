"""Blocking HTTP for the OAuth endpoints (token, JWKS), run in a worker thread: separate
connect and read timeouts (Java's ``sasl.login.connect.timeout.ms`` and
``sasl.login.read.timeout.ms``), and Java's retry loop (``Retry``: exponential backoff from
``retry_backoff_ms``, every attempt within ``retry_backoff_max_ms`` of the first; HTTP answers
that cannot improve, such as 401, are not retried). Errors never show a URL's user information.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._core.oauth import retry_wait_ms

log = logging.getLogger("aioproducer.oauth")

#: Answers a retry cannot change (Java's ``HttpAccessTokenRetriever.UNRETRYABLE_HTTP_CODES``).
UNRETRYABLE = frozenset(
    (400, 401, 402, 403, 404, 405, 406, 407, 409, 410, 411, 412, 413, 414, 415, 501, 505)
)
_MAX_BODY = 1 << 20


class HttpFailure(Exception):
    """One failed attempt: ``retriable`` says whether another attempt may succeed."""

    def __init__(self, message: str, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


def redact(url: str) -> str:
    """``url`` without user information or query (never shown in an error)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def form_encode(text: str) -> str:
    """Java's ``URLEncoder.encode(text, UTF-8)``: form encoding, space as ``+``, and only
    letters, digits and ``.-*_`` left as they are."""
    return urllib.parse.quote_plus(text, safe="*").replace("~", "%7E")


def request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None = None,
    *,
    connect_timeout_ms: int | None = None,
    read_timeout_ms: int | None = None,
    ssl_context: Any = None,
) -> bytes:
    """One attempt: the answer's body for HTTP 200/201 (a ``file:`` URL: the file), else
    :class:`HttpFailure`. A timeout of None waits as long as it takes (Java's default)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        try:
            return Path(urllib.parse.unquote(parts.path)).read_bytes()
        except OSError as exc:
            raise HttpFailure(f"cannot read {parts.path}: {exc.strerror}") from None
    host, port = parts.hostname or "", parts.port
    connect_s = None if connect_timeout_ms is None else connect_timeout_ms / 1000
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl_context if ssl_context is not None else ssl.create_default_context()
        conn = http.client.HTTPSConnection(host, port, timeout=connect_s, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=connect_s)
    stage = "connect"
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(None if read_timeout_ms is None else read_timeout_ms / 1000)
        stage = "read"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read(_MAX_BODY)
    except TimeoutError:
        which, limit = (
            ("connect", connect_timeout_ms) if stage == "connect" else ("read", read_timeout_ms)
        )
        raise HttpFailure(
            f"no {'connection' if which == 'connect' else 'answer'} within "
            f"sasl_login_{which}_timeout_ms={limit}"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise HttpFailure(f"unreachable: {exc or type(exc).__name__}") from None
    finally:
        conn.close()
    if resp.status in (200, 201):
        return data
    detail = data[:500].decode(errors="replace").strip()
    raise HttpFailure(
        f"HTTP {resp.status}" + (f" {detail}" if detail else ""),
        retriable=resp.status not in UNRETRYABLE,
    )


def with_retries(
    attempt: Callable[[], bytes],
    backoff_ms: int,
    backoff_max_ms: int,
    what: str,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """``attempt()`` until it succeeds, fails for good, or the retry time is up (Java's
    ``Retry``); the last failure is raised with how many attempts were made."""
    started = int(clock() * 1000)
    number = 0
    while True:
        number += 1
        try:
            return attempt()
        except HttpFailure as exc:
            wait = retry_wait_ms(number, backoff_ms, started, int(clock() * 1000), backoff_max_ms)
            if not exc.retriable or wait <= 0:
                if number > 1:
                    exc.args = (f"{exc} (attempt {number}, retried for {backoff_max_ms} ms)",)
                raise
            log.warning("%s: attempt %d failed (%s); again in %d ms", what, number, exc, wait)
            sleep(wait / 1000)


__all__ = ("UNRETRYABLE", "HttpFailure", "form_encode", "redact", "request", "with_retries")
