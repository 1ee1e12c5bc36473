"""§6 scenarios 24-26 (and 27-like unknown codes) against a fake broker with hostile answers."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aioproducer import BrokerResponseError, Producer

from .fake_broker import FAULTS, FakeBroker

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBroker]:
    broker = await FakeBroker().start()
    yield broker
    await broker.close()


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "unknown_error"])
async def test_s24_s25_s26_hostile_answers_are_survived(fake: FakeBroker, fault: str) -> None:
    """Malformed body (24), frame length abuse (25), correlation violations (26): the
    connection fails cleanly, the request is retried, the record is delivered, memory stays
    bounded, nothing escapes to the event loop."""
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: escaped.append(ctx))
    tracemalloc.start()
    try:
        async with Producer(
            bootstrap_servers=fake.bootstrap_servers,
            linger_ms=0,
            request_timeout_ms=2000,
            delivery_timeout_ms=10_000,
            retry_backoff_ms=20,
        ) as p:
            await p.send_and_wait("t", b"before")
            fake.faults.append(fault)
            md = await p.send_and_wait("t", b"hostile")
            assert md.offset >= 1
            await p.send_and_wait("t", b"after")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        loop.set_exception_handler(None)
    assert peak < 32 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB: a bogus length was trusted"
    assert b"after" in fake.records and fake.records.count(b"before") == 1
    assert not escaped, escaped
    if fault in (
        "garbage",
        "truncated",
        "neg_len",
        "zero_len",
        "tiny_len",
        "huge_len",
        "unsolicited",
    ):
        assert fake.produce_requests >= 3 + 1  # the hostile one was retried


async def test_unknown_error_code_is_typed_and_the_producer_carries_on(fake: FakeBroker) -> None:
    async with Producer(
        bootstrap_servers=fake.bootstrap_servers, linger_ms=0, enable_idempotence=False
    ) as p:
        fake.faults.append("unknown_error")
        with pytest.raises(BrokerResponseError, match="unknown error code 9999"):
            await p.send_and_wait("t", b"x")
        assert (await p.send_and_wait("t", b"y")).offset == 0
