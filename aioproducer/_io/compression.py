"""The compression offload: big batches are compressed in a worker thread.

Compressing a batch of a megabyte takes milliseconds, which would stall the event loop (and
every other coroutine of the service) if done inline; zstandard, lz4 and zlib release the GIL,
so a worker thread compresses while the loop goes on. Requests to one connection keep their
order: while any of them is being compressed, later ones queue behind it (their sequence
numbers are already assigned).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._core.producer_batch import ProducerBatch
from ..errors import KafkaConnectionError, KafkaError
from .backend import running_loop

#: Compressed batches at least this big (uncompressed) are compressed off the event loop.
OFFLOAD_BYTES = 256 * 1024


def needs_offload(batches: list[ProducerBatch]) -> bool:
    return any(b.builder.codec.id and b.builder.uncompressed_size >= OFFLOAD_BYTES for b in batches)


def _seal_all(builders: list[Any]) -> None:
    for b in builders:
        b.seal()


class CompressionOffload:
    def __init__(self, on_done: Callable[[int], None]) -> None:
        #: Called on the loop with the node whose head request may now be written.
        self.on_done = on_done
        self._pool: ThreadPoolExecutor | None = None
        #: Per node: produce requests waiting for their batches to be compressed, in order.
        self.pending: dict[
            int, collections.deque[tuple[list[ProducerBatch], asyncio.Future[None]]]
        ] = {}

    def queued(self, node: int) -> int:
        """Requests for ``node`` still waiting for compression (or behind one that is)."""
        queue = self.pending.get(node)
        return len(queue) if queue else 0

    def submit(self, node: int, batches: list[ProducerBatch]) -> None:
        """Seal (compress) ``batches`` in the worker thread; a request for ``node``."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="aioproducer-compress")
        fut = running_loop().run_in_executor(self._pool, _seal_all, [b.builder for b in batches])
        queue = self.pending.get(node)
        if queue is None:
            queue = self.pending[node] = collections.deque()
        queue.append((batches, fut))
        fut.add_done_callback(lambda _: self.on_done(node))

    def pop_done(self, node: int) -> list[tuple[list[ProducerBatch], KafkaError | None]]:
        """The requests for ``node`` whose compression ended, in order, up to the first that
        is still compressing; each with the error that ended it (None: compressed)."""
        queue = self.pending.get(node)
        out: list[tuple[list[ProducerBatch], KafkaError | None]] = []
        while queue and queue[0][1].done():
            batches, fut = queue.popleft()
            error: KafkaError | None = None
            if fut.cancelled():
                error = KafkaConnectionError("compressing a batch was cancelled")
            elif fut.exception() is not None:
                error = KafkaError(f"compressing a batch failed: {fut.exception()!r}")
            out.append((batches, error))
        if not queue:
            self.pending.pop(node, None)
        return out

    def compressing(self) -> set[ProducerBatch]:
        """Every batch still waiting for (or in) compression: never written."""
        return {b for q in self.pending.values() for bs, _ in q for b in bs}

    def close(self) -> None:
        self.pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False)


__all__ = ["OFFLOAD_BYTES", "CompressionOffload", "needs_offload"]
