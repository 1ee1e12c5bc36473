"""KIP-714 client metrics: the subscription state machine and the payload, as Java's
``ClientTelemetryReporter`` (time as an argument; the requests are ``_io/telemetry.py``'s).

Rules:

* States: a subscription is needed, asked for, held (a push is needed), a push is out, and at
  close a terminating push is needed, out, or the machine has terminated. A request is due
  ``interval`` ms after the last answer (0 at first). The first push after a subscription
  waits a random 0.5-1.5 times the push interval (Java's jitter), later ones the interval.
* Answers: UNKNOWN_SUBSCRIPTION_ID and UNSUPPORTED_COMPRESSION_TYPE ask for a subscription
  at once; TELEMETRY_TOO_LARGE and THROTTLING_QUOTA_EXCEEDED again after the interval;
  INVALID_REQUEST, INVALID_RECORD, UNSUPPORTED_VERSION and any other error turn telemetry
  off. A request that fails (a lost connection, a timeout) is retried after 5 minutes; a
  broker without the APIs turns it off.
* A subscription with no metric names selects nothing: it is asked for again after its
  interval. ``["*"]`` or ``[""]`` selects all; otherwise a metric is pushed when its
  telemetry name starts with one of the prefixes.
* Names (KIP-714): ``org.apache.kafka.`` + the group without ``-metrics`` + the metric's
  name, lower case, ``-`` turned to ``.``; tags become attributes with ``-`` turned to
  ``_``, except the client id. Only Java's groups are pushed (not ``aioproducer-metrics``).
  A ``-total`` metric is a monotonic sum (a delta since the last push when the subscription
  asks for delta temporality), every other one a gauge.
* ``close()`` asks for a terminating push only if a subscription is held.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .metrics import MetricName
from .otlp import CUMULATIVE, DELTA, Point, metrics_data

#: Java's ``ClientTelemetryReporter.DEFAULT_PUSH_INTERVAL_MS``.
DEFAULT_INTERVAL_MS = 5 * 60 * 1000
#: Never again.
OFF = 2**31 - 1
#: The groups whose metrics are Java's, pushed under their KIP-714 names.
JAVA_GROUPS = ("producer-metrics", "producer-topic-metrics", "producer-node-metrics")
PREFIX = "org.apache.kafka"
#: Broker error codes (errors.py's classes carry them too; the core needs the numbers).
INVALID_REQUEST, INVALID_RECORD, UNSUPPORTED_VERSION = 42, 87, 35
THROTTLING_QUOTA_EXCEEDED, UNKNOWN_SUBSCRIPTION_ID = 89, 117
UNSUPPORTED_COMPRESSION_TYPE, TELEMETRY_TOO_LARGE = 76, 118
_RETRY_NOW = (UNKNOWN_SUBSCRIPTION_ID, UNSUPPORTED_COMPRESSION_TYPE)
_RETRY_LATER = (TELEMETRY_TOO_LARGE, THROTTLING_QUOTA_EXCEEDED)


class State(enum.Enum):
    SUBSCRIPTION_NEEDED = "subscription needed"
    SUBSCRIPTION_IN_PROGRESS = "subscription in progress"
    PUSH_NEEDED = "push needed"
    PUSH_IN_PROGRESS = "push in progress"
    TERMINATING_PUSH_NEEDED = "terminating push needed"
    TERMINATING_PUSH_IN_PROGRESS = "terminating push in progress"
    TERMINATED = "terminated"


_TERMINATING = (State.TERMINATING_PUSH_NEEDED, State.TERMINATING_PUSH_IN_PROGRESS, State.TERMINATED)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A GetTelemetrySubscriptions answer, checked."""

    client_instance_id: uuid.UUID
    subscription_id: int
    push_interval_ms: int
    #: The compression ids the broker accepts, its preferred first.
    accepted_compression: tuple[int, ...]
    delta: bool
    #: The metric name prefixes asked for; ``("",)``: all; ``()``: none.
    requested: tuple[str, ...]
    max_bytes: int

    def selects(self, name: str) -> bool:
        return any(name.startswith(p) for p in self.requested)


def telemetry_name(group: str, name: str) -> str:
    """KIP-714's name of a metric: ``org.apache.kafka.producer.record.send.rate``."""
    group = group.lower().replace("-", ".").replace(".metrics", "")
    return f"{PREFIX}.{group}.{name.lower().replace('-', '.')}"


def compression_for(accepted: Sequence[int], available: Sequence[int]) -> int:
    """The broker's preferred codec among ``available`` (ours), else none (0)."""
    for codec in accepted:
        if codec in available:
            return codec
    return 0


class TelemetryState:
    """The subscription and push state machine of one producer."""

    def __init__(self, rand: float, start_ms: int = 0) -> None:
        #: A number in [0, 1) that places the first push in 0.5-1.5 intervals.
        self.rand = rand
        #: When the producer began counting (epoch ms): where its sums start.
        self.start_ms = start_ms
        self.state = State.SUBSCRIPTION_NEEDED
        self.subscription: Subscription | None = None
        self.enabled = True
        self.last_ms = 0
        self.interval_ms = 0
        #: The time each sum was first seen (cumulative start), and its value and time at
        #: the last push (delta temporality).
        self._started: dict[MetricName, int] = {}
        self._last: dict[MetricName, tuple[float, int]] = {}

    # -- when, and what ------------------------------------------------------------------------

    def wait_ms(self, now: int) -> int:
        """How long until a request is due (``OFF``: none will be)."""
        if not self.enabled:
            return OFF
        if self.state is State.TERMINATING_PUSH_NEEDED:
            return 0
        if self.state not in (State.SUBSCRIPTION_NEEDED, State.PUSH_NEEDED):
            return OFF  # a request is out (its answer moves on), or terminated
        return max(0, self.last_ms + self.interval_ms - now)

    def begin(self, now: int) -> State | None:
        """The request due at ``now``: ``SUBSCRIPTION_IN_PROGRESS``, ``PUSH_IN_PROGRESS`` or
        ``TERMINATING_PUSH_IN_PROGRESS`` (now the state), or None."""
        if self.wait_ms(now) != 0:
            return None
        if self.state is State.SUBSCRIPTION_NEEDED:
            self.state = State.SUBSCRIPTION_IN_PROGRESS
        elif self.subscription is None:
            self.state = State.SUBSCRIPTION_NEEDED
            return None
        elif self.state is State.PUSH_NEEDED:
            self.state = State.PUSH_IN_PROGRESS
        else:
            self.state = State.TERMINATING_PUSH_IN_PROGRESS
        return self.state

    @property
    def client_instance_id(self) -> uuid.UUID:
        """Ours once a broker assigned it; zero before (asks for one)."""
        return self.subscription.client_instance_id if self.subscription else uuid.UUID(int=0)

    # -- answers -------------------------------------------------------------------------------

    def on_subscription(self, now: int, error: int, sub: Subscription | None) -> None:
        """A GetTelemetrySubscriptions answer (``sub`` when ``error`` is 0)."""
        if self.state in _TERMINATING:
            return
        if error or sub is None:
            self._error(now, error)
            return
        if sub.push_interval_ms <= 0:
            sub = _replace(sub, push_interval_ms=DEFAULT_INTERVAL_MS)
        if not sub.client_instance_id.int and self.subscription is not None:
            # The id is assigned once: a later answer may leave it zero.
            sub = _replace(sub, client_instance_id=self.subscription.client_instance_id)
        if self.subscription is not None and self.subscription.delta != sub.delta:
            self._last.clear()
        self.subscription = sub
        self.last_ms = now
        if sub.requested:
            self.state = State.PUSH_NEEDED
            self.interval_ms = round((0.5 + self.rand) * sub.push_interval_ms)
        else:
            self.state = State.SUBSCRIPTION_NEEDED
            self.interval_ms = sub.push_interval_ms

    def on_push(self, now: int, error: int) -> None:
        """A PushTelemetry answer."""
        if self.state in _TERMINATING:
            if self.state is State.TERMINATING_PUSH_IN_PROGRESS:
                self.state = State.TERMINATED
            return
        if error:
            self._error(now, error)
            return
        assert self.subscription is not None
        self.last_ms, self.interval_ms = now, self.subscription.push_interval_ms
        self.state = State.PUSH_NEEDED

    def on_failure(self, now: int, unsupported: bool) -> None:
        """The request got no answer (``unsupported``: the broker lacks the API)."""
        if self.state is State.TERMINATING_PUSH_IN_PROGRESS:
            self.state = State.TERMINATED
        if self.state in _TERMINATING:
            return
        self._set_interval(now, OFF if unsupported else DEFAULT_INTERVAL_MS)
        self.state = State.SUBSCRIPTION_NEEDED

    def _error(self, now: int, error: int) -> None:
        if error in _RETRY_NOW:
            interval = 0
        elif error in _RETRY_LATER:
            interval = self.subscription.push_interval_ms if self.subscription else -1
            interval = interval if interval > 0 else DEFAULT_INTERVAL_MS
        else:
            interval = OFF
        self._set_interval(now, interval)
        self.state = State.SUBSCRIPTION_NEEDED

    def _set_interval(self, now: int, interval: int) -> None:
        self.last_ms, self.interval_ms = now, interval
        if interval == OFF:
            self.enabled = False

    def close(self) -> bool:
        """The producer closes: True when a terminating push is due."""
        if self.state in _TERMINATING:
            return False
        held = self.subscription is not None and self.state is not State.SUBSCRIPTION_NEEDED
        self.state = State.TERMINATING_PUSH_NEEDED if held and self.enabled else State.TERMINATED
        return self.state is State.TERMINATING_PUSH_NEEDED

    # -- the payload ---------------------------------------------------------------------------

    def payload(
        self, metrics: Mapping[MetricName, float], now_ms: int, resource: Mapping[str, str]
    ) -> bytes:
        """The subscribed ``metrics`` as OTLP ``MetricsData`` at ``now_ms`` (epoch ms)."""
        sub = self.subscription
        assert sub is not None
        now_ns = now_ms * 1_000_000
        points = []
        for key, value in metrics.items():
            if key.group not in JAVA_GROUPS:
                continue
            name = telemetry_name(key.group, key.name)
            if not sub.selects(name):
                continue
            attrs = {k.replace("-", "_"): v for k, v in key.tags.items() if k != "client-id"}
            if not key.name.endswith("-total"):
                points.append(Point(name, value, attrs, now_ns, description=key.description))
                continue
            started = self._started.setdefault(key, self.start_ms or now_ms)
            if sub.delta:
                before, since = self._last.get(key, (0.0, started))
                self._last[key] = (value, now_ms)
                value, start, temporality = value - before, since, DELTA
            else:
                start, temporality = started, CUMULATIVE
            points.append(
                Point(name, value, attrs, now_ns, start * 1_000_000, temporality, key.description)
            )
        return metrics_data(points, resource, "aioproducer", "")


def _replace(sub: Subscription, **changes: Any) -> Subscription:
    return dataclasses.replace(sub, **changes)


def subscription_from(
    instance_id: uuid.UUID,
    subscription_id: int,
    interval_ms: int,
    accepted: Sequence[int],
    delta: bool,
    requested: Sequence[str],
    max_bytes: int,
) -> Subscription:
    """A Subscription from an answer's fields: ``["*"]`` or ``[""]`` asks for everything."""
    names = tuple(requested)
    if names in (("*",), ("",)):
        names = ("",)
    return Subscription(
        instance_id, subscription_id, interval_ms, tuple(accepted), delta, names, max_bytes
    )


__all__ = [
    "DEFAULT_INTERVAL_MS",
    "OFF",
    "State",
    "Subscription",
    "TelemetryState",
    "compression_for",
    "subscription_from",
    "telemetry_name",
]
