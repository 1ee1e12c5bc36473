"""Outside the async libraries the producer runs on, ``start()`` raises a typed error naming
the library it found and the supported ones, before it touches anything."""

from __future__ import annotations

import anyio
import pytest
import trio

from aioproducer import Producer, UnsupportedAsyncLibraryError


def _start_under(run: str) -> BaseException:
    producer = Producer(bootstrap_servers="127.0.0.1:9", max_block_ms=1_000)

    async def main() -> BaseException:
        with pytest.raises(UnsupportedAsyncLibraryError) as info:
            await producer.start()
        return info.value

    if run == "trio":
        return trio.run(main)
    return anyio.run(main, backend="trio")


@pytest.mark.parametrize("run", ["trio", "anyio-trio"])
def test_start_under_trio_raises_a_typed_error_naming_the_backends(run: str) -> None:
    exc = _start_under(run)
    assert isinstance(exc, RuntimeError)
    assert "started under trio" in str(exc) and "asyncio" in str(exc), str(exc)


def test_start_driven_by_no_async_library_raises_the_typed_error() -> None:
    producer = Producer(bootstrap_servers="127.0.0.1:9")
    coro = producer.start()
    with pytest.raises(UnsupportedAsyncLibraryError, match="no async library"):
        coro.send(None)
