"""The README's main job, end to end, on both record buffers (compiled and pure Python)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(("pure", "expected"), [("", "c"), ("1", "python")])
def test_demo_produces_and_verifies_on_both_record_buffers(pure: str, expected: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aioproducer", "demo", "--records", "20000", "--compression", "lz4"],
        env={**os.environ, "AIOPRODUCER_PURE_PYTHON": pure},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"record buffer: {expected})" in proc.stdout
    assert "verified 20000/20000" in proc.stdout
