"""What Java's TLS settings mean to OpenSSL: ``ssl_cipher_suites``, ``ssl_enabled_protocols``
and ``ssl_protocol`` as a cipher string and a TLS version range (used by ``tls_context.py`` and
checked by ``_config_rules.py``).

Java names suites by their IANA names (``TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384``), OpenSSL by
its own (``ECDHE-RSA-AES256-GCM-SHA384``); both are accepted, IANA names of the AES and
ChaCha20 suites translated. Python's ``ssl`` sets the TLS 1.2 suites only: the TLS 1.3 suites a
client offers are OpenSSL's defaults, whatever the list says. So a list that names TLS 1.3
suites is checked after the handshake (a connection that negotiated another one is refused),
and a list without any TLS 1.3 suite turns TLS 1.3 off, as it does in Java (a JSSE client
cannot negotiate TLS 1.3 without a TLS 1.3 suite).
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

#: The TLS versions a Java client may enable that aioproducer accepts, oldest first.
VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
#: Older names Java knows: refused (TLS before 1.2 is broken, and OpenSSL refuses it anyway).
_REFUSED = ("SSLv2", "SSLv2Hello", "SSLv3", "TLSv1", "TLSv1.1")
#: The TLS 1.3 suites (RFC 8446, appendix B.4): the same name in IANA's and OpenSSL's lists.
TLS13_SUITES = frozenset(
    {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_CCM_SHA256",
        "TLS_AES_128_CCM_8_SHA256",
    }
)
#: A signalling value, not a suite: Java lists it, OpenSSL always sends it.
_SCSV = "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
_IANA = re.compile(
    r"(?:TLS|SSL)_(?P<kx>ECDHE_ECDSA|ECDHE_RSA|DHE_RSA|DHE_DSS|RSA)_WITH_"
    r"(?:(?P<chacha>CHACHA20_POLY1305)_SHA256|"
    r"AES_(?P<bits>128|256)_(?:(?P<mode>GCM|CBC)_(?P<mac>SHA|SHA256|SHA384)|(?P<ccm>CCM(?:_8)?)))"
)
_KX = {
    "ECDHE_ECDSA": "ECDHE-ECDSA-",
    "ECDHE_RSA": "ECDHE-RSA-",
    "DHE_RSA": "DHE-RSA-",
    "DHE_DSS": "DHE-DSS-",
    "RSA": "",
}
_OPENSSL_NAME = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)+")


@dataclass(frozen=True)
class CipherSuites:
    """``ssl_cipher_suites`` for OpenSSL: the TLS 1.2 cipher string and the TLS 1.3 suites."""

    #: The TLS 1.2 suites' OpenSSL names, ``:``-joined ("": none listed).
    tls12: str
    #: The TLS 1.3 suites listed (empty: none, so no TLS 1.3).
    tls13: frozenset[str]


def openssl_name(name: str) -> str | None:
    """The OpenSSL name of a TLS 1.2 suite given by its IANA (Java) name, or None."""
    m = _IANA.fullmatch(name)
    if m is None:
        return None
    prefix = _KX[m["kx"]]
    if m["chacha"]:
        return None if not prefix else f"{prefix}CHACHA20-POLY1305"
    if m["ccm"]:
        return f"{prefix}AES{m['bits']}-{m['ccm'].replace('_', '')}"
    if m["mode"] == "GCM":
        return None if m["mac"] == "SHA" else f"{prefix}AES{m['bits']}-GCM-{m['mac']}"
    return f"{prefix}AES{m['bits']}-{m['mac']}"


@functools.cache
def _single_suite(name: str) -> bool:
    """Whether ``name`` is the OpenSSL name of exactly one TLS 1.2 suite this OpenSSL has."""
    if _OPENSSL_NAME.fullmatch(name) is None:
        return False
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        scratch.set_ciphers(name)
    except ssl.SSLError:
        return False
    return [c["name"] for c in scratch.get_ciphers() if c["protocol"] != "TLSv1.3"] == [name]


@functools.cache
def offered_tls13_suites() -> frozenset[str]:
    """The TLS 1.3 suites Python's ssl offers (OpenSSL's defaults; they cannot be changed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return frozenset(c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3")


def cipher_suites(names: Sequence[str]) -> CipherSuites:
    """``ssl_cipher_suites`` checked and split; :class:`ConfigError` names a bad entry."""
    tls12: list[str] = []
    tls13: set[str] = set()
    for name in names:
        name = name.strip() if isinstance(name, str) else name
        if not isinstance(name, str) or not name:
            raise ConfigError(f"ssl_cipher_suites: {name!r} is not a cipher suite name")
        if name == _SCSV:
            continue
        if name in TLS13_SUITES:
            tls13.add(name)
            continue
        mapped = openssl_name(name)
        if mapped is not None and _single_suite(mapped):
            tls12.append(mapped)
        elif _single_suite(name):
            tls12.append(name)
        else:
            raise ConfigError(
                f"ssl_cipher_suites: {name!r} is not a cipher suite this Python's OpenSSL "
                "has; give Java's (IANA) name of an AES or ChaCha20 suite, "
                "e.g. 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', or the OpenSSL name, e.g. "
                "'ECDHE-RSA-AES256-GCM-SHA384' (openssl ciphers -stdname lists both)"
            )
    if not tls12 and not tls13:
        raise ConfigError("ssl_cipher_suites is empty; None keeps the default suites")
    if tls13 and not tls13 & offered_tls13_suites():
        raise ConfigError(
            f"ssl_cipher_suites: Python's ssl cannot offer {sorted(tls13)} (it offers the TLS "
            f"1.3 suites {sorted(offered_tls13_suites())} and cannot change them); list one of "
            "those, or TLS 1.2 suites only"
        )
    return CipherSuites(":".join(dict.fromkeys(tls12)), frozenset(tls13))


def _version(setting: str, name: object) -> str:
    if isinstance(name, str) and name in VERSIONS:
        return name
    if name in _REFUSED:
        raise ConfigError(
            f"{setting}: {name!r} is refused: TLS older than 1.2 is insecure (allowed: "
            "'TLSv1.2', 'TLSv1.3')"
        )
    raise ConfigError(f"{setting}: {name!r} is not a TLS version; allowed 'TLSv1.2', 'TLSv1.3'")


def version_range(
    protocol: str, enabled: Sequence[str], suites: Sequence[str] | None
) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    """The lowest and highest TLS version a client may negotiate, as Java's settings say:
    the ``enabled`` versions up to ``protocol`` (the SSLContext's, "TLS": the newest), and
    TLS 1.3 only if ``suites`` (when given) names a TLS 1.3 suite; TLS 1.2 only if it names a
    TLS 1.2 one. :class:`ConfigError` when nothing is left."""
    cap = "TLSv1.3" if protocol == "TLS" else _version("ssl_protocol", protocol)
    if isinstance(enabled, str) or not enabled:
        raise ConfigError(
            f"ssl_enabled_protocols={enabled!r} must be a non-empty list, e.g. "
            "['TLSv1.2', 'TLSv1.3']"
        )
    names = {_version("ssl_enabled_protocols", name) for name in enabled}
    allowed = [name for name in VERSIONS if name in names and VERSIONS[name] <= VERSIONS[cap]]
    why = f"ssl_protocol={protocol!r} and ssl_enabled_protocols={list(enabled)!r}"
    if suites is not None:
        split = cipher_suites(suites)
        allowed = [name for name in allowed if (split.tls13 if name == "TLSv1.3" else split.tls12)]
        why += f" and ssl_cipher_suites={list(suites)!r}"
    if not allowed:
        raise ConfigError(f"{why} leave no TLS version to use")
    return VERSIONS[allowed[0]], VERSIONS[allowed[-1]]


__all__ = (
    "TLS13_SUITES",
    "VERSIONS",
    "CipherSuites",
    "cipher_suites",
    "offered_tls13_suites",
    "openssl_name",
    "version_range",
)
