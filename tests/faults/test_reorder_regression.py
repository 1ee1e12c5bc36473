"""Failure-paths issue item 2: order under retriable error bursts plus a broker outage, on
librdkafka's mock cluster (3 brokers, 6 partitions, 50 keys, 20,000 records).

Before the fix about one run in four wrote a retried batch behind a newer one: the retry and
the newer batch were in flight together, the retry failed again, and the mock (which does not
check an idempotent producer's sequences without a transactional id) wrote the newer one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from aioproducer import Producer
from aioproducer.testing import MockCluster

from .oracle import History, check

pytestmark = [pytest.mark.asyncio, pytest.mark.mock_cluster]
PRODUCE = 0
BURST = [6, 7, 19, 6, 13, 5, 7, 19, 20, 6]


@pytest.mark.parametrize("run", range(3))
async def test_order_holds_under_error_bursts_and_an_outage(
    mock_cluster: MockCluster, new_topic: Callable[..., str], run: int
) -> None:
    topic = new_topic(mock_cluster, partitions=6, replication_factor=3)
    h = History(topic)
    async with Producer(
        bootstrap_servers=mock_cluster.bootstrap_servers,
        delivery_timeout_ms=30_000,
        request_timeout_ms=3000,
        linger_ms=5,
    ) as p:
        for i in range(20_000):
            await h.send(p, key=b"key-%d" % (i % 50))
            if i in (2000, 12_000):
                mock_cluster.push_request_errors(PRODUCE, BURST)
            if i == 8000:
                mock_cluster.broker_set_down(2)
                asyncio.get_running_loop().call_later(1.5, mock_cluster.broker_set_up, 2)
            if i % 200 == 0:
                await asyncio.sleep(0.01)
        await h.settle(60)
    assert len(h.ok()) == 20_000
    try:
        check(mock_cluster.bootstrap_servers, h, mock=True)
    except AssertionError:
        _dump(mock_cluster.bootstrap_servers, topic)  # the batches around each reorder
        raise


def _dump(bootstrap: str, topic: str) -> None:
    from .oracle import collapse, fetch_log, payload_id

    log = fetch_log(bootstrap, topic)
    for part, batches in log.items():
        bs = collapse(batches)
        prev = -1
        rows = []
        bad = []
        for b in bs:
            first = payload_id(b.records[0].value)
            last = payload_id(b.records[-1].value)
            mark = " <<<" if first < prev else ""
            rows.append(
                f"  p{part} pid={b.producer_id} ep={b.producer_epoch} seq={b.base_sequence} "
                f"n={len(b.records)} ids={first}..{last}{mark}"
            )
            if mark:
                bad.append(len(rows) - 1)
            prev = max(prev, last)
        for i in bad[:3]:
            print("\n".join(rows[max(0, i - 8) : i + 3]))
            print("...")
