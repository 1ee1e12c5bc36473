"""What every generator in tools/ does last: write its file, or with ``--check`` say whether the
checked-in one is stale (the freshness tests run the generators that way)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def main(doc: str | None, root: Path, target: Path, render: Callable[[], str]) -> int:
    """Parse ``--check``; write ``render()`` to ``target``, or exit 1 when it differs."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    check = ap.parse_args().check
    text = render()
    current = target.read_text() if target.exists() else ""
    name = target.relative_to(root)
    if check:
        if current != text:
            print(f"stale: {name}; run python tools/{Path(sys.argv[0]).name}")
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {name} ({'changed' if current != text else 'unchanged'})")
    return 0
