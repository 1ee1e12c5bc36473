"""An MIT Kerberos KDC for tests (Debian's ``krb5-kdc``, ``krb5-admin-server`` and
``krb5-user``), on 127.0.0.1 with its own configuration in a temporary directory.

``KerberosKdc()`` makes the realm (``kdb5_util create``), the brokers' service principal
``kafka/localhost`` and client principals, each with a keytab, then runs ``krb5kdc`` in the
foreground. Nothing outside its directory is touched: the clients it serves find it through
:attr:`KerberosKdc.env` (``KRB5_CONFIG``), the JVM through :meth:`jvm_options`.
``localhost`` is the brokers' host in the principal: the Kerberos library turns 127.0.0.1 into
it (reverse lookup), as it does for any broker address.

Tickets are short-lived and renewable (``max_life``, ``max_renewable_life``) so the renewal of
a ticket cache can be seen in a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ._errors import HarnessError, MissingToolError
from ._ports import LOOPBACK, free_ports, wait_for_port
from ._procs import ManagedProcess

REALM = "EXAMPLE.COM"
SERVICE = "kafka"
SERVICE_HOST = "localhost"
_TOOLS = {
    "krb5kdc": "krb5-kdc",
    "kdb5_util": "krb5-kdc",
    "kadmin.local": "krb5-admin-server",
    "kinit": "krb5-user",
    "klist": "krb5-user",
}


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise MissingToolError(name, f"install the Debian package {_TOOLS[name]}")
    return found


class KerberosKdc:
    """A throwaway realm and KDC (see the module docstring); a context manager."""

    def __init__(self, clients: tuple[str, ...] = ("alice",), max_life: str = "10h") -> None:
        self.clients = clients
        self.max_life = max_life
        self.dir = Path(tempfile.mkdtemp(prefix="aioproducer-kdc-"))
        self.port = 0
        self.krb5_conf = self.dir / "krb5.conf"
        self.kdc_conf = self.dir / "kdc.conf"
        self.service_principal = f"{SERVICE}/{SERVICE_HOST}@{REALM}"
        self.service_keytab = self.dir / "kafka.keytab"
        self._process: ManagedProcess | None = None

    @property
    def env(self) -> dict[str, str]:
        """The variables that point the Kerberos library and tools at this realm."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.kdc_conf)}

    def keytab(self, client: str) -> Path:
        return self.dir / f"{client}.keytab"

    def jvm_options(self) -> list[str]:
        return [f"-Djava.security.krb5.conf={self.krb5_conf}"]

    def _run(self, *argv: str) -> str:
        done = subprocess.run(
            argv, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise HarnessError(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def _admin(self, query: str) -> None:
        self._run(_tool("kadmin.local"), "-r", REALM, "-q", query)

    def start(self, timeout: float = 30.0) -> KerberosKdc:
        for tool in _TOOLS:
            _tool(tool)
        self.port = free_ports(1)[0]
        self.krb5_conf.write_text(
            f"[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n"
            " dns_lookup_realm = false\n dns_canonicalize_hostname = true\n rdns = true\n"
            " udp_preference_limit = 1\n forwardable = false\n"
            f"[realms]\n {REALM} = {{\n  kdc = {LOOPBACK}:{self.port}\n }}\n"
            f"[domain_realm]\n localhost = {REALM}\n"
        )
        self.kdc_conf.write_text(
            f"[kdcdefaults]\n kdc_ports = {self.port}\n kdc_tcp_ports = {self.port}\n"
            f"[realms]\n {REALM} = {{\n  database_name = {self.dir / 'principal'}\n"
            f"  key_stash_file = {self.dir / 'stash'}\n  acl_file = {self.dir / 'kadm5.acl'}\n"
            f"  max_life = {self.max_life}\n  max_renewable_life = 7d\n }}\n"
            f"[logging]\n kdc = FILE:{self.dir / 'kdc.log'}\n"
        )
        (self.dir / "kadm5.acl").write_text("")
        self._run(_tool("kdb5_util"), "create", "-s", "-r", REALM, "-P", "kdc-master-pw")
        self._admin(f"modprinc -maxlife {self.max_life} -maxrenewlife 7d krbtgt/{REALM}")
        principals = {self.service_principal: self.service_keytab}
        principals.update({f"{c}@{REALM}": self.keytab(c) for c in self.clients})
        for principal, keytab in principals.items():
            self._admin(f"addprinc -randkey -maxrenewlife 7d {principal}")
            self._admin(f"ktadd -k {keytab} {principal}")
        self._process = ManagedProcess(
            "krb5kdc",
            [_tool("krb5kdc"), "-n", "-r", REALM],
            self.dir / "krb5kdc.out",
            env={**os.environ, **self.env},
        )
        self._process.start()
        deadline = time.monotonic() + timeout
        while not wait_for_port(self.port):
            if not self._process.running or time.monotonic() > deadline:
                raise HarnessError(f"krb5kdc did not start:\n{self._process.log_tail(4000)}")
            time.sleep(0.05)
        return self

    def kinit(
        self, client: str, ccache: Path, lifetime: str = "1h", renew: str | None = "1d"
    ) -> None:
        """Put a TGT for ``client`` (from its keytab) in the FILE cache ``ccache``, renewable
        for ``renew`` (None: not renewable)."""
        self._run(
            _tool("kinit"),
            "-k",
            "-t",
            str(self.keytab(client)),
            "-c",
            f"FILE:{ccache}",
            "-l",
            lifetime,
            *(("-r", renew) if renew is not None else ()),
            f"{client}@{REALM}",
        )

    def close(self) -> None:
        if self._process is not None:
            self._process.stop()
        if not os.environ.get("AIOPRODUCER_KEEP_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> KerberosKdc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ("REALM", "SERVICE", "SERVICE_HOST", "KerberosKdc")
