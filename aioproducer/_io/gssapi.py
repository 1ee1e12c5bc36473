"""SASL/GSSAPI's shell: python-gssapi (the ``gssapi`` extra, imported only when used) as the
:class:`~aioproducer._core.gssapi.GssContext`, and the ticket cache's TGT refresher.

Credentials are the system's: the ticket cache (``kinit``; ``KRB5CCNAME``) or a client keytab
(``KRB5_CLIENT_KTNAME``, from which the Kerberos library gets and renews tickets by itself);
or ``sasl_kerberos_keytab`` and ``sasl_kerberos_principal`` (Java's ``useKeyTab``): tickets
from that keytab in a memory cache of the producer's own, which the library renews. Each
connection makes a new context, so it uses what the cache holds at that moment.

The refresher is Java's ``KerberosLogin`` thread for a ticket cache (``useTicketCache``): at
``sasl_kerberos_ticket_renew_window_factor`` (+ up to ``sasl_kerberos_ticket_renew_jitter``) of
the TGT's lifetime, but not sooner than ``sasl_kerberos_min_time_before_relogin``, it runs
``sasl_kerberos_kinit_cmd -R``; a failed run is tried once more 10 s later, then it stops, as
Java's does. It reads MIT FILE caches; with another kind of cache it does nothing (says so once).
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .._core.gssapi import CcacheFormatError, GssapiClient, Ticket, ccache_tickets, find_tgt
from .._core.gssapi import refresh_plan as _refresh_plan
from ..errors import ConfigError, SaslAuthenticationError
from .backend import Later, ops_for, running_loop

if TYPE_CHECKING:
    from ..config import ProducerConfig

log = logging.getLogger("aioproducer.connection")
#: Java's pause before its one retry of a failed ``kinit -R``.
KINIT_RETRY_S = 10.0


def import_gssapi() -> Any:
    """The python-gssapi module, or :class:`ConfigError` naming the extra."""
    try:
        import gssapi
    except ImportError as exc:
        raise ConfigError(
            "sasl_mechanism='GSSAPI' needs python-gssapi: pip install 'aioproducer[gssapi]' "
            f"(it builds against the system's Kerberos: libkrb5-dev on Debian) ({exc})"
        ) from exc
    return gssapi


class PyGssContext:
    """python-gssapi's initiator context for ``service@host`` (mutual authentication and
    integrity, as RFC 4752 needs), its errors as :class:`SaslAuthenticationError`."""

    def __init__(self, service: str, host: str, creds: Any = None) -> None:
        gssapi = import_gssapi()
        self._errors: tuple[type[BaseException], ...] = (gssapi.exceptions.GSSError,)
        self.target = f"{service}@{host}"
        flag = gssapi.RequirementFlag
        flags = flag.mutual_authentication | flag.integrity | flag.out_of_sequence_detection
        try:
            name = gssapi.Name(self.target, gssapi.NameType.hostbased_service)
            self._ctx = gssapi.SecurityContext(
                name=name,
                usage="initiate",
                flags=flags,
                creds=creds,
            )
        except self._errors as exc:
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> SaslAuthenticationError:
        text = " ".join(str(exc).split())
        return SaslAuthenticationError(f"SASL/GSSAPI (service {self.target}): {text}")

    @property
    def complete(self) -> bool:
        return bool(self._ctx.complete)

    def step(self, token: bytes | None) -> bytes | None:
        try:
            out = self._ctx.step(token)
        except self._errors as exc:
            raise self._error(exc) from exc
        return None if out is None else bytes(out)

    def wrap(self, message: bytes) -> bytes:
        try:
            return bytes(self._ctx.wrap(message, False).message)
        except self._errors as exc:
            raise self._error(exc) from exc

    def unwrap(self, message: bytes) -> bytes:
        try:
            return bytes(self._ctx.unwrap(message).message)
        except self._errors as exc:
            raise self._error(exc) from exc


class _Primed:
    """A context whose first token was made in a worker thread (it asks the KDC for the
    service ticket, a blocking network call)."""

    def __init__(self, ctx: PyGssContext, first: bytes | None) -> None:
        self._ctx, self._first = ctx, first

    @property
    def complete(self) -> bool:
        return self._ctx.complete

    def step(self, token: bytes | None) -> bytes | None:
        if token is None:
            first, self._first = self._first, None
            return first
        return self._ctx.step(token)

    def wrap(self, message: bytes) -> bytes:
        return self._ctx.wrap(message)

    def unwrap(self, message: bytes) -> bytes:
        return self._ctx.unwrap(message)


async def gssapi_client(service: str, host: str, creds: Any = None) -> GssapiClient:
    """A GSSAPI exchange with ``service@host``, its KDC round trip off the event loop."""
    ctx = PyGssContext(service, host, creds)
    first = await ops_for(running_loop()).to_thread(lambda: ctx.step(None))
    return GssapiClient(_Primed(ctx, first))


def credentials(principal: str | None, keytab: str | None) -> Any:
    """python-gssapi initiator credentials: ``principal``'s from ``keytab`` (kept in a memory
    cache of their own, which the Kerberos library refreshes from the keytab), or
    ``principal``'s in the ticket cache; None (the library's default) without either."""
    if principal is None:
        return None
    gssapi = import_gssapi()
    store = None
    if keytab is not None:
        store = {"client_keytab": keytab, "ccache": f"MEMORY:aioproducer-{id(object())}"}
    try:
        name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
        return gssapi.Credentials(name=name, usage="initiate", store=store)
    except gssapi.exceptions.GSSError as exc:
        text = " ".join(str(exc).split())
        where = f"keytab {keytab}" if keytab else "the ticket cache"
        raise SaslAuthenticationError(
            f"SASL/GSSAPI: no credentials for {principal} from {where}: {text}"
        ) from exc


def ccache_path(env: dict[str, str] | os._Environ[str] | None = None) -> str | None:
    """The FILE credential cache the Kerberos library uses (``KRB5CCNAME``, else MIT's
    default ``/tmp/krb5cc_UID``), or None for another kind of cache."""
    name = (env if env is not None else os.environ).get("KRB5CCNAME")
    if not name:
        return f"/tmp/krb5cc_{os.getuid()}"
    kind, sep, rest = name.partition(":")
    if not sep or "/" in kind:
        return name
    return rest if kind == "FILE" else None


def read_tgt(path: str) -> Ticket | None:
    """The TGT in the FILE cache at ``path``, or None (no cache, no TGT, unreadable)."""
    try:
        with open(path, "rb") as f:
            return find_tgt(ccache_tickets(f.read()))
    except (OSError, CcacheFormatError):
        return None


class TicketRefresher:
    """Renews the ticket cache's TGT with ``kinit -R`` on Java's schedule (module docstring)."""

    def __init__(self, config: ProducerConfig) -> None:
        self.kinit_cmd = config.sasl_kerberos_kinit_cmd
        self.window_factor = config.sasl_kerberos_ticket_renew_window_factor
        self.jitter = config.sasl_kerberos_ticket_renew_jitter
        self.min_time_s = config.sasl_kerberos_min_time_before_relogin / 1000
        self.path = ccache_path()
        #: Successful ``kinit -R`` runs.
        self.renewals = 0
        #: Why the refresher stopped (None while it runs).
        self.stopped: str | None = None
        self._renewal = Later()

    def start(self) -> None:
        if self.path is None:
            self._stop(
                f"the ticket cache {os.environ.get('KRB5CCNAME')!r} is not a FILE cache; "
                "aioproducer does not renew it",
                logging.INFO,
            )
            return
        self._schedule_next()

    def _schedule_next(self) -> None:
        assert self.path is not None
        tgt = read_tgt(self.path)
        plan = _refresh_plan(
            tgt, time.time(), self.window_factor, self.jitter, self.min_time_s, random.random()
        )
        if plan.delay_s is None:
            self._stop(plan.reason, logging.WARNING)
            return
        if tgt is None:
            log.debug("Kerberos: no TGT in %s; looking again in %.0f s", self.path, plan.delay_s)
        else:
            log.debug("Kerberos: renewing the TGT in %.1f s", plan.delay_s)
        self._after(plan.delay_s, renew=tgt is not None, retries=1)

    def _after(self, delay_s: float, renew: bool, retries: int) -> None:
        self._renewal.after(delay_s, lambda: self._fire(renew, retries))

    def _fire(self, renew: bool, retries: int) -> Coroutine[Any, Any, None] | None:
        if not renew:
            self._schedule_next()
            return None
        return self._renew(retries)

    async def _renew(self, retries: int) -> None:
        cmd = [self.kinit_cmd, "-R"]
        try:
            done = await ops_for(running_loop()).to_thread(
                lambda: subprocess.run(cmd, capture_output=True, timeout=60, check=False)
            )
            error = None if done.returncode == 0 else done.stderr.decode(errors="replace")
        except (OSError, subprocess.SubprocessError) as exc:
            error = str(exc)
        if error is None:
            self.renewals += 1
            log.info("Kerberos: renewed the TGT (%s -R)", self.kinit_cmd)
            self._schedule_next()
        elif retries > 0:
            log.warning("Kerberos: %s -R failed, trying again: %s", self.kinit_cmd, error.strip())
            self._after(KINIT_RETRY_S, renew=True, retries=retries - 1)
        else:
            self._stop(f"{self.kinit_cmd} -R failed: {error.strip()}", logging.WARNING)

    def _stop(self, reason: str, level: int) -> None:
        self.stopped = reason
        log.log(level, "Kerberos: the TGT refresher stops: %s", reason)

    def close(self) -> None:
        self._renewal.cancel()
        if self.stopped is None:
            self.stopped = "closed"


__all__ = (
    "PyGssContext",
    "TicketRefresher",
    "ccache_path",
    "credentials",
    "gssapi_client",
    "import_gssapi",
)
