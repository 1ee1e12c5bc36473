"""When an OAUTHBEARER token is fetched again, and how long to wait between attempts at the
token (or JWKS) endpoint: Java's rules as values, time an argument.

* :func:`refresh_at_ms` is Java's ``ExpiringCredentialRefreshingLogin.refreshMs``: a token
  valid from ``start`` (its ``iat``, else when it was fetched) to ``expire`` is refreshed at
  ``window_factor`` of that lifetime plus up to ``window_jitter`` more, but no later than
  ``buffer_seconds`` before it expires and no sooner than ``min_period_seconds`` from now; when
  the remaining lifetime cannot hold both margins, at the window's share of the time left.
* :func:`retry_wait_ms` is Java's ``Retry``: the wait after a failed attempt starts at
  ``retry_backoff_ms`` and doubles, and every attempt happens within ``retry_backoff_max_ms``
  of the first one (so the max bounds the whole retry loop, not one wait).
"""

from __future__ import annotations

from dataclasses import dataclass

#: A refresh that failed while the old token is still valid is tried again this much later
#: (Java's ``DELAY_SECONDS_BEFORE_NEXT_RETRY_WHEN_RELOGIN_FAILS``, 10 s); an expired token too.
RELOGIN_RETRY_MS = 10_000


@dataclass(frozen=True, slots=True)
class RefreshWindow:
    """Java's ``sasl.login.refresh.*`` settings (the defaults are Java's)."""

    window_factor: float = 0.8
    window_jitter: float = 0.05
    min_period_seconds: int = 60
    buffer_seconds: int = 300


def refresh_at_ms(
    window: RefreshWindow, now_ms: int, start_ms: int | None, expire_ms: int, rnd: float
) -> int:
    """When (ms, the clock of ``now_ms``) to fetch a new token for one that expires at
    ``expire_ms``; ``rnd`` in [0, 1) draws the jitter. Never earlier than ``now_ms``."""
    if now_ms > expire_ms:
        return now_ms + RELOGIN_RETRY_MS
    share = window.window_factor + window.window_jitter * rnd
    min_period_ms = window.min_period_seconds * 1000
    buffer_ms = window.buffer_seconds * 1000
    if now_ms + min_period_ms + buffer_ms > expire_ms:
        # Too short a lifetime for both margins: ignore them.
        return now_ms + int((expire_ms - now_ms) * share)
    start = start_ms if start_ms is not None else now_ms
    proposed = start + int((expire_ms - start) * share)
    if proposed > expire_ms - buffer_ms:
        return expire_ms - buffer_ms
    return max(proposed, now_ms + min_period_ms)


def retry_wait_ms(attempt: int, backoff_ms: int, started_ms: int, now_ms: int, max_ms: int) -> int:
    """How long to wait after failed attempt number ``attempt`` (1, 2, ...) of a loop that
    began at ``started_ms``; 0 or less: give up (``max_ms`` after the start has passed)."""
    left = started_ms + max_ms - now_ms
    if left <= 0:
        return 0
    return min(backoff_ms * (1 << min(attempt - 1, 40)), left)


__all__ = ("RELOGIN_RETRY_MS", "RefreshWindow", "refresh_at_ms", "retry_wait_ms")
