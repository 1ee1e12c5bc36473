"""The command line's progress output: a bar on a terminal (rich's when installed, a plain one
otherwise), plain lines off a terminal."""

from __future__ import annotations

import io
import sys

import pytest

from aioproducer.cli._progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_plain_lines() -> None:
    out = io.StringIO()
    bar = Progress(1000, "records", stream=out, interval=0.0)
    assert bar.mode == "lines"
    for i in range(0, 1001, 250):
        bar.update(i)
    bar.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines()[-1].startswith("  1,000/1,000 records, ")
    assert text.rstrip().endswith("records/s")


def test_on_a_terminal_rich_bar() -> None:
    import rich  # noqa: F401  (fails loudly when the extra is missing)

    out = Terminal()
    bar = Progress(500, "records", stream=out)
    assert bar.mode == "bar" and bar._rich is not None
    bar.update(500)
    bar.close()
    assert "500/500" in out.getvalue() and "records/s" in out.getvalue()


def test_on_a_terminal_without_rich_a_plain_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich.progress", None)  # as if not installed
    out = Terminal()
    bar = Progress(100, "records", stream=out)
    assert bar.mode == "bar" and bar._rich is None
    bar.update(50)
    bar.close()
    text = out.getvalue()
    assert text.startswith("\r  [###############...............] 50/100 records")
    assert text.endswith("records/s\n")


def test_none_prints_nothing() -> None:
    out = Terminal()
    bar = Progress(10, stream=out, mode="none")
    bar.update(10)
    bar.close()
    assert out.getvalue() == ""
