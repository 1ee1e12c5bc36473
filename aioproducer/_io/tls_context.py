"""The TLS context a config describes (``ssl_*`` settings), for SSL and SASL_SSL.

Java's PEM key store given as strings (``ssl_keystore_certificate_chain``,
``ssl_keystore_key``) reaches OpenSSL, which reads a certificate and key from files only,
through anonymous memory files (``memfd_create``: never on a disk, gone when closed); where
there are none, through a private temporary directory (mode 0700, file 0600) removed at once.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, SslAuthenticationError
from .tls_settings import cipher_suites, offered_tls13_suites, version_range

if TYPE_CHECKING:
    from ..config import ProducerConfig

#: The attribute of a context we made holding the TLS 1.3 suites ``ssl_cipher_suites`` allows
#: (absent: any), checked after each handshake (Python's ssl cannot restrict what it offers).
_TLS13_ALLOWED = "_aioproducer_tls13_suites"


def ssl_context_for(cfg: ProducerConfig) -> ssl.SSLContext | None:
    """The TLS context for SSL/SASL_SSL, or None for plaintext."""
    if not cfg.security_protocol.endswith("SSL"):
        return None
    if cfg.ssl_context is not None:
        given: ssl.SSLContext = cfg.ssl_context
        return given
    try:
        ctx = ssl.create_default_context(
            cafile=cfg.ssl_cafile, cadata=cfg.ssl_truststore_certificates
        )
    except ssl.SSLError as exc:
        raise ConfigError(
            f"ssl_truststore_certificates: cannot read the PEM certificates ({exc.reason or exc})"
        ) from None
    suites = cfg.ssl_cipher_suites
    ctx.minimum_version, ctx.maximum_version = version_range(
        cfg.ssl_protocol, cfg.ssl_enabled_protocols, suites
    )
    if suites is not None:
        split = cipher_suites(suites)
        if split.tls12:
            ctx.set_ciphers(split.tls12)
        if split.tls13 and not split.tls13 >= offered_tls13_suites():
            setattr(ctx, _TLS13_ALLOWED, split.tls13)
    ctx.check_hostname = cfg.ssl_check_hostname
    if cfg.ssl_certfile is not None:
        _load_client_certificate(ctx, cfg.ssl_certfile, cfg.ssl_keyfile, cfg.ssl_password, cfg)
    elif cfg.ssl_keystore_key is not None and cfg.ssl_keystore_certificate_chain is not None:
        chain, key = cfg.ssl_keystore_certificate_chain, cfg.ssl_keystore_key
        with _memory_file(chain.encode()) as cert_path, _memory_file(key.encode()) as key_path:
            _load_client_certificate(ctx, cert_path, key_path, cfg.ssl_password, cfg)
    return ctx


def _load_client_certificate(
    ctx: ssl.SSLContext, certfile: Any, keyfile: Any, password: str | None, cfg: ProducerConfig
) -> None:
    try:
        ctx.load_cert_chain(certfile, keyfile, password)
    except (OSError, ssl.SSLError) as exc:  # the message never holds the password or the key
        what = (
            f"ssl_certfile={cfg.ssl_certfile!r} / ssl_keyfile={cfg.ssl_keyfile!r}"
            if cfg.ssl_certfile is not None
            else "ssl_keystore_certificate_chain / ssl_keystore_key"
        )
        raise ConfigError(
            f"{what}: cannot load the client certificate and key ({type(exc).__name__}: "
            f"{getattr(exc, 'strerror', None) or getattr(exc, 'reason', None) or exc})"
        ) from None


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    """A path that reads ``data``, valid inside the ``with``; nothing of it stays after."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("aioproducer-tls", getattr(os, "MFD_CLOEXEC", 0))
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="aioproducer-tls-") as directory:
        path = os.path.join(directory, "pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        try:
            yield path
        finally:
            os.unlink(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def refused_cipher(ctx: Any, transport: Any, where: str) -> SslAuthenticationError | None:
    """The error when a TLS 1.3 handshake on ``transport`` settled on a suite that
    ``ssl_cipher_suites`` does not list (None: it did, or nothing restricts it)."""
    allowed: frozenset[str] | None = getattr(ctx, _TLS13_ALLOWED, None)
    if allowed is None:
        return None
    cipher = transport.get_extra_info("cipher")
    if cipher is None or cipher[1] != "TLSv1.3" or cipher[0] in allowed:
        return None
    return SslAuthenticationError(
        f"TLS handshake with {where}: the broker chose {cipher[0]}, which ssl_cipher_suites "
        f"does not list ({', '.join(sorted(allowed))}); Python's ssl cannot restrict the TLS "
        "1.3 suites it offers, so the connection is refused after the handshake"
    )
