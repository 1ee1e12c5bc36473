"""Errors of the test harness."""

from __future__ import annotations


class HarnessError(RuntimeError):
    """A broker of the test harness could not be set up, started or reached."""


class MissingToolError(HarnessError):
    """A tool the harness needs (java, mvn, a Python package) is not installed."""

    def __init__(self, tool: str, hint: str) -> None:
        super().__init__(
            f"{tool} is required by the aioproducer test harness but was not found: {hint}"
        )
        self.tool = tool
