"""The independent reader: read a topic back completely with confluent-kafka (librdkafka).

What aioproducer writes is checked by a reader we did not write.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._admin import cluster_metadata, confluent
from ._errors import HarnessError


@dataclass(frozen=True, slots=True)
class ReadRecord:
    """One record as the independent reader saw it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_type: int  # 0 none, 1 create time, 2 log-append time (librdkafka's TIMESTAMP_*)
    timestamp: int


def read_topic(
    bootstrap_servers: str,
    topic: str,
    timeout: float = 60.0,
    isolation_level: str = "read_uncommitted",
    client_config: dict[str, Any] | None = None,
    expected: int | None = None,
) -> list[ReadRecord]:
    """Read every record of every partition of ``topic``, from the start to the high watermark.
    ``client_config``: more librdkafka settings, such as a secured listener's
    (``KafkaSecurity.librdkafka_config``).

    Returns the records ordered by (partition, offset). Raises :class:`HarnessError` when the
    end of every partition is not reached within ``timeout`` seconds.

    ``expected``: how many records the caller knows were acknowledged. A broker may answer a
    produce request before a consumer's watermarks show the records (Tansu does, briefly):
    the topic is read again, by a new consumer, until ``expected`` records are read or
    ``timeout`` passes.

    With ``isolation_level="read_committed"`` only committed transactions' records are read.
    A partition whose log ends with transaction markers (control records, never delivered)
    ends at the consumer's end-of-partition event at or past that watermark; with
    read_committed every transaction must be finished for it to come.
    """
    deadline = time.monotonic() + timeout
    while True:
        out = _read_once(
            bootstrap_servers, topic, deadline, timeout, isolation_level, client_config
        )
        if expected is None or len(out) >= expected or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def _read_once(
    bootstrap_servers: str,
    topic: str,
    deadline: float,
    timeout: float,
    isolation_level: str,
    client_config: dict[str, Any] | None,
) -> list[ReadRecord]:
    ck = confluent()
    md = cluster_metadata(bootstrap_servers, timeout=10.0, topic=topic, client_config=client_config)
    tmd = md.topics.get(topic)
    if tmd is None or tmd.error is not None:
        raise HarnessError(f"topic {topic!r} not readable: {tmd.error if tmd else 'missing'}")
    consumer = ck.Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"aioproducer-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": isolation_level,
            "broker.address.family": "v4",
            "enable.partition.eof": True,
            "log_level": 0,
            **(client_config or {}),
        }
    )
    try:
        ends: dict[int, int] = {}
        starts: dict[int, int] = {}
        for p in tmd.partitions:
            lo, hi = consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10.0)
            starts[p], ends[p] = lo, hi
        pending = {p for p in ends if ends[p] > starts[p]}
        consumer.assign([ck.TopicPartition(topic, p, starts[p]) for p in pending])
        out: list[ReadRecord] = []
        while pending:
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"reading {topic!r}: partitions {sorted(pending)} not read to their end "
                    f"{ {p: ends[p] for p in pending} } in {timeout}s ({len(out)} records read)"
                )
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                err = msg.error()
                if err is not None and err.code() == ck.KafkaError._PARTITION_EOF:
                    # The end only once it is past the high watermark read at the start: an
                    # early EOF (a fetch that came back short) is not the end. Its offset is
                    # where the consumer stands, past any trailing transaction markers.
                    if msg.offset() >= ends[msg.partition()]:
                        pending.discard(msg.partition())
                    continue
                if err is not None:
                    raise HarnessError(f"reading {topic!r}: {err}")
                p, off = msg.partition(), msg.offset()
                ts_type, ts = msg.timestamp()
                out.append(
                    ReadRecord(
                        topic,
                        p,
                        off,
                        msg.key(),
                        msg.value(),
                        tuple((k, v) for k, v in (msg.headers() or [])),
                        ts_type,
                        ts,
                    )
                )
                if off + 1 >= ends[p]:
                    pending.discard(p)
        out.sort(key=lambda r: (r.partition, r.offset))
        return out
    finally:
        consumer.close()


def read_topic_kcat(
    bootstrap_servers: str,
    topic: str,
    timeout: float = 60.0,
    config: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[ReadRecord]:
    """Read ``topic`` to its end with kcat (Debian package ``kcat``): a second reader of record.

    Keys and values are compared byte for byte; headers are not returned (kcat prints them as
    text), so ``headers`` is empty in the result. ``config``: more librdkafka settings (``-X``),
    e.g. for SASL/GSSAPI, which confluent-kafka's wheels lack; ``env``: variables added to
    kcat's environment (``KRB5_CONFIG``).
    """
    import os
    import shutil
    import subprocess

    from ._errors import MissingToolError

    kcat = shutil.which("kcat")
    if kcat is None:
        raise MissingToolError("kcat", "install the Debian package kcat")
    # Per record: "partition,offset,timestamp,keylen,valuelen:" then the raw key and value.
    fmt = "%p,%o,%T,%K,%S:%k%s"
    proc = subprocess.run(
        [
            kcat,
            "-C",
            "-b",
            bootstrap_servers,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-X",
            "broker.address.family=v4",
            *(a for k, v in (config or {}).items() for a in ("-X", f"{k}={v}")),
            "-f",
            fmt,
        ],
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise HarnessError(f"kcat failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    out: list[ReadRecord] = []
    data, pos = proc.stdout, 0
    while pos < len(data):
        colon = data.index(b":", pos)
        p, off, ts, klen, vlen = (int(x) for x in data[pos:colon].split(b","))
        pos = colon + 1
        key = None if klen < 0 else data[pos : pos + klen]
        pos += max(klen, 0)
        value = None if vlen < 0 else data[pos : pos + vlen]
        pos += max(vlen, 0)
        out.append(ReadRecord(topic, p, off, key, value, (), 1, ts))
    out.sort(key=lambda r: (r.partition, r.offset))
    return out
