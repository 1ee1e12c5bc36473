"""SASL/GSSAPI (Kerberos V5, RFC 4752) as Kafka speaks it, message logic only; and when to
renew a ticket cache's TGT (Java's ``KerberosLogin`` refresh rule).

The exchange: the GSS-API context tokens go back and forth until the context is established
(with mutual authentication: the client's AP-REQ, the broker's AP-REP, then an empty client
message); then the broker sends a wrapped 4-byte offer (a bit mask of the security layers it
supports, and its maximum message size) and the client answers, wrapped, that it takes no
security layer (0x01) with a maximum size of 0, as Kafka's Java client does: Kafka never wraps
its requests, TLS protects them when wanted. The broker's empty answer ends it.

The GSS-API context is injected (:class:`GssContext`): the shell binds it to python-gssapi, the
unit tests to a fake, so this module needs no Kerberos.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from ..errors import SaslAuthenticationError
from .sasl import SaslMechanismClient

#: RFC 4752 §3.3: the security-layer bits; Kafka takes "no security layer" only.
NO_SECURITY_LAYER = 0x01


class GssContext(Protocol):
    """An initiator's GSS-API security context (RFC 2743): ``step`` feeds the acceptor's last
    token (None at first) and returns the next token to send (None or empty: none);
    ``complete`` is true once the context is established. ``wrap`` is integrity only (no
    confidentiality), ``unwrap`` verifies. Each raises on a failure."""

    @property
    def complete(self) -> bool: ...

    def step(self, token: bytes | None) -> bytes | None: ...

    def wrap(self, message: bytes) -> bytes: ...

    def unwrap(self, message: bytes) -> bytes: ...


class GssapiClient(SaslMechanismClient):
    """RFC 4752 client over an injected :class:`GssContext`."""

    mechanism = "GSSAPI"

    def __init__(self, context: GssContext, authorization_id: str = "") -> None:
        self._context = context
        self._authzid = authorization_id.encode()
        self._state = "start"
        #: The broker's offer, once read: its security-layer bit mask and maximum size.
        self.offer: tuple[int, int] | None = None

    def step(self, challenge: bytes | None) -> bytes | None:
        if self._state in ("start", "context"):
            token = self._context.step(None if self._state == "start" else challenge or b"")
            self._state = "layers" if self._context.complete else "context"
            if not token and self._state == "context":
                raise SaslAuthenticationError(
                    "SASL/GSSAPI: the GSS-API context is not established and has nothing to send"
                )
            return token or b""
        if self._state == "layers":
            self._state = "answered"
            return self._answer_offer(challenge or b"")
        if self._state == "answered":
            if challenge:
                raise SaslAuthenticationError(
                    "SASL/GSSAPI: the broker sent a message after the security-layer exchange"
                )
            self._state = "done"
            return None
        raise SaslAuthenticationError("SASL/GSSAPI: unexpected broker message")

    def _answer_offer(self, wrapped: bytes) -> bytes:
        try:
            offer = self._context.unwrap(wrapped)
        except SaslAuthenticationError:
            raise
        except Exception as exc:
            raise SaslAuthenticationError(
                f"SASL/GSSAPI: the broker's security-layer offer does not verify: {exc}"
            ) from exc
        if len(offer) != 4:
            raise SaslAuthenticationError(
                f"SASL/GSSAPI: the broker's security-layer offer has {len(offer)} bytes, not 4"
            )
        layers, size = offer[0], int.from_bytes(offer[1:], "big")
        self.offer = (layers, size)
        if not layers & NO_SECURITY_LAYER:
            raise SaslAuthenticationError(
                f"SASL/GSSAPI: the broker requires a security layer (offer 0x{layers:02x}); "
                "Kafka clients use none (use SASL_SSL for confidentiality)"
            )
        return self._context.wrap(struct.pack(">I", NO_SECURITY_LAYER << 24) + self._authzid)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A credential's times, in seconds since the epoch (``renew_till`` 0: not renewable)."""

    server: str
    start: int
    end: int
    renew_till: int


@dataclass(frozen=True, slots=True)
class RefreshPlan:
    """What the ticket-cache refresher does next: wait ``delay_s`` then run ``kinit -R``; or
    stop (``delay_s`` None) for ``reason``."""

    delay_s: float | None
    reason: str = ""


def refresh_plan(
    tgt: Ticket | None,
    now: float,
    window_factor: float,
    jitter: float,
    min_time_before_relogin_s: float,
    rand: float,
) -> RefreshPlan:
    """Java's ``KerberosLogin`` rule for a TGT in a ticket cache: renew at ``window_factor``
    (+ up to ``jitter``, spread by ``rand`` in [0, 1)) of its lifetime, but not sooner than
    ``min_time_before_relogin_s`` from now unless the ticket would expire first; stop when it
    cannot be renewed past its expiry. No TGT: look again after the minimum time."""
    if tgt is None:
        return RefreshPlan(min_time_before_relogin_s, "no TGT in the ticket cache")
    if tgt.renew_till < tgt.end:
        return RefreshPlan(
            None,
            f"the TGT cannot be renewed beyond its expiry ({tgt.end}): new connections fail "
            "after it unless the cache is refreshed by other means (kinit, a keytab)",
        )
    proposed = tgt.start + (tgt.end - tgt.start) * (window_factor + jitter * rand)
    if proposed > tgt.end or min_time_before_relogin_s > tgt.end - now:
        return RefreshPlan(0.0, "the TGT expires before the next scheduled refresh")
    return RefreshPlan(max(proposed - now, min_time_before_relogin_s))


class CcacheFormatError(ValueError):
    """A credential cache file this parser does not read."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise CcacheFormatError("truncated credential cache")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def counted(self) -> bytes:
        return self.take(self.u32())

    def principal(self) -> str:
        self.u32()  # name type
        count = self.u32()
        realm = self.counted().decode(errors="replace")
        parts = [self.counted().decode(errors="replace") for _ in range(count)]
        return "/".join(parts) + "@" + realm


def ccache_tickets(data: bytes) -> list[Ticket]:
    """The credentials of an MIT FILE credential cache (format 0x0503 or 0x0504)."""
    r = _Reader(data)
    version = r.u16()
    if version not in (0x0503, 0x0504):
        raise CcacheFormatError(f"credential cache format 0x{version:04x} is not read")
    if version == 0x0504:
        r.take(r.u16())  # header tags (the KDC time offset)
    r.principal()  # the default principal
    out = []
    while r.pos < len(data):
        r.principal()  # client
        server = r.principal()
        r.u16()  # key type
        r.counted()  # key
        _auth, start, end, renew_till = (r.u32() for _ in range(4))
        r.u8()  # is_skey
        r.u32()  # ticket flags
        for _ in range(r.u32()):  # addresses
            r.u16()
            r.counted()
        for _ in range(r.u32()):  # authorization data
            r.u16()
            r.counted()
        r.counted()  # ticket
        r.counted()  # second ticket
        out.append(Ticket(server, start or _auth, end, renew_till))
    return out


def find_tgt(tickets: list[Ticket]) -> Ticket | None:
    """The ticket-granting ticket (``krbtgt/REALM@REALM``) among ``tickets``."""
    for t in tickets:
        name, _, realm = t.server.rpartition("@")
        if name == f"krbtgt/{realm}":
            return t
    return None


__all__ = (
    "NO_SECURITY_LAYER",
    "CcacheFormatError",
    "GssContext",
    "GssapiClient",
    "RefreshPlan",
    "Ticket",
    "ccache_tickets",
    "find_tgt",
    "refresh_plan",
)
