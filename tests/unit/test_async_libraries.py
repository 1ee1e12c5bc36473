"""The producer starts under asyncio and trio (directly or through anyio); driven by anything
else, ``start()`` raises a typed error naming what it found and the supported libraries."""

from __future__ import annotations

import anyio
import pytest
import trio

from aioproducer import KafkaTimeoutError, Producer, UnsupportedAsyncLibraryError


@pytest.mark.parametrize("run", ["trio", "anyio-trio", "anyio-asyncio"])
def test_start_runs_under_each_library_and_names_an_unreachable_broker(run: str) -> None:
    async def main() -> BaseException:
        producer = Producer(bootstrap_servers="127.0.0.1:9", max_block_ms=300)
        with pytest.raises(KafkaTimeoutError) as info:
            await producer.start()
        return info.value

    if run == "trio":
        exc = trio.run(main)
    else:
        exc = anyio.run(main, backend=run.removeprefix("anyio-"))
    assert "127.0.0.1:9" in str(exc), str(exc)


def test_start_driven_by_no_async_library_raises_the_typed_error() -> None:
    producer = Producer(bootstrap_servers="127.0.0.1:9")
    coro = producer.start()
    with pytest.raises(UnsupportedAsyncLibraryError, match="no async library") as info:
        coro.send(None)
    assert isinstance(info.value, RuntimeError)
    assert "asyncio" in str(info.value) and "trio" in str(info.value)
