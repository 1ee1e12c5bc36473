"""The sender's wake-up (``_io/wakeup.py``), and a turn run outside the sender's task covering
the wake-ups set before it (``send_and_wait`` on an idle producer, ``Sender.turn_now``)."""

from __future__ import annotations

import asyncio

import pytest

from aioproducer._io.wakeup import Wakeup

pytestmark = pytest.mark.asyncio


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_set_wakes_the_sleeping_sender() -> None:
    w = Wakeup()
    sleeping = asyncio.ensure_future(w.wait(60))
    await turns()
    assert not sleeping.done()
    w.set()
    await turns()
    assert sleeping.done()


async def test_a_covered_wake_up_lets_the_sender_sleep_on_until_a_later_set() -> None:
    """Opening the batch set the wake-up; the turn run in the caller's task did the work, so
    the sender sleeps on (its turn would find nothing to do) until something new sets it."""
    w = Wakeup()
    sleeping = asyncio.ensure_future(w.wait(60))
    await turns()
    w.set()  # a new batch
    w.covered(60)  # the turn outside the task sent it; next due in a minute
    await turns()
    assert not sleeping.done()
    w.set()  # a response, say: a real reason
    await turns()
    assert sleeping.done()


async def test_a_covered_turn_due_sooner_shortens_the_sleep() -> None:
    w = Wakeup()
    loop = asyncio.get_running_loop()
    sleeping = asyncio.ensure_future(w.wait(60))
    await turns()
    t0 = loop.time()
    w.covered(0.05)  # the turn outside found a deadline in 50 ms
    await asyncio.wait_for(sleeping, 5)
    assert 0.04 <= loop.time() - t0 < 5


async def test_a_set_before_the_sender_sleeps_is_not_lost() -> None:
    w = Wakeup()
    w.set()
    await asyncio.wait_for(w.wait(60), 1)  # returns at once: the flag was set
    w.set()
    w.covered(60)  # covered after the set: the flag's wake-up has nothing left to do
    sleeping = asyncio.ensure_future(w.wait(60))
    await turns()
    assert not sleeping.done()
    w.set()
    await turns()
    assert sleeping.done()
