"""Opening a broker connection: TCP (and the TLS handshake), ApiVersions (KIP-511), SASL.

Rules:
* The whole set-up has one deadline, the connection setup timeout (the pool grows it per
  consecutive failure, see ``_core/connection_rules.py``).
* ``OSError``, ``ssl`` and timeout errors are translated here, once, into our errors, each
  naming the broker and, where it can tell, the stage (a TLS listener met in plaintext, a
  plaintext one met with TLS).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import TYPE_CHECKING, Any

from .._protocol import framing
from .._protocol.messages import ApiVersionsRequest, ApiVersionsResponse
from .._protocol.versions import broker_ranges, pick_version
from .._version import __version__
from ..errors import (
    KafkaConnectionError,
    KafkaError,
    ProtocolError,
    RebootstrapRequiredError,
    UnsupportedVersionError,
    for_code,
)
from . import tls_context, tls_errors
from .backend import ops_for, running_loop

if TYPE_CHECKING:
    from .connection import BrokerConnection
    from .sasl import SaslAuthenticator


def software_version(version: str) -> str:
    """``version`` in the form KIP-511 lets a client report (letters, digits, '.' and '-',
    starting and ending with a letter or digit): a local version such as ``1.0+g1234`` would
    make the broker refuse ApiVersions with INVALID_REQUEST."""
    return re.sub(r"[^a-zA-Z0-9.-]", "-", version).strip(".-") or "unknown"


SOFTWARE_VERSION = software_version(__version__)


async def set_up(
    conn: BrokerConnection,
    setup_timeout_ms: int,
    ssl_context: Any,
    sasl: SaslAuthenticator | None,
    cluster_id: str | None = None,
) -> None:
    """Connect ``conn`` (TLS when ``ssl_context``), negotiate API versions, authenticate with
    ``sasl``, all within ``setup_timeout_ms``. On failure ``conn`` is closed and the error
    raised is typed (see :meth:`BrokerConnection.open`)."""
    loop = running_loop()
    host, port = conn.host, conn.port
    where = f"broker {conn.node_id} at {host}:{port}"
    # How far the set-up got: "connect" (TCP, and the TLS handshake when ssl_context),
    # "negotiate" (ApiVersions), "sasl".
    stage = "connect"
    # The credentials first: an OAUTHBEARER token endpoint has its own timeouts and retries
    # (Java's login), and its failure is an authentication error, not a slow connection.
    mechanism = await sasl.mechanism_client(host) if sasl is not None else None

    async def connect() -> None:
        nonlocal stage
        await loop.create_connection(
            lambda: conn,
            host,
            port,
            ssl=ssl_context,
            server_hostname=host if ssl_context is not None else None,
        )
        refused = tls_context.refused_cipher(ssl_context, conn._transport, where)
        if refused is not None:
            raise refused
        stage = "negotiate"
        await negotiate(conn, cluster_id)
        if sasl is not None:
            stage = "sasl"
            await sasl.sign_in(conn, mechanism)

    try:
        await ops_for(loop).wait_for(connect(), setup_timeout_ms / 1000)
    except ssl.SSLError as exc:
        conn.close(KafkaConnectionError(f"TLS handshake with {host}:{port} failed"))
        error = tls_errors.handshake_error(where, exc)
        raise error from (exc if isinstance(error, KafkaConnectionError) else None)
    except (OSError, asyncio.TimeoutError) as exc:
        conn.close(KafkaConnectionError(f"connection to {host}:{port} failed: {exc}"))
        if (
            ssl_context is not None
            and stage == "connect"
            and isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError))
        ):
            # Reset or closed once TCP was up: during the TLS handshake, without an alert.
            raise tls_errors.closed_in_tls_handshake(where, exc) from exc
        raise KafkaConnectionError(
            f"cannot connect to {where}: "
            f"{exc or f'timed out after {setup_timeout_ms} ms (the connection setup timeout)'}"
        ) from exc
    except KafkaConnectionError as exc:
        conn.close(exc)
        if type(exc) is KafkaConnectionError and stage == "negotiate" and not conn.seen_data:
            # Closed before one byte of the ApiVersions answer: what a TLS listener that
            # resets (rather than sending an alert) does to a plaintext client.
            raise KafkaConnectionError(
                f"{where} closed the connection during the handshake, before answering "
                "ApiVersions: if this listener expects TLS, set security_protocol='SSL' "
                "(or 'SASL_SSL'); otherwise the broker may be restarting or over its "
                "connection limit"
            ) from exc
        raise
    except KafkaError as exc:
        conn.close(exc)
        raise
    except Exception as exc:
        # Whatever else opening a connection raised (OverflowError for a port out of range
        # in a Metadata answer, ValueError for a malformed host, ...): a connection error.
        error = KafkaConnectionError(f"cannot connect to {where}: {exc!r}")
        conn.close(error)
        raise error from exc
    except BaseException:
        conn.close()
        raise


async def negotiate(conn: BrokerConnection, cluster_id: str | None = None) -> None:
    """ApiVersions: the versions the broker speaks and the cluster's finalized features; with
    ``cluster_id`` (and a node id), v5 names them, and a Kafka 4.4 broker that is not that node
    refuses with REBOOTSTRAP_REQUIRED (KIP-1242): a retriable, metadata-refreshing error."""
    check = cluster_id is not None and conn.node_id >= 0
    req = ApiVersionsRequest(
        client_software_name="aioproducer",
        client_software_version=SOFTWARE_VERSION,
        cluster_id=cluster_id if check else None,
        node_id=conn.node_id if check else -1,
    )
    resp = await conn.request(req, 5 if check else 3, ApiVersionsResponse)
    if resp.error_code == UnsupportedVersionError.code:
        # KIP-511: the broker does not know our version; retry at a version it knows.
        ranges = broker_ranges(resp)
        version = pick_version(18, ranges) if 18 in ranges else 0
        resp = await conn.request(req, version, ApiVersionsResponse)
    if resp.error_code == RebootstrapRequiredError.code:
        raise KafkaConnectionError(
            f"broker at {conn.host}:{conn.port} is not node {conn.node_id} of cluster "
            f"{cluster_id!r} (REBOOTSTRAP_REQUIRED): the metadata is stale"
        ) from for_code(resp.error_code, "ApiVersions failed")
    if resp.error_code != 0:
        raise for_code(resp.error_code, "ApiVersions failed")
    conn.versions = broker_ranges(resp)
    conn.features = {f.name: f.max_version_level for f in resp.finalized_features}


def decode_api_versions(frame: bytes, version: int) -> ApiVersionsResponse:
    """An ApiVersions response at the version asked, else at v0 (KIP-511: a broker that does
    not know our version answers UNSUPPORTED_VERSION in an older format). When neither
    decodes — librdkafka's mock writes a non-standard body — report UNSUPPORTED_VERSION with
    no versions, so the caller retries at v0."""
    try:
        return framing.decode_response(frame, ApiVersionsResponse, version)[1]
    except ProtocolError:
        pass
    try:
        return framing.decode_api_versions_fallback(frame)
    except ProtocolError:
        return ApiVersionsResponse(error_code=UnsupportedVersionError.code)


__all__ = ["SOFTWARE_VERSION", "decode_api_versions", "negotiate", "set_up", "software_version"]
