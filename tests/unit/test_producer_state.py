"""``Producer.state``, what a health check reports: new, running, closing, closed, failed."""

from __future__ import annotations

import asyncio

import pytest

from aioproducer import Producer
from tests.faults.fake_broker import FakeBroker
from tests.helpers import wait_until


def state(p: Producer) -> str:
    return p.state  # read afresh (mypy would narrow the property between two reads)


@pytest.mark.asyncio
async def test_state_through_a_producer_life() -> None:
    fake = await FakeBroker().start()
    try:
        p = Producer(bootstrap_servers=fake.bootstrap_servers, linger_ms=60_000)
        assert state(p) == "new"
        await p.start()
        assert state(p) == "running"
        closing = asyncio.ensure_future(p.close())
        await wait_until(lambda: state(p) != "running", "close() to begin", interval=0)
        assert state(p) in ("closing", "closed")
        await closing
        assert state(p) == "closed"
    finally:
        await fake.close()


@pytest.mark.asyncio
async def test_state_is_failed_once_the_sender_task_is_gone() -> None:
    fake = await FakeBroker().start()
    try:
        p = Producer(bootstrap_servers=fake.bootstrap_servers)
        await p.start()
        assert p._task is not None
        p._task.cancel()  # someone else cancels the producer's internal task
        await wait_until(lambda: state(p) == "failed", "the state to say so", interval=0)
        await p.close()
        assert state(p) == "closed"
    finally:
        await fake.close()


def test_a_producer_closed_before_start_is_closed() -> None:
    p = Producer(bootstrap_servers="127.0.0.1:9")
    asyncio.run(p.close())
    assert state(p) == "closed"
