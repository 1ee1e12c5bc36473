"""A small OAuth 2 token endpoint on loopback for tests: the client credentials grant
(RFC 6749 §4.4) issuing unsecured JWTs that Kafka's unsecured validator accepts.

``with TokenEndpoint({"my-client": "my-secret"}) as idp:`` then point
``sasl_oauthbearer_token_endpoint_url=idp.url`` at it. Wrong credentials get HTTP 401 with
``{"error": "invalid_client"}``; ``lifetime_s`` sets the tokens' ``exp`` (negative: every
token is already expired).

Faults and variants for tests: ``fail_first`` answers the first grants HTTP 503, ``stall_s``
waits that long before each answer, ``claims`` are added to every token (or replace ``sub``
and ``scope``: a value of None drops a claim), ``urlencoded_credentials`` reads the Basic
header's id and secret URL-encoded (RFC 6749 §2.3.1; off: taken as they are, as Kafka's
default client sends them). ``signing="RS256"`` (or ``"ES256"``) signs the tokens with a key
made at start, whose JWKS is served at :attr:`jwks_url` (``iss`` is ``issuer``, ``aud``
``audience``); unsigned tokens are unsecured JWTs, as Kafka's unsecured validator takes them.

The jwt-bearer grant (RFC 7523, Kafka's KIP-1139) is answered for the subjects in
``assertion_keys`` (``sub`` → a PEM public key; the dict may be filled after start): the
assertion's signature (RS256 or ES256) is checked with that key by the ``cryptography``
package, then ``exp`` and ``nbf`` (60 s of skew) and, when ``assertion_audience`` is set,
``aud``; the token issued names the assertion's ``sub``. :attr:`assertions` keeps every
assertion received, decoded (header, payload), for tests to look at.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from ._ports import LOOPBACK
from .security import _b64url, unsecured_jwt

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Signer:
    """A key made for one endpoint: signs tokens (RS256 or ES256) and publishes its JWK."""

    def __init__(self, alg: str) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        self.alg, self.kid = alg, f"test-key-{alg.lower()}"
        self._key: Any
        if alg == "RS256":
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pub = self._key.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "n": _uint(pub.n), "e": _uint(pub.e)}
        elif alg == "ES256":
            self._key = ec.generate_private_key(ec.SECP256R1())
            pub = self._key.public_key().public_numbers()
            self.jwk = {"kty": "EC", "crv": "P-256", "x": _uint(pub.x, 32), "y": _uint(pub.y, 32)}
        else:
            raise ValueError(f"signing={alg!r}: 'RS256' or 'ES256'")
        self.jwk.update(kid=self.kid, use="sig", alg=alg)

    def sign(self, payload: dict[str, Any]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

        header = {"alg": self.alg, "typ": "JWT", "kid": self.kid}
        data = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}"
        if self.alg == "RS256":
            sig = self._key.sign(data.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = utils.decode_dss_signature(
                self._key.sign(data.encode(), ec.ECDSA(hashes.SHA256()))
            )
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{data}.{_b64url(sig)}"


def _uint(value: int, size: int | None = None) -> str:
    return _b64url(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


class TokenEndpoint:
    def __init__(
        self,
        clients: dict[str, str],
        lifetime_s: float = 3600.0,
        *,
        fail_first: int = 0,
        stall_s: float = 0.0,
        claims: dict[str, Any] | None = None,
        urlencoded_credentials: bool = False,
        signing: str | None = None,
        issuer: str = "aioproducer-test-idp",
        audience: str = "kafka",
        assertion_keys: dict[str, bytes] | None = None,
        assertion_audience: str | None = None,
    ) -> None:
        self.clients = dict(clients)
        self.lifetime_s = lifetime_s
        self.fail_first = fail_first
        self.stall_s = stall_s
        self.claims = dict(claims or {})
        self.urlencoded_credentials = urlencoded_credentials
        self.issuer, self.audience = issuer, audience
        self._signer = _Signer(signing) if signing else None
        self.assertion_keys = dict(assertion_keys or {})
        self.assertion_audience = assertion_audience
        #: Every jwt-bearer assertion received: (header, payload), decoded.
        self.assertions: list[tuple[dict[str, Any], dict[str, Any]]] = []
        #: Every grant answered: (client id, scope, HTTP status).
        self.requests: list[tuple[str, str | None, int]] = []
        #: When (``time.monotonic()``) each grant request arrived.
        self.request_times: list[float] = []
        #: How many times the JWKS was fetched.
        self.jwks_fetches = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the token endpoint first"
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/oauth2/token"

    @property
    def jwks_url(self) -> str:
        assert self._server is not None, "start() the token endpoint first"
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/jwks"

    @property
    def jwk(self) -> dict[str, Any]:
        """The public key of a signing endpoint, as a JSON Web Key."""
        assert self._signer is not None, "only a TokenEndpoint(signing=...) has a key"
        return dict(self._signer.jwk)

    def token_for(self, client: str, scope: str | None = None) -> str:
        """A token as a grant to ``client`` would carry."""
        claims: dict[str, Any] = {"scope": scope} if scope else {}
        if self._signer is not None:
            claims.update(iss=self.issuer, aud=self.audience)
        claims.update(self.claims)
        if self._signer is None and None not in claims.values():
            return unsecured_jwt(client, self.lifetime_s, **claims)
        now = time.time()
        payload = {"sub": client, "iat": int(now), "exp": int(now + self.lifetime_s), **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        if self._signer is None:
            header = _b64url(json.dumps({"alg": "none"}).encode())
            return f"{header}.{_b64url(json.dumps(payload).encode())}."
        return self._signer.sign(payload)

    def _client(self, authorization: str) -> tuple[str, bool]:
        """The client of a Basic authorization header, and whether its secret is right."""
        try:
            kind, _, encoded = authorization.partition(" ")
            user, _, secret = base64.b64decode(encoded).decode().partition(":")
            if self.urlencoded_credentials:
                user, secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(secret)
            return user, kind == "Basic" and self.clients.get(user) == secret
        except ValueError:
            return "?", False

    def _check_assertion(self, assertion: str) -> str | None:
        """The ``sub`` of a jwt-bearer assertion whose signature and times are good."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            head, body, sig = assertion.split(".")
            header, payload = (json.loads(_b64decode(part)) for part in (head, body))
            self.assertions.append((header, payload))
            key: Any = load_pem_public_key(self.assertion_keys[payload["sub"]])
            data, signature = f"{head}.{body}".encode(), _b64decode(sig)
            if header["alg"] == "RS256":
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            elif header["alg"] == "ES256" and len(signature) == 64:
                der = utils.encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                key.verify(der, data, ec.ECDSA(hashes.SHA256()))
            else:
                return None
        except (ValueError, KeyError, TypeError, InvalidSignature):
            return None
        now = time.time()
        if not payload.get("exp", 0) > now - 60 or not payload.get("nbf", 0) <= now + 60:
            return None
        if self.assertion_audience is not None and payload.get("aud") != self.assertion_audience:
            return None
        return str(payload["sub"])

    def _grant(self, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        self.request_times.append(time.monotonic())
        form = urllib.parse.parse_qs(body.decode())
        scope = form.get("scope", [None])[0]
        grant = form.get("grant_type", [""])[0]
        client, ok = self._client(authorization)
        if grant == JWT_BEARER:
            subject = self._check_assertion(form.get("assertion", [""])[0])
            client, ok = subject or "?", subject is not None
        answer: dict[str, Any]
        if len(self.request_times) <= self.fail_first:
            status, answer = 503, {"error": "temporarily_unavailable"}
        elif grant not in ("client_credentials", JWT_BEARER):
            status, answer = 400, {"error": "unsupported_grant_type"}
        elif not ok:
            status = 401 if grant == "client_credentials" else 400
            answer = {"error": "invalid_client" if status == 401 else "invalid_grant"}
        else:
            token = self.token_for(client, scope)
            status = 200
            answer = {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(self.lifetime_s),
            }
        self.requests.append((client, scope, status))
        return status, answer

    def start(self) -> TokenEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/jwks" or endpoint._signer is None:
                    self._answer(404, {"error": "not_found"})
                    return
                endpoint.jwks_fetches += 1
                self._answer(200, {"keys": [endpoint._signer.jwk]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, answer = endpoint._grant(
                    self.headers.get("Authorization", ""), self.rfile.read(length)
                )
                if endpoint.stall_s:
                    time.sleep(endpoint.stall_s)
                self._answer(status, answer)

            def _answer(self, status: int, answer: dict[str, Any]) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # no request log on stderr (it would show nothing secret, only noise)

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="token-endpoint", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TokenEndpoint:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


__all__ = ("TokenEndpoint",)
