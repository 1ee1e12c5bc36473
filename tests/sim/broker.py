"""A simulated broker: it reads the producer's requests off a :class:`~tests.sim.net.Link`
with the project's codecs and answers ApiVersions, Metadata, InitProducerId and Produce by the
rules :mod:`tests.sim.cluster` describes, appending to :mod:`tests.sim.log` partitions."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from aioproducer._protocol.framing import decode_request
from aioproducer._protocol.messages import (
    ApiVersionsResponse,
    InitProducerIdResponse,
    MetadataResponse,
    ProduceResponse,
)
from aioproducer._records.reader import read_batches
from aioproducer.errors import ProtocolError, RebootstrapRequiredError

from .log import MAX_SEQ, BatchMeta, Entry, Partition, PState, in_sequence, payload_of
from .script import Answer, BatchSeen, ProduceSeen

if TYPE_CHECKING:
    from .net import Link
    from .world import World

API_NAMES = {0: "Produce", 3: "Metadata", 18: "ApiVersions", 22: "InitProducerId"}
#: Injected errors after which the leader may have appended (Kafka: 7, 20; -1 either way).
APPENDED_ERRORS = {7, 20}
REBOOTSTRAP_REQUIRED = RebootstrapRequiredError.code


class Broker:
    def __init__(self, world: World, node_id: int) -> None:
        self.world = world
        self.node_id = node_id
        self.host = f"10.0.0.{node_id + 1}"
        self.port = 9092
        self.up = True
        self.down_mode = "refuse"  # or "blackhole" (host unreachable)
        self.listen_from = 0.0  # not accepting connections before this virtual time
        self.incarnation = 0
        self.links: set[Link] = set()
        self.produce_max = 11
        self.syn_waiters: list[Any] = []

    def listening(self) -> bool:
        return self.up and self.world.loop.time() >= self.listen_from

    # -- bytes in ----------------------------------------------------------------------------

    def on_bytes(self, link: Link, data: bytes) -> None:
        link.buf += data
        buf = link.buf
        while len(buf) >= 4:
            (size,) = struct.unpack_from(">i", buf, 0)
            if len(buf) - 4 < size:
                break
            frame = bytes(buf[4 : 4 + size])
            del buf[: 4 + size]
            self.on_frame(link, frame)
            if link.stalled or link.reset_sent or not self.up:
                buf.clear()
                return

    def on_frame(self, link: Link, frame: bytes) -> None:
        w = self.world
        if frame[:4] == b"\x00\x00\x00\x0c":
            # Produce v12 is v11's format (KIP-890: the producer speaks transactions v2); the
            # generated schema stops at 11.
            frame = frame[:2] + b"\x00\x0b" + frame[4:]
        header, request = decode_request(frame)
        api_key, version, cid = header.api_key, header.api_version, header.correlation_id
        flexible = request.is_flexible(version)
        name = API_NAMES.get(api_key, str(api_key))
        faulty = w.in_fault_window()
        p = w.params
        if faulty:
            x = w.frng.random()
            if x < p.p_drop_request:
                w.trace("fault", f"b{self.node_id} {link} request {name} cid={cid} lost on the way")
                link.stall("request lost")
                return
            if x < p.p_drop_request + p.p_reset_before:
                link.reset(f"before {name} cid={cid}")
                return
        if api_key == 18:
            if (
                version >= 5
                and getattr(request, "cluster_id", None) is not None
                and link.transport is not None
                and link.transport._peer in w.cluster.misrouted_at
            ):
                w.cluster.misrouted_refused.append(w.loop.time())
                body = ApiVersionsResponse(error_code=REBOOTSTRAP_REQUIRED).encode(version)
                self._reply(link, cid, body, False, name, "error=129 (scripted)")
                return
            body = self._api_versions(version)
            self._reply(link, cid, body, False, name, "")
            return
        if api_key == 3 and link.transport is not None:
            refused = w.cluster.metadata_refused_at
            if refused and link.transport._peer in refused:
                link.reset(f"Metadata cid={cid} refused (scripted)")
                return
        if (
            api_key == 3
            and version >= 13
            and link.transport is not None
            and link.transport._peer in w.cluster.rebootstrap_required_at
        ):
            w.cluster.rebootstrap_required_sent.append(w.loop.time())
            body = MetadataResponse(error_code=REBOOTSTRAP_REQUIRED).encode(version)
            self._reply(link, cid, body, flexible, name, "error=129 (scripted)")
            return
        if api_key == 3:
            w.cluster.metadata_seen.append(w.loop.time())
            body, note = self._metadata(request, version)
            self._reply(link, cid, body, flexible, name, note)
            return
        coordinator = w.cluster.coordinator
        if coordinator is not None and coordinator.handles(api_key, request):
            coordinator.on_request(self, link, api_key, version, cid, request)
            return
        if api_key == 22:
            body, note = self._init_pid(request, version)
            self._reply(link, cid, body, flexible, name, note)
            return
        if api_key == 0:
            self._produce(link, request, version, cid, flexible)
            return
        w.trace("broker", f"b{self.node_id} unexpected api {api_key}: reset")
        link.reset("unknown api")

    def _reply(
        self,
        link: Link,
        cid: int,
        body: bytes,
        header_tags: bool,
        name: str,
        note: str,
        delay: float = 0.0,
        at: float | None = None,
    ) -> None:
        payload = struct.pack(">i", cid) + (b"\x00" if header_tags else b"") + body
        self.world.trace("frame", f"b{self.node_id}->client {link} {name} cid={cid} {note}")
        link.to_client(struct.pack(">i", len(payload)) + payload, delay, at)

    # -- APIs ----------------------------------------------------------------------------------

    def _api_versions(self, version: int) -> bytes:
        apis = [
            (0, 3, self.produce_max),
            (3, 1, self.world.cluster.metadata_max_version),
            (18, 0, self.world.cluster.api_versions_max_version),
            (22, 0, 4),
        ]
        features = []
        coordinator = self.world.cluster.coordinator
        if coordinator is not None:
            v2 = coordinator.v2
            apis[0] = (0, 3, 12 if v2 else self.produce_max)
            apis += [(10, 0, 4), (24, 0, 3), (25, 0, 3), (26, 0, 5 if v2 else 3), (28, 0, 3)]
            features.append(
                ApiVersionsResponse.FinalizedFeatureKey(
                    name="transaction.version", max_version_level=2 if v2 else 1
                )
            )
        return ApiVersionsResponse(
            error_code=0,
            api_keys=[
                ApiVersionsResponse.ApiVersion(api_key=k, min_version=lo, max_version=hi)
                for k, lo, hi in apis
            ],
            finalized_features=features,
        ).encode(version)

    def _metadata(self, request: Any, version: int) -> tuple[bytes, str]:
        w = self.world
        c = w.cluster
        view = c.snapshot_now()
        stale = ""
        if (
            w.in_fault_window()
            and len(c.history) > 1
            and w.frng.random() < w.params.p_stale_metadata
        ):
            view = c.history[w.frng.randrange(max(0, len(c.history) - 4), len(c.history) - 1)]
            stale = " (stale view)"
        names = list(view["topics"]) if request.topics is None else [t.name for t in request.topics]
        B = MetadataResponse.MetadataResponseBroker
        T = MetadataResponse.MetadataResponseTopic
        P = T.MetadataResponsePartition
        topics = []
        notes = []
        for name in names:
            parts = view["topics"].get(name)
            if parts is None:
                topics.append(T(error_code=3, name=name))
                notes.append(f"{name}:3")
                continue
            plist = []
            for idx, (leader, epoch, replicas, isr) in enumerate(parts):
                plist.append(
                    P(
                        error_code=0 if leader >= 0 else 5,
                        partition_index=idx,
                        leader_id=leader,
                        leader_epoch=epoch,
                        replica_nodes=list(replicas),
                        isr_nodes=list(isr),
                        offline_replicas=[r for r in replicas if r not in view["live"]],
                    )
                )
            topics.append(T(error_code=0, name=name, partitions=plist))
            notes.append(name + ":" + ",".join(f"{pp.leader_id}@{pp.leader_epoch}" for pp in plist))
        brokers = [B(node_id=b, host=h, port=pt) for b, h, pt in c.advertised(view["live"])]
        body = MetadataResponse(
            brokers=brokers, cluster_id="sim", controller_id=0, topics=topics
        ).encode(version)
        return body, " ".join(notes) + stale + " brokers=" + ",".join(
            f"{b.node_id}:{b.port}" for b in brokers
        )

    def _init_pid(self, request: Any, version: int) -> tuple[bytes, str]:
        w = self.world
        c = w.cluster
        index = len(c.init_pid_seen)
        c.init_pid_seen.append(w.loop.time())
        for rule in c.init_pid_rules:
            scripted = rule(index)
            if scripted is not None:
                body = InitProducerIdResponse(error_code=scripted).encode(version)
                return body, f"error={scripted} (scripted)"
        if w.in_fault_window() and w.frng.random() < w.params.p_init_error:
            code = w.frng.choice((15, 7, 51))
            return InitProducerIdResponse(error_code=code).encode(version), f"error={code}"
        pid, epoch = w.cluster.init_producer_id(
            getattr(request, "producer_id", -1), getattr(request, "producer_epoch", -1)
        )
        return (
            InitProducerIdResponse(error_code=0, producer_id=pid, producer_epoch=epoch).encode(
                version
            ),
            f"pid={pid} epoch={epoch}",
        )

    def _produce(self, link: Link, request: Any, version: int, cid: int, flexible: bool) -> None:
        w = self.world
        c = w.cluster
        p = w.params
        seen = self._seen(link, request, version)
        reply = c.scripted(seen)
        # A scripted request draws no seeded fault: it does exactly what the test says.
        faulty = reply is None and w.in_fault_window()
        if reply is not None and reply.fate in ("drop_request", "reset_before"):
            w.trace("fault", f"b{self.node_id} {link} Produce cid={cid}: {reply.fate} (scripted)")
            if reply.fate == "drop_request":
                link.stall("request lost (scripted)")
            else:
                link.reset(f"before Produce cid={cid} (scripted)")
            return
        acks = request.acks
        PR = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
        responses = []
        endpoints: dict[int, Any] = {}
        notes = []
        for topic in request.topic_data:
            parts = []
            for pd in topic.partition_data:
                part = c.partition(topic.name, pd.index)
                answer = reply.partitions.get((topic.name, pd.index)) if reply else None
                if answer is None or not (answer.error or answer.leader is not None):
                    code, base, hint, note = self._produce_partition(
                        part, topic.name, pd, acks, faulty
                    )
                else:
                    code, base, hint, note = self._scripted_partition(part, pd, acks, answer)
                notes.append(f"{topic.name}-{pd.index}:{note}")
                resp = PR(index=pd.index, error_code=code, base_offset=base)
                if hint is not None and version >= 10:
                    resp.current_leader = PR.LeaderIdAndEpoch(
                        leader_id=hint[0], leader_epoch=hint[1]
                    )
                    b = c.brokers[hint[0]]
                    host, port = c.endpoint(b)
                    endpoints[hint[0]] = ProduceResponse.NodeEndpoint(
                        node_id=hint[0], host=host, port=port
                    )
                if (answer is not None and answer.omit) or (faulty and w.frng.random() < p.p_omit):
                    notes.append(f"(omitted {topic.name}-{pd.index} from the response)")
                    continue
                parts.append(resp)
                if answer is not None:
                    parts.extend(
                        PR(index=pd.index, error_code=e, base_offset=-1) for e in answer.extra
                    )
            responses.append(
                ProduceResponse.TopicProduceResponse(name=topic.name, partition_responses=parts)
            )
        summary = f"acks={acks} " + " ".join(notes)
        if acks == 0:
            w.trace(
                "frame",
                f"b{self.node_id} {link} Produce cid={cid} v{version} (no response) {summary}",
            )
            return
        throttle = reply.throttle_ms if reply is not None else 0
        if faulty and w.frng.random() < p.p_throttle:
            throttle = w.frng.randint(10, 500)
        body = ProduceResponse(
            responses=responses,
            throttle_time_ms=throttle,
            node_endpoints=list(endpoints.values()),
        ).encode(version)
        lost = reply.fate if reply is not None else "answer"
        if faulty:
            x = w.frng.random()
            if x < p.p_drop_response:
                lost = "drop_response"
            elif x < p.p_drop_response + p.p_reset_after:
                lost = "reset_after"
        if lost == "drop_response":
            w.trace(
                "fault",
                f"b{self.node_id} {link} Produce cid={cid} applied, response lost: {summary}",
            )
            link.stall("response lost")
            return
        if lost == "reset_after":
            w.trace(
                "fault",
                f"b{self.node_id} {link} Produce cid={cid} applied, then reset: {summary}",
            )
            link.reset(f"after Produce cid={cid}")
            return
        if throttle:
            summary += f" throttle={throttle}ms"
        if reply is None:  # the seeded schedule's throttling delays the answer too
            delay, at = throttle / 1000, None
        else:
            delay, at = reply.delay_s, reply.at_s
        seen.answered_at = w.loop.time() + delay if at is None else at
        self._reply(link, cid, body, flexible, f"Produce v{version}", summary, delay, at)

    def _seen(self, link: Link, request: Any, version: int) -> ProduceSeen:
        """Record the request as the broker read it (``Cluster.produce_seen``)."""
        c = self.world.cluster
        batches: list[BatchSeen] = []
        for topic in request.topic_data:
            for pd in topic.partition_data:
                try:
                    decoded = read_batches(pd.records or b"")
                except ProtocolError:
                    continue
                batches.extend(
                    BatchSeen(
                        topic.name,
                        pd.index,
                        b.producer_id,
                        b.producer_epoch,
                        b.base_sequence,
                        b.compression,
                        tuple(r.value for r in b.records),
                    )
                    for b in decoded
                )
        seen = ProduceSeen(
            len(c.produce_seen),
            self.node_id,
            link.id,
            self.world.loop.time(),
            version,
            request.acks,
            tuple(batches),
        )
        c.produce_seen.append(seen)
        return seen

    def _scripted_partition(
        self, part: Partition | None, pd: Any, acks: int, answer: Answer
    ) -> tuple[int, int, tuple[int, int] | None, str]:
        """(error code, base offset, leader hint, trace note) as ``answer`` scripts them."""
        if part is None:
            return 3, -1, None, "3 (unknown topic/partition)"
        hint = (answer.leader, part.leader_epoch) if answer.leader is not None else None
        if not answer.append:
            return answer.error, -1, hint, f"{answer.error} (scripted, not written)"
        code, base, note = self._append(part, read_batches(pd.records or b"")[0], acks)
        if code != 0:  # refused by the usual rules: that is the answer
            return code, base, None, note
        return answer.error, -1, hint, f"{answer.error} (scripted after writing: {note})"

    def _produce_partition(
        self, part: Partition | None, topic: str, pd: Any, acks: int, faulty: bool
    ) -> tuple[int, int, tuple[int, int] | None, str]:
        """(error code, base offset, KIP-951 leader hint, trace note) for one partition."""
        w = self.world
        if part is None:
            return 3, -1, None, "3 (unknown topic/partition)"
        if part.leader != self.node_id:
            hint = (part.leader, part.leader_epoch) if part.leader >= 0 else None
            return 6, -1, hint, f"6 (leader is {part.leader}@{part.leader_epoch})"
        try:
            batches = read_batches(pd.records or b"")
        except ProtocolError as exc:
            return 2, -1, None, f"2 (corrupt: {exc})"
        if len(batches) != 1:
            return 87, -1, None, f"87 ({len(batches)} batches)"
        batch = batches[0]
        injected: int | None = None
        appends_anyway = False
        if faulty and w.frng.random() < w.params.p_error:
            injected = w.frng.choice(w.params.error_codes)
            appends_anyway = injected in APPENDED_ERRORS or (
                injected == -1 and w.frng.random() < 0.5
            )
            if injected == 46:  # truthful only: the batch must already be in the log
                injected = None if not self._is_duplicate(part, batch) else 46
            elif injected == 45 and self._is_duplicate(part, batch):
                # A broker recognises a resend before it checks the sequence: it never
                # refuses a batch it holds as out of order.
                injected = None
            if injected in (47, 90) and not w.may_fence():
                injected = None
            if injected == 59:
                # Truthful too: a broker answers UNKNOWN_PRODUCER_ID because it has lost the
                # producer's state (KIP-360), so it could not recognise a resend either; and
                # it keeps answering it until the producer starts over at sequence 0.
                w.cluster.expire_producer_state(part)
                part.old_broker_pids.add(batch.producer_id)
        if injected is not None and not appends_anyway:
            hint = None
            if injected in (6, 74) and part.leader >= 0:
                hint = (part.leader, part.leader_epoch)
            return injected, -1, hint, f"{injected} (injected, not written)"
        code, base, note = self._append(part, batch, acks)
        if code != 0 or injected is None:
            return code, base, None, note
        return injected, -1, None, f"{injected} (injected after writing: {note})"

    def _is_duplicate(self, part: Partition, batch: Any) -> bool:
        st = part.pstate.get(batch.producer_id)
        if batch.producer_id < 0 or st is None or st.epoch != batch.producer_epoch:
            return False
        last = (batch.base_sequence + len(batch.records) - 1) % (MAX_SEQ + 1)
        return any(b.first_seq == batch.base_sequence and b.last_seq == last for b in st.batches)

    def _append(self, part: Partition, batch: Any, acks: int) -> tuple[int, int, str]:
        w = self.world
        pid, epoch, first = batch.producer_id, batch.producer_epoch, batch.base_sequence
        n = len(batch.records)
        if pid >= 0:
            last = (first + n - 1) % (MAX_SEQ + 1)
            st = part.pstate.get(pid)
            if st is not None:
                if epoch < st.epoch:
                    return 47, -1, f"47 (epoch {epoch} < {st.epoch})"
                if epoch == st.epoch:
                    for bm in st.batches:
                        if bm.first_seq == first and bm.last_seq == last:
                            return (
                                0,
                                bm.base_offset,
                                f"0 duplicate of @{bm.base_offset} seq {first}",
                            )
                    if not in_sequence(st.last_seq, first):
                        return 45, -1, f"45 (seq {first}, last {st.last_seq}, epoch {epoch})"
                elif first != 0:
                    return 45, -1, f"45 (new epoch {epoch} with seq {first})"
            elif pid in part.old_broker_pids and first != 0:
                # This partition answered UNKNOWN_PRODUCER_ID for the producer (an older
                # broker): it keeps refusing a batch that does not start a sequence, as such a
                # broker does, rather than writing it ahead of the refused one.
                return 59, -1, f"59 (no state for pid {pid}, seq {first})"
        if batch.is_transactional and w.cluster.coordinator is not None:
            code = w.cluster.coordinator.check_batch(part, batch)
            if code:
                return code, -1, f"{code} (transaction)"
        base = len(part.log)
        for i, rec in enumerate(batch.records):
            part.log.append(
                Entry(
                    base + i,
                    pid,
                    epoch,
                    first + i if pid >= 0 else -1,
                    rec.key,
                    rec.value,
                    rec.headers,
                    payload_of(rec.value),
                    txn=batch.is_transactional,
                )
            )
        if pid >= 0:
            bm = BatchMeta(pid, epoch, first, (first + n - 1) % (MAX_SEQ + 1), base, base + n - 1)
            part.batches.append(bm)
            st = part.pstate.get(pid)
            if st is None or st.epoch != epoch:
                st = part.pstate[pid] = PState(epoch)
            st.batches.append(bm)
            part.old_broker_pids.discard(pid)
        if acks == -1:
            part.hw = len(part.log)
        else:
            w.cluster.replicate_later(part)
        seq = f" pid={pid} e={epoch} seq={first}" if pid >= 0 else ""
        return 0, base, f"0 @{base} n={n}{seq}"
