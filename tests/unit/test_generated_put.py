"""``aioproducer/_put.py`` (``Producer._put``, ``send_many``'s per-record step) is generated
from ``Producer.send`` by tools/gen_put.py; it must be current, or send_many would place
records differently from send()."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_fast_path_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_put.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
