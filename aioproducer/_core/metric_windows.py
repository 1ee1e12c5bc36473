"""The sample windows of Java's windowed statistics, shared by every counter of a producer.

Rules:

* A counter (:class:`Counters`) is cumulative values (``FIELDS``) and the current window's
  maxima (``MAXES``) in plain attributes; nothing here runs when an event is counted.
* Java's statistics (rate, average, maximum over ``metrics_num_samples`` windows of
  ``metrics_sample_window_ms``) come from :class:`Windows`: when a window closes it keeps
  where each counter stood then and the window's maxima. It closes on the first produce
  request (or read) after its end, with the time passed in, as Java's samples roll on the
  first recording after theirs.
* Read: a rate is the increase since the oldest window still kept, per second over at least
  ``samples - 1`` windows (Java's ``Rate``: a young producer's rate does not spike); an
  average is an increase divided by its count's; an average or maximum over nothing is NaN,
  as in Java.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import ClassVar

NAN = math.nan
_NEVER = -(1 << 62)


class Counters:
    """Cumulative values (``FIELDS``, from 0) and the current window's maxima (``MAXES``,
    from -inf), as plain attributes that the code counting an event adds to."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[str, ...]] = ()
    MAXES: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        for f in self.FIELDS:
            setattr(self, f, 0)
        for f in self.MAXES:
            setattr(self, f, -math.inf)

    def values(self) -> tuple[float, ...]:
        return tuple(getattr(self, f) for f in self.FIELDS)

    def take_maxes(self) -> tuple[float, ...]:
        """The window's maxima, reset for the next one."""
        out = tuple(getattr(self, f) for f in self.MAXES)
        for f in self.MAXES:
            setattr(self, f, -math.inf)
        return out


class Windows:
    """The sample windows every counter of a producer shares."""

    def __init__(self, window_ms: int = 30_000, samples: int = 2) -> None:
        self.window = max(1, window_ms)
        self.samples = max(1, samples)
        self.members: list[Counters] = []
        #: The current window: when it began (_NEVER: none yet) and when it closes.
        self.start = _NEVER
        self.roll_at = _NEVER
        #: Per member, its values when the current window began.
        self.base: list[tuple[float, ...]] = []
        #: The closed windows kept (the newest ``samples - 1``), oldest first: when each
        #: began, and per member its values then and the window's maxima.
        self.closed: list[tuple[int, list[tuple[tuple[float, ...], tuple[float, ...]]]]] = []

    def add(self, c: Counters) -> None:
        """A counter made after the first window began: zero before it."""
        self.members.append(c)
        zeros = (0,) * len(c.FIELDS)
        self.base.append(zeros)
        none = (-math.inf,) * len(c.MAXES)
        for _, per in self.closed:
            per.append((zeros, none))

    def roll(self, now_ms: int) -> None:
        """Close the current window and begin one at ``now_ms`` (call when ``roll_at`` is
        reached). The first window takes in what was counted before it."""
        if self.start != _NEVER:
            per = [(self.base[i], m.take_maxes()) for i, m in enumerate(self.members)]
            self.closed.append((self.start, per))
            if len(self.closed) >= self.samples:
                del self.closed[0]
            self.base = [m.values() for m in self.members]
        self.start, self.roll_at = now_ms, now_ms + self.window

    def _live(self, now_ms: int) -> tuple[int, int, bool]:
        """The index of the oldest closed window still counting (``len(closed)``: none), when
        the oldest counting window began, and whether any counts."""
        cutoff = now_ms - self.samples * self.window
        for i, (start, _) in enumerate(self.closed):
            if start > cutoff:
                return i, start, True
        if self.start != _NEVER and self.start > cutoff:
            return len(self.closed), self.start, True
        return len(self.closed), now_ms, False

    def increase(self, members: Iterable[int], field: int, now_ms: int) -> tuple[float, int]:
        """How much ``field`` of ``members`` (indices) grew over the counting windows, and
        when the oldest of them began."""
        first, oldest, live = self._live(now_ms)
        if not live:
            return 0.0, now_ms
        total = 0.0
        for m in members:
            base = self.closed[first][1][m][0] if first < len(self.closed) else self.base[m]
            total += self.members[m].values()[field] - base[field]
        return total, oldest

    def largest(self, members: Iterable[int], field: int, now_ms: int) -> float:
        """The largest value of ``MAXES[field]`` of ``members`` over the counting windows."""
        first, _, live = self._live(now_ms)
        out = -math.inf
        if not live:
            return out
        for m in members:
            member = self.members[m]
            out = max(out, getattr(member, member.MAXES[field]))
            for _, per in self.closed[first:]:
                out = max(out, per[m][1][field])
        return out

    def span_s(self, oldest_ms: int, now_ms: int) -> float:
        """Java's ``Rate.windowSize``: since the oldest counting window began, at least
        ``samples - 1`` windows, in seconds."""
        return max(now_ms - oldest_ms, (self.samples - 1) * self.window, 1) / 1000


__all__ = ["NAN", "Counters", "Windows"]
