"""What a failed TLS handshake or session means, as our errors (used by ``connection.py``).

Each names the broker and the likely cause: a certificate not trusted or not for this host,
a listener that does not speak TLS, no TLS version or cipher suite in common (TLS older than
1.2 is refused), or a broker that wants a client certificate (TLS 1.3 tells the client only
after the handshake, with an alert).
"""

from __future__ import annotations

import ssl

from ..errors import KafkaConnectionError, KafkaError, SslAuthenticationError


def _describe(exc: BaseException) -> str:
    """An exception's text, or its type when it has none (``ConnectionResetError()``)."""
    return str(exc) or type(exc).__name__


def closed_in_tls_handshake(where: str, exc: BaseException) -> KafkaConnectionError:
    return KafkaConnectionError(
        f"{where} closed the connection during the TLS handshake ({_describe(exc)}): if this "
        "listener does not speak TLS, set security_protocol='PLAINTEXT' (or 'SASL_PLAINTEXT'); "
        "a broker that offers only TLS 1.0 or 1.1 closes it too (TLS 1.2 or later is "
        "required); otherwise the broker may be restarting or over its connection limit"
    )


def handshake_error(where: str, exc: ssl.SSLError) -> KafkaError:
    """The error for ``exc``, raised by the TLS handshake with ``where``."""
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return closed_in_tls_handshake(where, exc)
    hint = ""
    if "WRONG_VERSION_NUMBER" in str(exc) or "record layer" in str(exc):
        hint = " (does the broker listen without TLS? check security_protocol)"
    elif "PROTOCOL_VERSION" in str(exc) or "UNSUPPORTED_PROTOCOL" in str(exc):
        hint = (
            " (no TLS version in common: the client allows those of ssl_enabled_protocols up to "
            "ssl_protocol, never older than 1.2)"
        )
    elif any(s in str(exc) for s in ("HANDSHAKE_FAILURE", "NO_SHARED_CIPHER", "NO_CIPHERS")):
        hint = (
            " (no cipher suite in common? check ssl_cipher_suites, ssl_enabled_protocols and "
            "ssl_protocol; or the listener wants a client certificate)"
        )
    detail = getattr(exc, "verify_message", None) or exc.reason or exc
    return SslAuthenticationError(f"TLS handshake with {where} failed: {detail}{hint}")


def session_refused(where: str, exc: BaseException | None) -> SslAuthenticationError | None:
    """The error when the broker ended the TLS session with an alert once the handshake was
    over (TLS 1.3 checks the client certificate then): an authentication refusal, not a blip.
    None for any other way a connection ends."""
    if not isinstance(exc, ssl.SSLError) or "ALERT" not in str(exc.reason):
        return None
    return SslAuthenticationError(
        f"{where} refused the TLS session ({exc.reason}): does the listener require a client "
        "certificate (ssl_certfile, ssl_keyfile), or one signed by a CA it trusts?"
    )
