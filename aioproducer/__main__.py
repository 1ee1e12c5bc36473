"""``python -m aioproducer``: the ``aioproducer`` command (see :mod:`aioproducer.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
