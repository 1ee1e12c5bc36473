"""Produce requests: the drained batches of one broker stamped (producer id, epoch, sequence),
sealed (compressed, big batches in a worker thread with the order per connection kept) and
written as one request, whose answer :class:`~aioproducer._io.responses.ProduceResponses`
reads. A mixin of :class:`~aioproducer._io.sender.Sender`, which owns the state named below.
"""

from __future__ import annotations

import logging
from typing import Any

from .._core.producer_batch import ProducerBatch
from .._protocol.messages import ProduceRequest
from .._protocol.produce import decode_produce_acks, decode_produce_v12, encode_produce_request
from ..errors import KafkaConnectionError, KafkaError
from .compression import CompressionOffload, needs_offload
from .connection import BrokerConnection
from .connections import ConnectionPool
from .responses import ProduceResponses

log = logging.getLogger("aioproducer.sender")
#: Produce v3 is the first version that carries RecordBatch v2, the only format we write.
_PRODUCE_MIN_VERSION = 3


class ProduceRequests(ProduceResponses):
    # The sender's state this part reads (besides what ProduceResponses names).
    acks: int
    offload: CompressionOffload
    pool: ConnectionPool
    _debug: bool

    def _send_produce(self, conn: BrokerConnection, batches: list[ProducerBatch], now: int) -> None:
        """Stamp, seal (compress) and write one produce request.

        Compressing a big batch would stall the event loop for milliseconds, so batches of
        ``_OFFLOAD_BYTES`` or more are compressed in a worker thread (zstandard, lz4 and zlib
        release the GIL). Requests to one connection keep their order: while any of them is
        being compressed, later ones queue behind it (sequence numbers are already assigned).
        """
        idem = self.idem
        for b in batches:
            if idem is not None:
                if b.base_sequence < 0:
                    b.base_sequence = idem.assign(b.tp, -1, b.record_count, conn.node_id)
                    b.producer_id, b.producer_epoch = idem.producer_id, idem.epoch
                else:  # a retry keeps the producer epoch and sequence it was written with
                    idem.assign(b.tp, b.base_sequence, b.record_count, conn.node_id)
        node = conn.node_id
        if not self.offload.queued(node) and not needs_offload(batches):
            for b in batches:
                b.builder.seal()
                self.acc.observe_ratio(b)
            self._write_produce(conn, batches, now)
            return
        self.offload.submit(node, batches)
        self.in_flight.add(batches)  # out of the accumulator, not yet written

    def _flush_pending(self, node: int) -> None:
        """Write the requests for ``node`` whose compression ended, in order."""
        for batches, error in self.offload.pop_done(node):
            self.in_flight.remove_all(batches)
            if self.idem is not None:
                # Failed while compressing (expired, or a fatal error): no longer in flight,
                # and never written — its buffers are already released.
                for b in batches:
                    if b.final:
                        self.idem.returned(b.tp)
            batches = [b for b in batches if not b.final]
            if not batches:
                continue
            now = self.now_ms()
            conn = self.pool.open_connection(node)
            if error is None and conn is None:
                error = KafkaConnectionError(f"connection to broker {node} closed")
            if error is not None:
                for b in batches:
                    if self.idem is not None:
                        self.idem.returned(b.tp)
                    self._fail_or_retry(b, error, now, written=False)
                continue
            assert conn is not None
            for b in batches:
                self.acc.observe_ratio(b)
            self._write_produce(conn, batches, now)
        self.wakeup.set()

    def _write_produce(
        self, conn: BrokerConnection, batches: list[ProducerBatch], now: int
    ) -> None:
        by_topic: dict[str, list[tuple[int, tuple[bytes, Any]]]] = {}
        idem = self.idem
        for b in batches:
            parts = b.builder.build_parts(b.producer_id, b.producer_epoch, b.base_sequence)
            tp = b.tp
            entry = by_topic.get(tp.topic)
            if entry is None:
                by_topic[tp.topic] = [(tp.partition, parts)]
            else:
                entry.append((tp.partition, parts))
        acks, timeout_ms = self.acks, self.config.request_timeout_ms
        txn_id, decode = self.config.transactional_id, decode_produce_acks
        try:
            version = conn.version_for(ProduceRequest.API_KEY, _PRODUCE_MIN_VERSION)
            if (
                self.txn is not None
                and self.txn.v2
                and conn.versions[ProduceRequest.API_KEY][1] >= 12
            ):
                version, decode = 12, decode_produce_v12  # KIP-890: partitions join implicitly
            node = conn.node_id
            reply = conn.send_encoded(
                ProduceRequest.API_KEY,
                version,
                lambda cid, client_id: encode_produce_request(
                    version, cid, client_id, txn_id, acks, timeout_ms, list(by_topic.items())
                ),
                expect_response=acks != 0,
                decode=decode,
                on_response=lambda resp, exc: self._on_produce_response(
                    resp, exc, batches, node, now
                ),
            )
        except KafkaError as exc:
            for b in batches:
                if idem is not None:
                    idem.returned(b.tp)
                self._fail_or_retry(b, exc, now, written=False)
            return
        if reply is None:  # acks=0: done once written
            self.metrics.request_sent(batches, now)
            for b in batches:
                self._complete(b, -1, -1, None)
            return
        self.metrics.request_sent(batches, now)
        if self._debug:
            log.debug(
                "produce request to broker %d: %d batch(es), %d record(s)",
                conn.node_id,
                len(batches),
                sum(b.record_count for b in batches),
            )
        self.in_flight.add(batches)
