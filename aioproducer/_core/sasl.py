"""The client side of Kafka's SASL mechanisms as message logic only (no IO, no clock).

Each mechanism is a small state machine: :meth:`SaslMechanismClient.step` takes the broker's
last SaslAuthenticate ``auth_bytes`` (None before the first message) and returns the next
message to send, or None when the exchange is complete. A broker answer that does not verify
raises :class:`SaslAuthenticationError` naming the mechanism.

* PLAIN (RFC 4616): one message.
* SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677): client-first, client-final with the
  proof, then the server signature, compared in constant time. Like Kafka's Java client, the
  password is used as UTF-8 without SASLprep.
* OAUTHBEARER (RFC 7628, KIP-255, KIP-342): the token and its extensions in one message; an
  error challenge from the broker is answered with the single byte 0x01 (RFC 7628 §3.2.3) so
  the broker ends the exchange with its error.

The objects hold secrets (the password, the salted password, the token) only for the length of
one exchange, and their reprs never show them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping

from ..errors import SaslAuthenticationError

#: The mechanisms this client speaks.
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
_SCRAM_HASHES = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
#: Kafka's SCRAM credentials need at least 4096 iterations; fewer means a hostile server.
SCRAM_MIN_ITERATIONS = 4096
#: Refuse absurd iteration counts a hostile server could send to burn the client's CPU.
SCRAM_MAX_ITERATIONS = 1_000_000
_EXTENSION_KEY = re.compile(r"[A-Za-z]+")
_EXTENSION_VALUE = re.compile(r"[\x21-\x7e \t\r\n]+")


class SaslMechanismClient:
    """One authentication exchange of one mechanism (subclasses below)."""

    mechanism = ""

    def step(self, challenge: bytes | None) -> bytes | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.mechanism}>"


class PlainClient(SaslMechanismClient):
    mechanism = "PLAIN"

    def __init__(self, username: str, password: str) -> None:
        self._message: bytes | None = b"\0" + username.encode() + b"\0" + password.encode()

    def step(self, challenge: bytes | None) -> bytes | None:
        message, self._message = self._message, None  # sent once, then forgotten
        return message


def _saslname(username: str) -> str:
    # RFC 5802 §5.1: ',' and '=' in a user name are escaped.
    return username.replace("=", "=3D").replace(",", "=2C")


def _attributes(message: bytes, mechanism: str) -> dict[str, str]:
    try:
        text = message.decode()
    except UnicodeDecodeError:
        raise SaslAuthenticationError(
            f"SASL/{mechanism}: the broker's message is not UTF-8"
        ) from None
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise SaslAuthenticationError(
                f"SASL/{mechanism}: malformed broker message (attribute {key[:20]!r})"
            )
        out.setdefault(key, value)
    return out


class ScramClient(SaslMechanismClient):
    """RFC 5802 client: ``step(None)`` -> client-first, ``step(server-first)`` ->
    client-final, ``step(server-final)`` -> None once the server signature verifies."""

    def __init__(self, mechanism: str, username: str, password: str, nonce: str) -> None:
        if mechanism not in _SCRAM_HASHES:
            raise ValueError(f"not a SCRAM mechanism: {mechanism!r}")
        if not nonce or "," in nonce or not nonce.isprintable():
            raise ValueError("the SCRAM nonce must be printable ASCII without ','")
        self.mechanism = mechanism
        self._hash = _SCRAM_HASHES[mechanism]
        self._password: bytes | None = password.encode()
        self._nonce = nonce
        self._first_bare = f"n={_saslname(username)},r={nonce}"
        self._server_signature: bytes | None = None
        self._state = "start"

    def _hmac(self, key: bytes, msg: bytes) -> bytes:
        return hmac.new(key, msg, self._hash).digest()

    def step(self, challenge: bytes | None) -> bytes | None:
        if self._state == "start":
            self._state = "first-sent"
            return b"n,," + self._first_bare.encode()
        if challenge is None:
            raise SaslAuthenticationError(f"SASL/{self.mechanism}: expected a broker message")
        if self._state == "first-sent":
            self._state = "final-sent"
            return self._client_final(challenge)
        if self._state == "final-sent":
            self._verify(challenge)
            self._state = "done"
            return None
        raise SaslAuthenticationError(f"SASL/{self.mechanism}: unexpected broker message")

    def _client_final(self, server_first: bytes) -> bytes:
        mech = self.mechanism
        attrs = _attributes(server_first, mech)
        if "e" in attrs:
            raise SaslAuthenticationError(f"SASL/{mech}: the broker refused: {attrs['e']}")
        nonce, salt_b64, iterations = attrs.get("r"), attrs.get("s"), attrs.get("i")
        if nonce is None or salt_b64 is None or iterations is None:
            raise SaslAuthenticationError(f"SASL/{mech}: server-first message lacks r, s or i")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise SaslAuthenticationError(
                f"SASL/{mech}: the broker's nonce does not extend ours (possible replay)"
            )
        try:
            salt = base64.b64decode(salt_b64, validate=True)
            count = int(iterations)
        except ValueError:
            raise SaslAuthenticationError(f"SASL/{mech}: malformed salt or iterations") from None
        if not SCRAM_MIN_ITERATIONS <= count <= SCRAM_MAX_ITERATIONS:
            raise SaslAuthenticationError(
                f"SASL/{mech}: iteration count {count} outside "
                f"[{SCRAM_MIN_ITERATIONS}, {SCRAM_MAX_ITERATIONS}]"
            )
        assert self._password is not None
        salted = hashlib.pbkdf2_hmac(self._hash, self._password, salt, count)
        self._password = None
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        without_proof = f"c=biws,r={nonce}"  # biws: base64 of the GS2 header "n,,"
        auth_message = ",".join((self._first_bare, server_first.decode(), without_proof))
        signature = self._hmac(stored_key, auth_message.encode())
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = self._hmac(salted, b"Server Key")
        self._server_signature = self._hmac(server_key, auth_message.encode())
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def _verify(self, server_final: bytes) -> None:
        mech = self.mechanism
        attrs = _attributes(server_final, mech)
        if "e" in attrs:
            raise SaslAuthenticationError(f"SASL/{mech}: the broker refused: {attrs['e']}")
        try:
            got = base64.b64decode(attrs.get("v", ""), validate=True)
        except ValueError:
            got = b""
        expected, self._server_signature = self._server_signature, None
        if expected is None or not hmac.compare_digest(got, expected):
            raise SaslAuthenticationError(
                f"SASL/{mech}: the broker's server signature does not verify: it does not "
                "know this user's credentials (or is not the broker it claims to be)"
            )


def check_extensions(extensions: Mapping[str, str]) -> None:
    """KIP-342's rules for SASL extensions; raises ValueError naming the bad one."""
    for key, value in extensions.items():
        if not isinstance(key, str) or not _EXTENSION_KEY.fullmatch(key) or key == "auth":
            raise ValueError(f"OAUTHBEARER extension name {key!r} must be letters, not 'auth'")
        if not isinstance(value, str) or not _EXTENSION_VALUE.fullmatch(value):
            raise ValueError(f"OAUTHBEARER extension {key!r}: its value has invalid characters")


class OAuthBearerClient(SaslMechanismClient):
    mechanism = "OAUTHBEARER"

    def __init__(self, token: str, extensions: Mapping[str, str] | None = None) -> None:
        if not token or any(c in token for c in "\x01 \t\r\n"):
            raise SaslAuthenticationError(
                "SASL/OAUTHBEARER: the token provider returned an empty or malformed token"
            )
        try:
            check_extensions(extensions or {})
        except ValueError as exc:
            raise SaslAuthenticationError(f"SASL/OAUTHBEARER: {exc}") from None
        ext = "".join(f"{k}={v}\x01" for k, v in sorted((extensions or {}).items()))
        self._message: bytes | None = f"n,,\x01auth=Bearer {token}\x01{ext}\x01".encode()
        self._state = "start"
        #: The broker's error challenge (RFC 7628 JSON: status, scope), when it sent one.
        self.error_challenge: str | None = None

    def step(self, challenge: bytes | None) -> bytes | None:
        if self._state == "start":
            self._state = "sent"
            message, self._message = self._message, None
            return message
        if self._state == "sent" and challenge:
            # An error challenge: acknowledge it; the broker then fails the exchange.
            self.error_challenge = challenge.decode(errors="replace")[:500]
            self._state = "error"
            return b"\x01"
        if self._state == "error":
            raise SaslAuthenticationError(
                f"SASL/OAUTHBEARER: the broker rejected the token: {self.error_challenge}"
            )
        self._state = "done"
        return None


#: A re-authentication starts at least this long before its session ends (when the session
#: is long enough): a busy event loop must not start it after the broker closed the session.
REAUTH_MARGIN_MS = 300


def reauthentication_delay_ms(session_lifetime_ms: int, rand: float) -> int:
    """When to re-authenticate after a session of ``session_lifetime_ms`` began (KIP-368):
    at 85-95 % of it, spread by ``rand`` in [0, 1) as Java's client does, so the connections
    of many clients do not all re-authenticate together; but at least ``REAUTH_MARGIN_MS``
    before its end, unless that is before half of it. 0 for no session limit."""
    if session_lifetime_ms <= 0:
        return 0
    jittered = int(session_lifetime_ms * (0.85 + 0.10 * rand))
    latest = max(session_lifetime_ms - REAUTH_MARGIN_MS, session_lifetime_ms // 2)
    return max(1, min(jittered, latest))


__all__ = (
    "MECHANISMS",
    "OAuthBearerClient",
    "PlainClient",
    "SaslMechanismClient",
    "ScramClient",
    "check_extensions",
    "reauthentication_delay_ms",
)
