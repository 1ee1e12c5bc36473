"""Progress of a long command, on stderr: a bar with the rate on a terminal (``rich``'s when
the ``cli`` extra is installed, a plain one otherwise), and a plain line every few seconds
when stderr is not a terminal (a log file, CI, a pipe), never a carriage return there.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any


def _fmt(n: float) -> str:
    return f"{n:,.0f}"


class Progress:
    """``update(done)`` as often as you like: it redraws at most 10 times a second (terminal)
    or prints a line every ``interval`` seconds (otherwise). ``close()`` prints the last state.

    ``mode``: "auto" (the above), "bar", "lines" or "none".
    """

    def __init__(
        self,
        total: int | None,
        label: str = "records",
        *,
        stream: IO[str] | None = None,
        mode: str = "auto",
        interval: float = 5.0,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "lines"
        self.mode = mode
        self.interval = interval
        self.started = time.perf_counter()
        self._next = self.started + (interval if mode == "lines" else 0.0)
        self._done = 0
        self._rich: Any = None
        if mode == "bar":
            self._rich = _rich_bar(total, label, self.stream)

    def update(self, done: int) -> None:
        self._done = done
        now = time.perf_counter()
        if now < self._next:
            return
        if self._rich is not None:
            self._rich[0].update(self._rich[1], completed=done)
            self._next = now + 0.1
        elif self.mode == "bar":
            self.stream.write("\r" + self._text(done, now))
            self.stream.flush()
            self._next = now + 0.1
        elif self.mode == "lines":
            self.stream.write(self._text(done, now) + "\n")
            self.stream.flush()
            self._next = now + self.interval

    def close(self) -> None:
        now = time.perf_counter()
        if self._rich is not None:
            self._rich[0].update(self._rich[1], completed=self._done)
            self._rich[0].stop()
        elif self.mode == "bar":
            self.stream.write("\r" + self._text(self._done, now) + "\n")
        elif self.mode == "lines":
            self.stream.write(self._text(self._done, now) + "\n")
        self.stream.flush()

    def _text(self, done: int, now: float) -> str:
        rate = done / max(now - self.started, 1e-9)
        if self.total:
            width = 30
            filled = width * min(done, self.total) // self.total
            bar = f"[{'#' * filled}{'.' * (width - filled)}] " if self.mode == "bar" else ""
            return f"  {bar}{done:,}/{self.total:,} {self.label}, {_fmt(rate)} {self.label}/s"
        return f"  {done:,} {self.label}, {_fmt(rate)} {self.label}/s"


def _rich_bar(total: int | None, label: str, stream: IO[str]) -> Any:
    """rich's progress bar (the ``cli`` extra), or None without rich."""
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:
        return None

    class Rate(TextColumn):
        def render(self, task: Any) -> Any:
            from rich.text import Text

            speed = task.finished_speed or task.speed or 0
            return Text(f"{speed:,.0f} {label}/s")

    bar = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(""),
        TimeElapsedColumn(),
        console=Console(file=stream),
        transient=False,
    )
    bar.start()
    return bar, bar.add_task(label, total=total)


__all__ = ("Progress",)
