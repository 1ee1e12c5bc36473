"""A TCP chaos proxy between a client and one broker, on 127.0.0.1 (RELIABILITY.md §5.7 [P]).

Run it in the test's event loop, point the client (or, with librdkafka's mock cluster,
``broker_set_host_port``) at :attr:`ChaosProxy.port`, and change its behaviour at any time:

* :meth:`delay` — add latency to every chunk, both ways;
* :meth:`blackhole` — stop forwarding but keep sockets open (a half-open peer);
* :meth:`drop` — reset every connection and every new one until :meth:`heal`;
* :meth:`reset_after_request` — forward the next request, then reset before any answer;
* :meth:`truncate_next_response` — forward the first N bytes of the next answer, then close;
* :meth:`throttle` — limit bandwidth per direction.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from ._ports import LOOPBACK


class ChaosProxy:
    def __init__(self, target_host: str, target_port: int, listen_port: int = 0) -> None:
        #: Where accepted connections go; may be changed at any time (new connections follow).
        self.target = (target_host, target_port)
        #: The listening port (``listen_port``, or a free one chosen by :meth:`start`).
        self.port = listen_port
        self._server: asyncio.Server | None = None
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.delay_s = 0.0
        self.bytes_per_s: float | None = None
        self._blackhole = False
        self._dropping = False
        self._reset_after_request = False
        self._truncate: int | None = None
        self.connections_accepted = 0

    async def start(self) -> ChaosProxy:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._reset_all()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> ChaosProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- faults ----------------------------------------------------------------------------------

    def heal(self) -> None:
        self.delay_s = 0.0
        self.bytes_per_s = None
        self._blackhole = self._dropping = self._reset_after_request = False
        self._truncate = None

    def delay(self, ms: float) -> None:
        self.delay_s = ms / 1000

    def throttle(self, bytes_per_s: float | None) -> None:
        self.bytes_per_s = bytes_per_s

    def blackhole(self) -> None:
        self._blackhole = True

    def drop(self) -> None:
        self._dropping = True
        self._reset_all()

    def reset_after_request(self) -> None:
        self._reset_after_request = True

    def truncate_next_response(self, n: int) -> None:
        self._truncate = n

    # -- plumbing --------------------------------------------------------------------------------

    def _reset_all(self) -> None:
        for client, upstream in list(self._conns):
            _rst(client)
            _rst(upstream)
        self._conns.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        if self._dropping:
            _rst(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _rst(writer)
            return
        pair = (writer, up_writer)
        self._conns.add(pair)
        for coro in (
            self._pump(reader, up_writer, pair, upstream=True),
            self._pump(up_reader, writer, pair, upstream=False),
        ):
            task = asyncio.get_running_loop().create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
        upstream: bool,
    ) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                while self._blackhole:  # noqa: ASYNC110 - a test tool polling a flag
                    await asyncio.sleep(0.05)
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                if self.bytes_per_s:
                    await asyncio.sleep(len(data) / self.bytes_per_s)
                if not upstream and self._truncate is not None:
                    n, self._truncate = self._truncate, None
                    writer.write(data[:n])
                    await writer.drain()
                    break
                writer.write(data)
                await writer.drain()
                if upstream and self._reset_after_request:
                    self._reset_after_request = False
                    break
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._conns.discard(pair)
            for w in pair:
                _rst(w)


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed or partitioned peer would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.transport.abort()
