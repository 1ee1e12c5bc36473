"""SASL on a broker connection: the exchange (SaslHandshake v1, then SaslAuthenticate rounds
driven by a mechanism of :mod:`aioproducer._core.sasl`) and KIP-368 re-authentication.

Re-authentication: when the broker's last SaslAuthenticate answer carried a session lifetime,
the connection re-authenticates at 85-95 % of it (``reauthentication_delay_ms``). Requests
already written stay in flight (the broker answers them before it reads the SaslHandshake, in
order); requests sent during the exchange are held and written once it succeeds, so no request
fails because of it. When it fails, the connection closes with a retriable error, and the
next connection attempt reports the authentication error itself.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import secrets
from typing import TYPE_CHECKING, Any

from .._core.sasl import (
    OAuthBearerClient,
    PlainClient,
    SaslMechanismClient,
    ScramClient,
    reauthentication_delay_ms,
)
from .._protocol.messages import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)
from ..errors import KafkaConnectionError, KafkaError, SaslAuthenticationError, for_code
from .backend import current_task, ops_for, running_loop
from .oauth import ClientCredentialsTokenProvider

if TYPE_CHECKING:
    from ..config import ProducerConfig
    from .connection import BrokerConnection
    from .gssapi import TicketRefresher

log = logging.getLogger("aioproducer.connection")
_HANDSHAKE, _AUTHENTICATE = 17, 36


class SaslAuthenticator:
    """One producer's SASL mechanism and credentials; makes a fresh exchange per connection.
    Its repr never shows the password or the token provider's secrets."""

    def __init__(
        self,
        mechanism: str,
        username: str | None = None,
        password: str | None = None,
        token_provider: Any = None,
        config: ProducerConfig | None = None,
    ) -> None:
        self.mechanism = mechanism
        self.username = username
        self._password = password
        self._token_provider = token_provider
        self._config = config
        #: GSSAPI: the ticket cache's TGT refresher, started with the first connection.
        self.refresher: TicketRefresher | None = None
        #: GSSAPI: the credentials, acquired once (False: the library's default ones).
        self._gss_creds: Any = None

    @classmethod
    def from_config(cls, config: ProducerConfig) -> SaslAuthenticator | None:
        if not config.security_protocol.startswith("SASL"):
            return None
        return cls(
            config.sasl_mechanism,
            config.sasl_plain_username,
            config.sasl_plain_password,
            config.oauth_token_provider(),
            config,
        )

    def close(self) -> None:
        """Stop the background token refresh of a :class:`ClientCredentialsTokenProvider`
        (harmless if it serves other producers too: its next ``token()`` re-arms it; a
        provider of another class is left alone), and the GSSAPI ticket refresher."""
        if isinstance(self._token_provider, ClientCredentialsTokenProvider):
            self._token_provider.close()
        if self.refresher is not None:
            self.refresher.close()

    def __repr__(self) -> str:
        who = f" user {self.username!r}" if self.username else ""
        return f"<SaslAuthenticator {self.mechanism}{who}>"

    def _who(self) -> str:
        return f" of user {self.username!r}" if self.username else ""

    async def mechanism_client(self, host: str) -> SaslMechanismClient:
        """A fresh exchange's client side for a connection to ``host``: for OAUTHBEARER, with
        the provider's current token (which a token endpoint may have to issue first); for
        GSSAPI, a GSS context for the broker's service principal."""
        mech = self.mechanism
        if mech == "GSSAPI":
            from .gssapi import TicketRefresher, credentials, gssapi_client

            cfg = self._config
            assert cfg is not None
            keytab = cfg.sasl_kerberos_keytab
            if keytab is None and self.refresher is None:  # a ticket cache: renew its TGT
                self.refresher = TicketRefresher(cfg)
                self.refresher.start()
            if self._gss_creds is None:
                creds = await ops_for(running_loop()).to_thread(
                    lambda: credentials(
                        cfg.sasl_kerberos_principal, None if keytab is None else str(keytab)
                    )
                )
                self._gss_creds = False if creds is None else creds
            return await gssapi_client(
                cfg.sasl_kerberos_service_name,
                cfg.sasl_kerberos_domain_name or host,
                self._gss_creds or None,
            )
        if mech == "PLAIN":
            return PlainClient(self.username or "", self._password or "")
        if mech.startswith("SCRAM-"):
            nonce = secrets.token_urlsafe(24)
            return ScramClient(mech, self.username or "", self._password or "", nonce)
        provider = self._token_provider
        try:
            token = provider.token()
            if inspect.isawaitable(token):
                token = await token
            extensions = getattr(provider, "extensions", None)
            ext = extensions() if callable(extensions) else None
            if inspect.isawaitable(ext):
                ext = await ext
        except KafkaError:
            raise
        except Exception as exc:
            raise SaslAuthenticationError(
                f"SASL/OAUTHBEARER: the token provider {type(provider).__name__} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(token, str):
            raise SaslAuthenticationError(
                "SASL/OAUTHBEARER: the token provider's token() returned "
                f"{type(token).__name__}, not str"
            )
        return OAuthBearerClient(token, ext or None)

    async def sign_in(
        self, conn: BrokerConnection, client: SaslMechanismClient | None = None
    ) -> None:
        """Authenticate a new connection (with ``client``, made by :meth:`mechanism_client`
        before the connection's set-up time began, or a fresh one), and re-authenticate it
        before each session lifetime the broker sets ends."""
        lifetime = await self.authenticate(conn, client)
        if lifetime > 0:
            conn.reauth = Reauthenticator(conn, self)
            conn.reauth.schedule(lifetime)

    async def authenticate(
        self, conn: BrokerConnection, client: SaslMechanismClient | None = None
    ) -> int:
        """Run one exchange on ``conn``; return the session lifetime in ms (0: none).
        Raises :class:`SaslAuthenticationError` naming the mechanism."""
        mech, node = self.mechanism, conn.node_id
        versions = conn.versions
        if (
            _HANDSHAKE not in versions
            or versions[_HANDSHAKE][1] < 1
            or _AUTHENTICATE not in versions
        ):
            raise SaslAuthenticationError(
                f"broker {node} does not support SaslHandshake v1/SaslAuthenticate "
                f"(needed for SASL/{mech})"
            )
        hs = await conn.request(
            SaslHandshakeRequest(mechanism=mech), 1, SaslHandshakeResponse, auth=True
        )
        if hs.error_code != 0:
            raise SaslAuthenticationError(
                f"broker {node} does not accept SASL mechanism {mech} "
                f"(error {hs.error_code}); enabled mechanisms: {hs.mechanisms}"
            )
        if client is None:
            client = await self.mechanism_client(conn.host)
        version = conn.version_for(_AUTHENTICATE)
        message = client.step(None)
        lifetime = 0
        while message is not None:
            resp = await conn.request(
                SaslAuthenticateRequest(auth_bytes=message),
                version,
                SaslAuthenticateResponse,
                auth=True,
            )
            if resp.error_code != 0:
                name = getattr(for_code(resp.error_code, ""), "name", resp.error_code)
                extra = getattr(client, "error_challenge", None)
                raise SaslAuthenticationError(
                    f"SASL/{mech} authentication{self._who()} failed at broker {node} "
                    f"({name}): {resp.error_message}"
                    + (
                        f"; broker said: {extra}"
                        if extra and extra not in str(resp.error_message)
                        else ""
                    )
                )
            lifetime = resp.session_lifetime_ms
            message = client.step(resp.auth_bytes)
        return lifetime


#: Kafka refuses a re-authentication less than a second after the previous one began
#: (``KafkaChannel``); a session shorter than that (a token about to expire) cannot be renewed
#: in time, and the broker closes the connection at its end: a retriable reconnect.
MIN_REAUTH_INTERVAL = 1.05


class Reauthenticator:
    """KIP-368 for one connection: re-authenticates before each session lifetime ends."""

    def __init__(self, conn: BrokerConnection, sasl: SaslAuthenticator) -> None:
        self.conn = conn
        self.sasl = sasl
        self.count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = -MIN_REAUTH_INTERVAL

    def schedule(self, session_lifetime_ms: int) -> None:
        delay = reauthentication_delay_ms(session_lifetime_ms, random.random())
        if delay and not self.conn.closed:
            loop = running_loop()
            at = max(loop.time() + delay / 1000, self._started + MIN_REAUTH_INTERVAL)
            self._timer = loop.call_at(at, self._start)

    def _start(self) -> None:
        self._timer = None
        loop = running_loop()
        self._started = loop.time()
        if not self.conn.closed:
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        conn = self.conn
        conn.hold()
        try:
            lifetime = await self.sasl.authenticate(conn)
        except Exception as exc:
            log.warning("re-authentication with broker %d failed: %s", conn.node_id, exc)
            error = KafkaConnectionError(
                f"re-authentication (SASL/{self.sasl.mechanism}) with broker {conn.node_id} "
                f"failed: {exc}"
            )
            error.__cause__ = exc
            conn.close(error)
            return
        self.count += 1
        log.debug(
            "re-authenticated with broker %d (SASL/%s, session lifetime %d ms)",
            conn.node_id,
            self.sasl.mechanism,
            lifetime,
        )
        conn.release()
        self.schedule(lifetime)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._task = self._task, None
        if task is not None and not task.done() and task is not current_task():
            task.cancel()


__all__ = ("Reauthenticator", "SaslAuthenticator")
