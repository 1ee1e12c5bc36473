"""A small OAuth 2 token endpoint on loopback for tests: the client credentials grant
(RFC 6749 §4.4) issuing unsecured JWTs that Kafka's unsecured validator accepts.

``with TokenEndpoint({"my-client": "my-secret"}) as idp:`` then point
``sasl_oauthbearer_token_endpoint_url=idp.url`` at it. Wrong credentials get HTTP 401 with
``{"error": "invalid_client"}``; ``lifetime_s`` sets the tokens' ``exp`` (negative: every
token is already expired).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from ._ports import LOOPBACK
from .security import unsecured_jwt


class TokenEndpoint:
    def __init__(self, clients: dict[str, str], lifetime_s: float = 3600.0) -> None:
        self.clients = dict(clients)
        self.lifetime_s = lifetime_s
        #: Every grant answered: (client id, scope, HTTP status).
        self.requests: list[tuple[str, str | None, int]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the token endpoint first"
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/oauth2/token"

    def _grant(self, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        form = urllib.parse.parse_qs(body.decode())
        scope = form.get("scope", [None])[0]
        client = "?"
        try:
            kind, _, encoded = authorization.partition(" ")
            user, _, secret = base64.b64decode(encoded).decode().partition(":")
            client, secret = urllib.parse.unquote(user), urllib.parse.unquote(secret)
            ok = kind == "Basic" and self.clients.get(client) == secret
        except ValueError:
            ok = False
        answer: dict[str, Any]
        if form.get("grant_type") != ["client_credentials"]:
            status, answer = 400, {"error": "unsupported_grant_type"}
        elif not ok:
            status, answer = 401, {"error": "invalid_client"}
        else:
            claims: dict[str, Any] = {"scope": scope} if scope else {}
            token = unsecured_jwt(client, self.lifetime_s, **claims)
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
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, answer = endpoint._grant(
                    self.headers.get("Authorization", ""), self.rfile.read(length)
                )
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
