"""The connection rules of Java's ``NetworkClient``, as values; time is an argument (ms).

* How long one connection attempt may take (``ClusterConnectionStates``): the setup timeout
  doubles from ``socket_connection_setup_timeout_ms`` with each consecutive failed attempt to
  the same broker, up to ``socket_connection_setup_timeout_max_ms``, with ±20 % jitter.
* When a connection closes as idle (``Selector``'s idle expiry): ``connections_max_idle_ms``
  after its last traffic, if no request is in flight.
* When the client goes back to its bootstrap servers (``metadata_recovery_strategy``,
  KIP-899 and KIP-1102): :class:`Recovery`.
"""

from __future__ import annotations

from collections.abc import Callable

from .._broker_errors import RebootstrapRequiredError
from .accumulator import backoff_ms


def setup_timeout_ms(failures: int, base_ms: int, max_ms: int, rand: Callable[[], float]) -> int:
    """The setup timeout of an attempt after ``failures`` consecutive failed ones: ``base_ms``
    doubled per failure, capped at ``max_ms`` (raised to ``base_ms`` when lower), times a
    jitter factor between 0.8 and 1.2 (``rand()`` in [0, 1)), never above the cap."""
    return backoff_ms(failures + 1, base_ms, max(base_ms, max_ms), rand)


def idle_close_in_ms(last_activity_ms: int, busy: bool, max_idle_ms: int, now_ms: int) -> int:
    """Milliseconds until a connection closes as idle (0: now); -1 when it is not to close
    (a request is in flight, or ``max_idle_ms`` is -1)."""
    if busy or max_idle_ms < 0:
        return -1
    return max(0, last_activity_ms + max_idle_ms - now_ms)


class Recovery:
    """When to rebootstrap: forget the brokers learned from metadata and use the bootstrap
    servers again. With strategy "rebootstrap" (Java 4.x's default):

    * when none of the known brokers can be reached (every one is backing off after a
      failed attempt and no attempt is under way): KIP-899;
    * when a metadata update has been due for ``trigger_ms`` without succeeding, although
      brokers are reachable: KIP-1102;
    * when a broker answers Metadata (v13+) with the top-level error REBOOTSTRAP_REQUIRED:
      KIP-1102 too, at once, whatever ``trigger_ms``.

    With "none", never.
    """

    __slots__ = ("_due_since", "enabled", "trigger_ms")

    def __init__(self, strategy: str, trigger_ms: int) -> None:
        self.enabled = strategy == "rebootstrap"
        self.trigger_ms = trigger_ms
        #: Since when (ms) a metadata update has been due without one succeeding (None: not).
        self._due_since: int | None = None

    def update_due(self, now_ms: int) -> None:
        """A metadata update is due now (the clock of KIP-1102's trigger starts if stopped)."""
        if self._due_since is None:
            self._due_since = now_ms

    def updated(self) -> None:
        """A metadata update succeeded."""
        self._due_since = None

    def rebootstrapped(self, now_ms: int) -> None:
        """The client has just rebootstrapped: the trigger counts from now."""
        self._due_since = now_ms

    def stale_for_too_long(self, now_ms: int) -> bool:
        """KIP-1102: no metadata for ``trigger_ms`` while an update was due."""
        return (
            self.enabled
            and self._due_since is not None
            and now_ms - self._due_since >= self.trigger_ms
        )

    def requested(self, error_code: int) -> bool:
        """Whether a Metadata answer's top-level ``error_code`` has the client rebootstrap now:
        REBOOTSTRAP_REQUIRED (129) with strategy "rebootstrap" (Java's ``NetworkClient``
        rebootstraps at its next poll). With "none", Java reads such an answer as any other
        (:func:`metadata_answer_usable`)."""
        return self.enabled and error_code == RebootstrapRequiredError.code

    def when_unreachable(self, learned: bool) -> bool:
        """KIP-899: whether to rebootstrap when no known broker can be reached; ``learned``:
        the known brokers came from metadata (not the bootstrap servers themselves)."""
        return self.enabled and learned


def metadata_answer_usable(error_code: int, broker_count: int) -> bool:
    """Whether a Metadata answer not taken as a rebootstrap request updates the cluster view:
    one with a top-level error (v13+) and no broker is a failed update, as Java's
    ``DefaultMetadataUpdater`` ignores an answer without brokers, instead of a view with no
    broker (which would send the producer back to its bootstrap servers with strategy "none").
    An answer that names brokers is used whatever its top-level error, as Java does."""
    return error_code == 0 or broker_count > 0


__all__ = ["Recovery", "idle_close_in_ms", "metadata_answer_usable", "setup_timeout_ms"]
