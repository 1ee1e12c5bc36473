"""The shell: broker connections, the sender task, the clock; on asyncio, and on trio through
``backend.py`` and ``anyio_loop.py``."""
