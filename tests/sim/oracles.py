"""The oracles of RELIABILITY.md §6.0, checked against the simulated logs after every run.

* O1 every acknowledged record is in its partition's log at the reported offset (anywhere in
  the partition for offset -1, a DUPLICATE ack). Exempt: acks=0 (no promise at all), and a
  record the cluster lost with acks=1 when a leader without its replicas took over (Kafka
  allows that loss; the cluster lists those records in ``Partition.truncated``).
* O2 per partition, acknowledged records are in the log in send() order — for idempotent
  producers and for ``max_in_flight_requests_per_connection=1`` (acks != 0); with neither,
  Kafka promises no order under retries.
* O3 idempotent producers: each payload at most once in the logs. Exempt: a second copy
  written after the broker forgot the producer id's state (producer-state expiry between the
  two copies: Kafka then accepts any sequence), and a second copy in a later epoch when the
  broker, without the state, had accepted a sequence gap before the first (the producer must
  bump its epoch and cannot know which later batches were written).
* O4 each future resolves exactly once, no later than delivery_timeout + request_timeout
  (+10 % + 0.2 s) after send() returned; none is pending when close() returns; close(), flush()
  and send_and_wait() return within their bounds (checked during the run).
* O5 a failure carries ``persisted_status``; a record reported NOT_PERSISTED — or whose send()
  raised or was cancelled — is in no log.
* O6 after close: no task left, no open link, memory pool whole, no error handed to the
  loop's exception handler (unretrieved task exceptions, ...), no "sender crashed" log.
* O7 liveness, checked during the run: start() succeeds, no deadlock or busy loop, a record
  sent after the faults healed is delivered in bounded time (fenced producers exempt).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from aioproducer.errors import KafkaError, PersistedStatus

from .log import in_sequence

if TYPE_CHECKING:
    from .world import World


def check(w: World) -> None:
    p = w.params
    parts = w.cluster.partitions
    where: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for (topic, idx), part in parts.items():
        for e in part.log:
            where[e.payload].append((topic, idx, e.offset))
    truncated = {e.payload for part in parts.values() for e in part.truncated}
    acks0 = p.acks == 0

    # O1
    if not acks0:
        for r in w.recs:
            if not r.ok or (r.kind == "cancel" and r.handle is None):
                continue
            md = r.resolutions[0][1]
            if md is None:
                continue
            if r.payload in truncated:
                continue
            log_part = parts.get((md.topic, md.partition))
            if log_part is None:
                w.fail("O1", f"{r.payload} acked for unknown partition {md.topic}-{md.partition}")
                continue
            if md.offset >= 0:
                at = log_part.log[md.offset] if md.offset < len(log_part.log) else None
                if at is None or at.payload != r.payload:
                    found = where.get(r.payload)
                    w.fail(
                        "O1",
                        f"{r.payload} acked at {md.topic}-{md.partition}@{md.offset} but the log "
                        f"has {at.payload if at else 'nothing'} there (payload found at {found})",
                    )
            elif not any(
                t == md.topic and i == md.partition for t, i, _ in where.get(r.payload, [])
            ):
                w.fail("O1", f"{r.payload} acked (offset -1) but not in {md.topic}-{md.partition}")

    # O2
    if not acks0 and (p.idempotent or p.max_in_flight == 1):
        by_tp: dict[tuple[str, int], list[tuple[int, int, str]]] = defaultdict(list)
        for r in w.recs:
            if not r.ok or r.payload in truncated:
                continue
            md = r.resolutions[0][1]
            if md is None:
                continue
            offs = [
                o for t, i, o in where.get(r.payload, []) if t == md.topic and i == md.partition
            ]
            off = md.offset
            if off < 0 or len(offs) > 1:
                # Offset unknown (DUPLICATE_SEQUENCE_NUMBER), or a second copy written after
                # the broker lost the producer's state (exempt from O3): the order is the
                # first copy's.
                if not offs:
                    continue
                off = min(offs)
            by_tp[(md.topic, md.partition)].append((r.index, off, r.payload))
        for (topic, idx), items in by_tp.items():
            items.sort()
            part = parts[(topic, idx)]
            for a, b in itertools.pairwise(items):
                if b[1] <= a[1]:
                    if _written_without_state(part, b[1]):
                        # Written when the broker had just lost the producer's state, and so
                        # accepted any sequence: no client keeps order across that (KIP-360).
                        continue
                    w.fail(
                        "O2",
                        f"{topic}-{idx}: {b[2]} (sent after {a[2]}) is at offset {b[1]}, "
                        f"before/at {a[2]} at {a[1]}",
                    )
                    break

    # O3
    if p.idempotent:
        for payload, locs in where.items():
            if len(locs) < 2 or payload == "?":
                continue
            ok = False
            if len({(t, i) for t, i, _ in locs}) == 1:
                part = parts[(locs[0][0], locs[0][1])]
                first, last = locs[0][2], locs[-1][2]
                ok = any(first < m <= last for _, m in part.expiries) or (
                    part.log[last].epoch > part.log[first].epoch
                    and _gap_accepted_without_state(part, part.log[first].pid, first)
                )
            if not ok:
                w.fail("O3", f"{payload} is {len(locs)} times in the log: {locs}")

    if w.aborted:
        return
    # O4
    for r in w.recs:
        if r.handle is None:
            continue
        n = len(r.resolutions)
        if n == 0:
            if w.close_returned:
                w.fail("O4", f"{r.payload} ({r.kind}) was never resolved")
            continue
        if n > 1:
            w.fail("O4", f"{r.payload} resolved {n} times")
        assert r.sent_at is not None
        took = r.resolutions[0][0] - r.sent_at
        bound = w.record_bound_s()
        if took > bound:
            w.fail(
                "O4",
                f"{r.payload} resolved {took:.2f}s after send() returned (bound {bound:.2f}s): "
                f"{r.resolutions[0][2]!r}",
            )
    for r in w.unresolved_at_close:
        w.fail("O4", f"{r.payload} still pending when close() returned")

    # O5
    for r in w.recs:
        if r.raised is not None or r.cancelled:
            if r.payload in where:
                how = "was cancelled" if r.cancelled else f"raised {r.raised!r}"
                w.fail(
                    "O5", f"send() of {r.payload} {how}, yet it is in the log at {where[r.payload]}"
                )
            continue
        err = r.error
        if err is None or not r.resolutions:
            continue
        status = getattr(err, "persisted_status", None)
        if not isinstance(err, KafkaError) or status is None:
            w.fail("O5", f"{r.payload} failed without persisted_status: {err!r}")
            continue
        if status is PersistedStatus.NOT_PERSISTED and (
            r.payload in where or r.payload in truncated
        ):
            w.fail(
                "O5",
                f"{r.payload} reported NOT_PERSISTED ({err!r}) but is in the log at "
                f"{where.get(r.payload, 'a truncated tail')}",
            )

    # O6
    if w.close_returned:
        for t in w.leftover_tasks:
            w.fail("O6", f"task left after close(): {t}")
        for lk in w.leaked_links:
            w.fail("O6", f"connection left open after close(): {lk}")
        if w.pool_state is not None and w.pool_state[0] != w.pool_state[1]:
            w.fail(
                "O6", f"memory pool not whole after close(): {w.pool_state[0]}/{w.pool_state[1]}"
            )
    for ctx in w.loop.errors:
        w.fail("O6", f"loop exception handler: {ctx.get('message')} {ctx.get('exception')!r}")
    for msg in w.error_logs:
        if "crash" in msg:
            w.fail("O6", f"error log: {msg}")


def _gap_accepted_without_state(part: Any, pid: int, before: int) -> bool:
    """Whether, at or before offset ``before``, the broker (having lost ``pid``'s state)
    accepted a batch of ``pid`` whose sequence does not follow the producer's last write in
    the same epoch: a gap the producer can never fill, so it must bump its epoch and send
    again what it cannot know was written (KIP-360; seed 878 of the conn branch)."""
    for expired, m in part.expiries:
        if expired != pid or m > before:
            continue
        prior = [e for e in part.log[:m] if e.pid == pid]
        after = next((e for e in part.log[m : before + 1] if e.pid == pid), None)
        if prior and after is not None:
            last = prior[-1]
            if after.epoch == last.epoch and not in_sequence(last.seq, after.seq):
                return True
    return False


def _written_without_state(part: Any, offset: int) -> bool:
    """Whether the record at ``offset`` was written while the broker held no state for its
    producer: after a producer-state expiry, before any other write of that producer."""
    pid = part.log[offset].pid
    for _, m in part.expiries:
        if m <= offset and not any(e.pid == pid for e in part.log[m:offset]):
            return True
    return False
