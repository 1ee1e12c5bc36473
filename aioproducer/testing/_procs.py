"""Child processes that never outlive the test run.

Every broker the harness starts goes through :func:`spawn`. Three layers keep orphans away:

* on Linux the child gets ``PR_SET_DEATHSIG = SIGKILL``, so it dies with the process that
  started it even when that process is itself SIGKILLed;
* every child starts in its own process group and is recorded in a registry that an
  ``atexit`` hook and SIGTERM/SIGHUP handlers sweep;
* :meth:`ManagedProcess.stop` escalates from SIGTERM to SIGKILL after a grace period.

The death signal fires when the *thread* that forked the child ends, so it is set only for
children started from the main thread; others rely on the registry sweeps.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

_PR_SET_DEATHSIG = 1
_registry: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()
_registry_lock = threading.Lock()
_handlers_installed = False


def _set_deathsig() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    os.setpgrp()


class ManagedProcess:
    """A child process whose output goes to a log file and which is always reaped."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        _install_handlers()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            # The death signal fires when the *thread* that forked the child ends: only the
            # main thread lives as long as the process. From another thread (a test calling
            # restart() via asyncio.to_thread) the atexit and signal sweeps cover cleanup.
            main = threading.current_thread() is threading.main_thread()
            preexec: Callable[[], None] | None = (
                _set_deathsig if main and sys.platform.startswith("linux") else os.setpgrp
            )
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=preexec,
            )
        with _registry_lock:
            _registry.add(self)

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def kill(self) -> None:
        """SIGKILL the whole process group, without any chance to shut down cleanly."""
        self._signal(signal.SIGKILL)
        self._wait(10.0)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if the process has not exited after ``grace`` seconds."""
        if not self.running:
            self._wait(0)
            return
        self._signal(signal.SIGTERM)
        if not self._wait(grace):
            self.kill()

    def _signal(self, sig: signal.Signals) -> None:
        if self._popen is None or self._popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def _wait(self, timeout: float) -> bool:
        if self._popen is None:
            return True
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def log_tail(self, max_bytes: int = 20_000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                return f.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"<no log at {self.log_path}: {exc}>"


def kill_all() -> None:
    """Kill every process the harness started that is still alive."""
    with _registry_lock:
        procs = list(_registry)
    for proc in procs:
        proc.kill()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    kill_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(kill_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)
