"""The TLS context a config describes (``ssl_*`` settings), for SSL and SASL_SSL."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import ProducerConfig


def ssl_context_for(cfg: ProducerConfig) -> ssl.SSLContext | None:
    """The TLS context for SSL/SASL_SSL, or None for plaintext."""
    if not cfg.security_protocol.endswith("SSL"):
        return None
    if cfg.ssl_context is not None:
        given: ssl.SSLContext = cfg.ssl_context
        return given
    ctx = ssl.create_default_context(cafile=cfg.ssl_cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = cfg.ssl_check_hostname
    if cfg.ssl_certfile is not None:
        try:
            ctx.load_cert_chain(cfg.ssl_certfile, cfg.ssl_keyfile, cfg.ssl_password)
        except (OSError, ssl.SSLError) as exc:  # the message never holds the password
            raise ConfigError(
                f"ssl_certfile={cfg.ssl_certfile!r} / ssl_keyfile={cfg.ssl_keyfile!r}: "
                f"cannot load the client certificate and key ({type(exc).__name__}: "
                f"{getattr(exc, 'strerror', None) or getattr(exc, 'reason', None) or exc})"
            ) from None
    return ctx
