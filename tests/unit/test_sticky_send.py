"""The sticky partitioner's accounting, as ``Producer.send`` does it (its one implementation,
inline on the hot path): a stint on a partition lasts until its batch is full or
``sticky_batch_size`` value bytes went to it; a record that does not fit the stint's batch goes
to the next partition instead of opening a runt batch."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aioproducer import Producer
from tests.faults.fake_broker import FakeBroker

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBroker]:
    broker = await FakeBroker(partitions=6).start()
    try:
        yield broker
    finally:
        await broker.close()


async def sends(fake: FakeBroker, n: int, size: int, **config: Any) -> list[tuple[int, int]]:
    """Send ``n`` unkeyed records of ``size`` bytes and keep them queued (a minute's linger):
    each record's (partition, batch), and whether the stint ended right after it."""
    p = Producer(
        bootstrap_servers=fake.bootstrap_servers, linger_ms=60_000, max_block_ms=5_000, **config
    )
    await p.start()
    try:
        await p.partitions_for("t")
        out = []
        ends = []
        batches: dict[int, int] = {}
        for _ in range(n):
            h = await p.send("t", b"x" * size)
            out.append((h.batch.tp.partition, batches.setdefault(id(h.batch), len(batches))))
            sticky = p._topic_sends["t"].sticky
            ends.append(sticky.partition < 0)
            # Stint ended exactly when its batch is full or its bytes are reached.
            assert ends[-1] == (
                h.batch.builder.is_full() or sticky.produced >= p._sticky_batch_size
            ), (len(out), sticky.produced, h.batch.builder.is_full())
        return out
    finally:
        await p.close(0)


async def test_a_stint_fills_its_batch_and_opens_no_runt(fake: FakeBroker) -> None:
    got = await sends(fake, 60, 100, batch_size=1024)
    sizes: dict[int, int] = {}
    for _, b in got:
        sizes[b] = sizes.get(b, 0) + 1
    full = [n for b, n in sizes.items() if b != got[-1][1]]
    # Every batch but the current one ended its stint full: ~1 KiB of ~110-byte records.
    assert full and min(full) == max(full) >= 8, sizes
    # A partition's next batch opens only after the one before it is full (no runt).
    for (p1, b1), (p2, b2) in itertools.pairwise(got):
        if p1 == p2 and b1 != b2:
            assert sizes[b1] == max(full), (b1, sizes)


async def test_a_stint_ends_after_sticky_batch_size_value_bytes(fake: FakeBroker) -> None:
    # gzip's estimated ratio makes a batch's room larger than batch_size of raw records once
    # learned; before that, the bytes rule and the full rule both end stints: the assertion
    # inside sends() checks the accounting after every record either way.
    got = await sends(fake, 300, 50, batch_size=1024, compression_type="gzip")
    assert len({p for p, _ in got}) > 1
