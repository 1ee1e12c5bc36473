"""Bootstrap name resolution before the first connection (Java 4.4's
``bootstrap.resolve.timeout.ms``).

0 (the default): every bootstrap host is resolved once when the producer starts; when none
resolves, ``start()`` raises :class:`ConfigError`, as Java's constructor raises
``ConfigException`` ("No resolvable bootstrap urls"). A host that does not resolve beside one
that does is logged and left to the connection attempts. A positive value: resolution is
retried (with ``retry_backoff_ms``, doubling up to ``retry_backoff_max_ms``) for that many ms,
then ``start()`` raises :class:`BootstrapResolutionError` and the producer is closed (Java's
unrecoverable ``BootstrapResolutionException``: close it and make a new one once DNS or
``bootstrap_servers`` is fixed).

Names are resolved by the event loop's resolver (``loop.getaddrinfo``: asyncio's runs the
system's in a worker thread, uvloop's its own), or in a worker thread where the loop has none
(anyio's backends). IP addresses need no resolver.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Sequence
from typing import Any

from ..errors import BootstrapResolutionError, ConfigError
from .backend import Ops

log = logging.getLogger("aioproducer.connection")


def needs_dns(hosts: Sequence[tuple[str, int]]) -> bool:
    """Whether any bootstrap host is a name (an IP address needs no resolver, nor a thread)."""
    for host, _port in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return True
    return False


async def _lookup(loop: Any, ops: Ops, host: str, port: int) -> None:
    resolve = getattr(loop, "getaddrinfo", None)
    if resolve is not None:
        await resolve(host, port, type=socket.SOCK_STREAM)
    else:
        await ops.to_thread(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


async def unresolved(
    loop: Any, ops: Ops, hosts: Sequence[tuple[str, int]]
) -> list[tuple[str, int, Exception]]:
    """The bootstrap hosts that do not resolve, each with its error."""
    failed: list[tuple[str, int, Exception]] = []
    for host, port in hosts:
        try:
            await _lookup(loop, ops, host, port)
        except (OSError, ValueError, OverflowError) as e:  # gaierror; a bad port or name
            failed.append((host, port, e))
    return failed


async def resolve_with_retries(
    loop: Any,
    ops: Ops,
    hosts: Sequence[tuple[str, int]],
    servers: object,
    timeout_ms: int,
    backoff_ms: int,
    backoff_max_ms: int,
) -> None:
    """Return once at least one host resolves; raise as the module's docstring says."""
    deadline = loop.time() + timeout_ms / 1000
    wait = max(backoff_ms, 1) / 1000
    while True:
        failed = await unresolved(loop, ops, hosts)
        if len(failed) < len(hosts):
            for host, port, e in failed:
                log.warning("bootstrap server %s:%d does not resolve: %s", host, port, e)
            return
        why = "; ".join(f"{h}:{p}: {e}" for h, p, e in failed)
        if timeout_ms <= 0:
            raise ConfigError(
                f"bootstrap_servers={servers!r}: no bootstrap server resolves ({why})"
            )
        left = deadline - loop.time()
        if left <= 0:
            raise BootstrapResolutionError(
                f"bootstrap_servers={servers!r}: no bootstrap server resolved within "
                f"bootstrap_resolve_timeout_ms={timeout_ms} ({why}); close this producer and "
                "make a new one once DNS or bootstrap_servers is fixed"
            )
        await ops.wait_done(loop.create_future(), min(wait, left))  # a pause: never done
        wait = min(wait * 2, max(backoff_max_ms, 1) / 1000)
