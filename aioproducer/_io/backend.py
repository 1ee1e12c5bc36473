"""Which async library the producer runs on.

The shell (this package) is written against asyncio's event loop. ``running_loop()`` returns
it, or raises :class:`UnsupportedAsyncLibraryError` naming the library found instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import UnsupportedAsyncLibraryError

#: The async libraries the producer runs on.
SUPPORTED = "asyncio (the default loop, uvloop, anyio's asyncio backend)"


def current_library() -> str:
    """The async library running the current task, as sniffio names it, or "no async library"."""
    try:
        import sniffio
    except ImportError:  # without sniffio, neither trio nor anyio is installed
        return "no async library"
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return "no async library"


def running_loop() -> Any:
    """The running asyncio loop; :class:`UnsupportedAsyncLibraryError` outside asyncio."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    raise UnsupportedAsyncLibraryError(
        f"the producer was started under {current_library()}; it runs on {SUPPORTED}"
    )


__all__ = ["SUPPORTED", "current_library", "running_loop"]
