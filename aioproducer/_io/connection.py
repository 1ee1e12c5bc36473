"""One broker connection: an asyncio protocol, length-prefixed frames, correlation ids.

Rules:
* Kafka answers requests on a connection in order, so in-flight requests form a FIFO; a
  response whose correlation id is not the oldest in flight is a protocol violation and fails
  the connection (every in-flight request fails as a retriable :class:`KafkaConnectionError`).
  A late answer to an ``acks=0`` produce (some brokers answer anyway) is dropped quietly.
* A response frame larger than ``max_response_size`` fails the connection before buffering.
* Every request has a deadline (``request_timeout_ms``); a timed-out request closes the
  connection, as the Java client does, since later responses can no longer be trusted.
* Opening (TCP, TLS, ApiVersions, SASL) and its errors are ``connection_setup.py``'s.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .._core.metrics import NodeCounters
from .._protocol import framing
from .._protocol._schema import Message
from .._protocol.messages import RESPONSES
from .._protocol.versions import pick_version
from ..errors import (
    BrokerProtocolError,
    KafkaConnectionError,
    KafkaTimeoutError,
    ProtocolError,
    SecurityProtocolMismatchError,
)
from . import tls_errors
from .backend import running_loop
from .connection_setup import SOFTWARE_VERSION, decode_api_versions, set_up, software_version
from .reply import Reply

if TYPE_CHECKING:
    from .sasl import Reauthenticator, SaslAuthenticator

log = logging.getLogger("aioproducer.connection")
_M = TypeVar("_M", bound=Message)
#: Re-exported: what KIP-511 lets us report (``connection_setup.py``).
__all__ = ["SOFTWARE_VERSION", "BrokerConnection", "software_version"]


class _InFlight:
    __slots__ = ("correlation_id", "deadline", "decode", "future", "response_cls", "version")

    def __init__(
        self,
        correlation_id: int,
        response_cls: type[Message] | None,
        version: int,
        future: asyncio.Future[Any] | Reply | None,
        deadline: float,
        decode: Callable[[bytes, int], Any] | None = None,
    ) -> None:
        self.correlation_id = correlation_id
        self.response_cls = response_cls
        self.version = version
        self.future = future
        self.deadline = deadline
        #: A hand-written decoder (frame, version) -> body for this request's response, which
        #: returns None for a frame it leaves to the generic codec.
        self.decode = decode


class BrokerConnection(asyncio.Protocol):
    """A connection to one broker. Create with :meth:`open`."""

    #: The broker's counters (bytes, requests, responses), set by the pool once open.
    metrics: NodeCounters | None = None

    def __init__(
        self,
        node_id: int,
        host: str,
        port: int,
        client_id: str | None,
        request_timeout_ms: int,
        max_response_size: int = framing.DEFAULT_MAX_FRAME,
        on_close: Callable[[BrokerConnection, BaseException | None], None] | None = None,
    ) -> None:
        self.node_id = node_id
        self.host = host
        self.port = port
        self.client_id = client_id
        self.request_timeout = request_timeout_ms / 1000
        self._decoder = framing.FrameDecoder(max_response_size)
        self._transport: asyncio.Transport | None = None
        self._loop = running_loop()
        self._in_flight: collections.deque[_InFlight] = collections.deque()
        self._correlation = 0
        self._closed = False
        self._close_error: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._on_close = on_close
        #: When a request was last written or bytes last read (the loop's clock, seconds):
        #: the pool closes a connection idle for ``connections_max_idle_ms``.
        self.last_activity = self._loop.time()
        self.versions: dict[int, tuple[int, int]] = {}
        #: The cluster's finalized features (KIP-584), e.g. ``transaction.version``.
        self.features: dict[str, int] = {}
        self._tls = False
        self.seen_data = False
        #: During a re-authentication, the requests sent meanwhile: written once it succeeds.
        self._held: list[tuple[_InFlight, bytes]] | None = None
        self.reauth: Reauthenticator | None = None
        #: Request-level DEBUG lines, decided once per connection (no check per request).
        self._debug = log.isEnabledFor(logging.DEBUG)

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        node_id: int,
        host: str,
        port: int,
        *,
        client_id: str | None,
        request_timeout_ms: int,
        setup_timeout_ms: int,
        on_close: Callable[[BrokerConnection, BaseException | None], None] | None = None,
        ssl_context: Any = None,
        sasl: SaslAuthenticator | None = None,
        cluster_id: str | None = None,
    ) -> BrokerConnection:
        """Connect (TLS when ``ssl_context``), negotiate API versions, authenticate with
        ``sasl`` (and re-authenticate before each session lifetime ends, KIP-368), within
        ``setup_timeout_ms`` (see ``connection_setup.py``). ``cluster_id``: the cluster
        ``node_id`` belongs to, sent so that a Kafka 4.4 broker that is not that node refuses
        the connection (KIP-1242); None: not checked.

        Raises :class:`KafkaConnectionError` (retriable), :class:`SslAuthenticationError`,
        :class:`SaslAuthenticationError` or :class:`SecurityProtocolMismatchError`.
        """
        conn = cls(node_id, host, port, client_id, request_timeout_ms, on_close=on_close)
        conn._tls = ssl_context is not None
        await set_up(conn, setup_timeout_ms, ssl_context, sasl, cluster_id)
        return conn

    def version_for(self, api_key: int, lowest: int | None = None) -> int:
        cls = RESPONSES[api_key]
        lo = cls.VALID_VERSIONS.lo if lowest is None else max(lowest, cls.VALID_VERSIONS.lo)
        return pick_version(api_key, self.versions, (lo, cls.VALID_VERSIONS.hi))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's transports (uvicorn's default loop) are not subclasses
        # of asyncio.Transport, and an assertion here left every connection dead on uvloop.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket

            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def connection_lost(self, exc: Exception | None) -> None:
        refused = tls_errors.session_refused(
            f"broker {self.node_id} at {self.host}:{self.port}", exc
        )
        if refused is not None:
            self._fail(refused)
            return
        self._fail(
            KafkaConnectionError(
                f"connection to broker {self.node_id} ({self.host}:{self.port}) lost"
                + (f": {exc}" if exc else "")
            )
        )

    def data_received(self, data: bytes) -> None:
        if not self.seen_data:
            self.seen_data = True
            if not self._tls and data[:1] in (b"\x15", b"\x16") and data[1:2] == b"\x03":
                # A TLS alert or handshake record, not a Kafka frame (KAFKA-4090): do not
                # read it as a 350 MB length.
                self._fail(
                    SecurityProtocolMismatchError(
                        f"broker {self.node_id} at {self.host}:{self.port} answered with TLS: set "
                        "security_protocol='SSL' (or 'SASL_SSL')"
                    )
                )
                return
        self.last_activity = self._loop.time()
        if self.metrics is not None:
            self.metrics.bytes_in += len(data)
        try:
            frames = self._decoder.feed(data)
            for frame in frames:
                if self._closed:  # by a response handler that ran in _dispatch
                    return
                self._dispatch(frame)
        except BrokerProtocolError as exc:
            self._fail(exc)
        except Exception as exc:  # a decoder bug must not kill the event loop either
            self._fail(self._violation(exc))

    def _violation(self, exc: BaseException) -> BrokerProtocolError:
        err = BrokerProtocolError(
            f"broker {self.node_id} ({self.host}:{self.port}) broke the protocol: {exc}"
        )
        err.__cause__ = exc
        return err

    def _dispatch(self, frame: bytes) -> None:
        cid = framing.read_correlation_id(frame)
        while self._in_flight and self._in_flight[0].response_cls is None:
            # acks=0 requests: no answer expected; one may arrive anyway (librdkafka's mock).
            if self._in_flight[0].correlation_id == cid:
                self._in_flight.popleft()
                return
            self._in_flight.popleft()
        if not self._in_flight:
            raise ProtocolError(
                f"unsolicited response (correlation id {cid}) from broker {self.node_id}"
            )
        head = self._in_flight[0]
        if head.correlation_id != cid:
            raise ProtocolError(
                f"response correlation id {cid} from broker {self.node_id}, expected "
                f"{head.correlation_id}"
            )
        self._in_flight.popleft()
        assert head.response_cls is not None and head.future is not None
        if self.metrics is not None:
            self.metrics.responses += 1
        if self._debug:
            log.debug("<- broker %d: correlation id %d, %d bytes", self.node_id, cid, len(frame))
        try:
            body = None if head.decode is None else head.decode(frame, head.version)
            if body is None:
                if head.response_cls.API_KEY == framing.API_VERSIONS_KEY:
                    body = decode_api_versions(frame, head.version)
                else:
                    _, body = framing.decode_response(frame, head.response_cls, head.version)
        except Exception as exc:
            # The request was taken off the queue: fail it here, then the connection.
            error = self._violation(exc)
            if not head.future.done():
                head.future.set_exception(error)
            raise error from None
        if not head.future.done():
            head.future.set_result(body)
        # The request timer stays armed: when it fires it checks the oldest request left and
        # re-arms for it. Re-arming on every response was a timer cancel and a heap push per
        # produce request.

    # -- requests --------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        held = sum(1 for r, _ in self._held if r.response_cls is not None) if self._held else 0
        return held + sum(1 for r in self._in_flight if r.response_cls is not None)

    @property
    def closed(self) -> bool:
        return self._closed

    def send(
        self, request: Message, version: int, expect_response: bool = True
    ) -> asyncio.Future[Any] | None:
        """Write ``request`` now; return a future of its decoded response (None when no
        response is expected). Raises :class:`KafkaConnectionError` when closed."""
        return self.send_encoded(  # type: ignore[no-any-return]  # a future: no on_response
            request.API_KEY,
            version,
            lambda cid, client_id: framing.encode_request(request, version, cid, client_id),
            expect_response,
        )

    def send_encoded(
        self,
        api_key: int,
        version: int,
        encode: Callable[[int, str | None], bytes],
        expect_response: bool = True,
        decode: Callable[[bytes, int], Any] | None = None,
        on_response: Callable[[Any, BaseException | None], None] | None = None,
    ) -> Any:
        """:meth:`send` for a request the caller frames itself: ``encode(correlation_id,
        client_id)`` returns the whole frame. ``decode(frame, version)`` reads the response
        first; when it returns None the generic codec of ``api_key``'s response does. With
        ``on_response``, no future: ``on_response(body, None)`` runs as soon as the answer is
        read, ``on_response(None, error)`` on the next turn after a failure (see
        :class:`Reply`); the return value is then only not None."""
        if self._closed or self._transport is None:
            raise KafkaConnectionError(
                f"connection to broker {self.node_id} is closed"
            ) from self._close_error
        self._correlation = cid = (self._correlation + 1) & 0x7FFFFFFF
        data = encode(cid, self.client_id)
        fut: asyncio.Future[Any] | Reply | None = None
        self.last_activity = now = self._loop.time()
        if expect_response:
            fut = (
                self._loop.create_future()
                if on_response is None
                else Reply(self._loop, on_response)
            )
            entry = _InFlight(
                cid,
                RESPONSES[api_key],
                version,
                fut,
                now + self.request_timeout,
                decode,
            )
        else:
            entry = _InFlight(cid, None, version, None, 0.0)
        if self._held is not None:  # re-authenticating: written when it succeeds
            self._held.append((entry, data))
            return fut
        self._in_flight.append(entry)
        self._transport.write(data)
        if self._debug:
            log.debug(
                "-> broker %d: %s v%d, correlation id %d, %d bytes",
                self.node_id,
                RESPONSES[api_key].__name__.removesuffix("Response"),
                version,
                cid,
                len(data),
            )
        if self.metrics is not None:
            self._count_sent(self.metrics, len(data))
        if expect_response and self._timer is None:
            self._arm_timer()
        return fut

    async def request(
        self, request: Message, version: int, response: type[_M], auth: bool = False
    ) -> _M:
        """Send ``request`` and return its answer, which must be a ``response``. ``auth``:
        a SASL request, written even while other requests are held."""
        held = self._held
        self._held = None if auth else held
        try:
            fut = self.send(request, version)
        finally:
            self._held = held
        assert fut is not None
        resp = await fut
        if not isinstance(resp, response):
            raise BrokerProtocolError(
                f"broker {self.node_id} answered {type(request).__name__} with "
                f"{type(resp).__name__}, not {response.__name__}"
            )
        return resp

    def hold(self) -> None:
        """Hold the requests sent from now on (a re-authentication starts)."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Write the held requests, in the order they were sent."""
        held, self._held = self._held, None
        if not held or self._closed or self._transport is None:
            return
        self.last_activity = self._loop.time()
        for entry, data in held:
            self._in_flight.append(entry)
            self._transport.write(data)
            if self.metrics is not None:
                self._count_sent(self.metrics, len(data))
        if self._timer is None:
            self._arm_timer()

    @staticmethod
    def _count_sent(m: NodeCounters, size: int) -> None:
        m.bytes_out += size
        m.requests += 1
        if size > m.request_max:
            m.request_max = size

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for entry in self._in_flight:
            if entry.response_cls is not None:
                self._timer = self._loop.call_at(entry.deadline, self._check_timeouts)
                return

    def _check_timeouts(self) -> None:
        self._timer = None
        now = self._loop.time()
        for entry in self._in_flight:
            if entry.response_cls is not None and entry.deadline <= now:
                self._fail(
                    KafkaTimeoutError(
                        f"request to broker {self.node_id} timed out after "
                        f"{self.request_timeout * 1000:.0f} ms (request_timeout_ms)"
                    )
                )
                return
        self._arm_timer()

    def close(self, error: BaseException | None = None) -> None:
        self._fail(error or KafkaConnectionError(f"connection to broker {self.node_id} closed"))

    def _fail(self, error: BaseException) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_error = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.abort()
        if self.reauth is not None:
            self.reauth.cancel()
        pending, self._in_flight = self._in_flight, collections.deque()
        held, self._held = self._held or [], None
        pending.extend(entry for entry, _ in held)
        for entry in pending:
            if entry.future is not None and not entry.future.done():
                entry.future.set_exception(error)
        if self._on_close is not None:
            self._on_close(self, error)
