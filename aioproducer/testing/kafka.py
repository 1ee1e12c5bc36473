"""Apache Kafka in KRaft mode from Maven Central jars: one node or a small cluster.

The jars of ``org.apache.kafka:kafka_2.13`` and ``kafka-tools`` are resolved once with Maven
into a per-user cache (``$AIOPRODUCER_CACHE_DIR``, else ``$XDG_CACHE_HOME/aioproducer``, else
``~/.cache/aioproducer``) and run with the machine's Java 17. Every node is a combined
broker+controller on free loopback ports; each can be stopped, SIGKILLed and restarted on the
same ports and data directory.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import _admin
from ._broker import Broker
from ._errors import HarnessError, MissingToolError
from ._ports import LOOPBACK, free_ports, wait_for_port
from ._procs import ManagedProcess
from .security import LISTENERS, KafkaSecurity

#: The Kafka version the harness runs: the newest 4.x that resolves from Maven Central.
#: Override with the environment variable ``AIOPRODUCER_KAFKA_VERSION``.
KAFKA_VERSION = "4.4.0"
#: A 3.9.x release for compatibility runs (``AIOPRODUCER_KAFKA_VERSION=3.9.2``).
KAFKA_COMPAT_VERSION = "3.9.2"
# slf4j binding so the broker's log reaches its log file (the jars bring slf4j-api only).
_SLF4J_SIMPLE = ("org.slf4j", "slf4j-simple", "1.7.36")


def default_version() -> str:
    return os.environ.get("AIOPRODUCER_KAFKA_VERSION", KAFKA_VERSION)


def cache_dir() -> Path:
    env = os.environ.get("AIOPRODUCER_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "aioproducer"


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise MissingToolError(
            "java", "install a Java 17 runtime (Debian: openjdk-17-jre-headless)"
        )
    return found


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>aioproducer.harness</groupId><artifactId>kafka-jars</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>{sg}</groupId><artifactId>{sa}</artifactId><version>{sv}</version></dependency>
  </dependencies>
</project>
"""


def ensure_kafka_jars(version: str | None = None) -> Path:
    """Resolve the Kafka jars for ``version`` into the cache (once) and return their directory."""
    version = version or default_version()
    root = cache_dir() / f"kafka-{version}"
    libs = root / "libs"
    stamp = root / ".complete"
    if stamp.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingToolError(
            "mvn", "install Apache Maven (Debian: maven) to fetch the Kafka jars"
        )
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be resolving the same jars
        if stamp.exists():
            return libs
        sg, sa, sv = _SLF4J_SIMPLE
        (root / "pom.xml").write_text(_POM.format(version=version, sg=sg, sa=sa, sv=sv))
        if libs.exists():
            shutil.rmtree(libs)
        proc = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={libs}",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if proc.returncode != 0:
            raise HarnessError(
                f"mvn could not resolve Kafka {version}:\n"
                f"{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
            )
        stamp.write_text(version)
    return libs


def _cluster_id() -> str:
    # Like Kafka's Uuid.randomUuid(): never one starting with "-", which the storage tool's
    # argument parser takes for an option (formatting then failed about once in 64 starts).
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class KafkaNode:
    """One combined broker+controller process of a :class:`KafkaCluster`."""

    def __init__(
        self,
        cluster: KafkaCluster,
        node_id: int,
        port: int,
        controller_port: int,
        secure_ports: dict[str, int] | None = None,
    ) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.port = port
        self.controller_port = controller_port
        #: The secured listeners' ports (``KafkaCluster(security=...)``), by listener name.
        self.secure_ports = dict(secure_ports or {})
        self.dir = cluster.work_dir / f"node-{node_id}"
        self.data_dir = self.dir / "data"
        self.config_path = self.dir / "server.properties"
        self.log_path = self.dir / "server.log"
        self.process = ManagedProcess(
            f"kafka-{node_id}",
            self._java_argv("kafka.Kafka", str(self.config_path)),
            self.log_path,
        )

    @property
    def bootstrap_server(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process.running

    def _java_argv(self, main: str, *args: str) -> list[str]:
        c = self.cluster
        return [
            java_executable(),
            f"-Xmx{c.heap_mb}m",
            f"-Xms{min(c.heap_mb, 256)}m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            *(c.security.jvm_options() if c.security is not None else ()),
            "-cp",
            os.pathsep.join([f"{c.libs}/*", *map(str, c.classpath)]),
            main,
            *args,
        ]

    def write_config(self) -> None:
        c = self.cluster
        n = len(c.nodes)
        rf = min(3, n)
        advertised = ",".join(
            f"{name}://{LOOPBACK}:{port}"
            for name, port in {"PLAINTEXT": self.port, **self.secure_ports}.items()
        )
        protocols = "".join(f",{name}:{LISTENERS[name]}" for name in self.secure_ports)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": c.voters,
            "listeners": f"{advertised},CONTROLLER://{LOOPBACK}:{self.controller_port}",
            "advertised.listeners": advertised,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
            + protocols,
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "auto.create.topics.enable": "true" if c.auto_create_topics else "false",
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(max(1, rf - 1)),
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            # Fast failure detection so kill/restart tests stay short.
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1000",
            "controller.quorum.election.timeout.ms": "1000",
            "controller.quorum.fetch.timeout.ms": "2000",
            "replica.lag.time.max.ms": "10000",
            "log.flush.interval.messages": str(2**62),
            # Test brokers keep every record. Tests write fixed, years-old timestamps; with the
            # default 7-day retention a segment of them is deleted once it rolls (a time roll
            # at the next append, since its first timestamp is older than log.roll.ms) and the
            # retention task runs (30 s after start): a reader then saw a log start offset of 2
            # after a restart, in slow full-suite runs only.
            "log.retention.ms": "-1",
            **(c.security.broker_config() if c.security is not None else {}),
            **({"broker.rack": c.racks[self.node_id - 1]} if c.racks else {}),
            **c.extra_config,
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def format_command(self) -> list[str]:
        return self._java_argv(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster.cluster_id,
            "-c",
            str(self.config_path),
            "--ignore-formatted",
            *(self.cluster.security.format_arguments() if self.cluster.security else ()),
            *(a for k, v in self.cluster.features.items() for a in ("--feature", f"{k}={v}")),
        )

    def start(self) -> None:
        """Start (or restart) this node on its ports and data directory; returns at once."""
        self.process.start()

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM, then SIGKILL after a grace period)."""
        self.process.stop()

    def kill(self) -> None:
        """SIGKILL the node: no clean shutdown, no flush."""
        self.process.kill()

    def wait_listening(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not self.process.running:
                raise HarnessError(
                    f"Kafka node {self.node_id} exited with {self.process.returncode}:\n"
                    f"{self.process.log_tail(6000)}"
                )
            if wait_for_port(self.port):
                return
            time.sleep(0.1)
        raise HarnessError(f"Kafka node {self.node_id} did not listen on {self.port} in time")

    def log_tail(self, max_bytes: int = 20_000) -> str:
        return self.process.log_tail(max_bytes)


class KafkaCluster(Broker):
    """Apache Kafka (KRaft) with ``size`` combined broker+controller nodes on 127.0.0.1.

    Use as a context manager, or call :meth:`start` and :meth:`close`. With ``size=3``, topics
    of replication factor 3 are possible and any one node may be killed and restarted while the
    quorum of the other two keeps the cluster running.
    """

    def __init__(
        self,
        size: int = 1,
        version: str | None = None,
        work_dir: Path | None = None,
        heap_mb: int | None = None,
        auto_create_topics: bool = False,
        extra_config: dict[str, str] | None = None,
        security: KafkaSecurity | None = None,
        features: dict[str, int] | None = None,
        classpath: Sequence[str | Path] = (),
        racks: Sequence[str] | None = None,
    ) -> None:
        """``security``: also open TLS and SASL listeners (see :class:`KafkaSecurity`);
        ``classpath``: more entries for the brokers' JVMs (plugins, e.g. ``telemetry_sink``);
        ``racks``: node ``i``'s ``broker.rack`` is ``racks[i - 1]`` (one per node)."""
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if racks is not None and len(racks) != size:
            raise ValueError(f"racks must name one rack per node ({size}), got {list(racks)}")
        self.racks = list(racks or ())
        self.size = size
        self.version = version or default_version()
        self._own_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix=f"aioproducer-kafka{size}-"))
        self.heap_mb = heap_mb or (768 if size == 1 else 512)
        self.auto_create_topics = auto_create_topics
        self.extra_config = dict(extra_config or {})
        self.security = security
        #: Feature levels set when the storage is formatted (``kafka-storage format
        #: --feature``), e.g. ``{"transaction.version": 1}`` for a cluster without KIP-890.
        self.features = dict(features or {})
        self.classpath = list(classpath)
        self.cluster_id = _cluster_id()
        self.libs = Path()
        self.nodes: list[KafkaNode] = []
        self.startup_seconds: float | None = None

    @property
    def voters(self) -> str:
        return ",".join(f"{n.node_id}@{LOOPBACK}:{n.controller_port}" for n in self.nodes)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(n.bootstrap_server for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(f"no Kafka node with id {node_id}")

    def start(self, timeout: float = 120.0) -> KafkaCluster:
        self.libs = ensure_kafka_jars(self.version)
        t0 = time.monotonic()
        names = self.security.listener_names if self.security is not None else []
        per_node = 2 + len(names)
        ports = free_ports(per_node * self.size)
        self.nodes = []
        for i in range(self.size):
            mine = ports[per_node * i : per_node * (i + 1)]
            secure = dict(zip(names, mine[2:], strict=True))
            self.nodes.append(KafkaNode(self, i + 1, mine[0], mine[1], secure))
        if self.security is not None:
            self.security.ports = self.nodes[0].secure_ports
            self.security.write_certificates(self.work_dir / "tls")
        for n in self.nodes:
            n.write_config()
        # Format all storage directories in parallel: each is a short JVM run.
        formats = [
            subprocess.Popen(n.format_command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for n in self.nodes
        ]
        for n, p in zip(self.nodes, formats, strict=True):
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0:
                raise HarnessError(f"formatting node {n.node_id} failed:\n{out.decode()[-4000:]}")
        for n in self.nodes:
            n.start()
        self.wait_ready(deadline=time.monotonic() + timeout)
        self.startup_seconds = time.monotonic() - t0
        return self

    def wait_ready(self, deadline: float) -> None:
        """Wait until every running node listens and the metadata lists all running brokers."""
        running = [n for n in self.nodes if n.running]
        for n in running:
            n.wait_listening(deadline)
        _admin.wait_for_brokers(
            ",".join(n.bootstrap_server for n in running), len(running), deadline
        )

    def restart(self, node_id: int, timeout: float = 60.0) -> None:
        node = self.node(node_id)
        if node.running:
            node.stop()
        node.start()
        self.wait_ready(time.monotonic() + timeout)

    def leader(self, topic: str, partition: int) -> int:
        return _admin.partition_leader(self.live_bootstrap_servers, topic, partition)

    def isr(self, topic: str, partition: int) -> list[int]:
        """The in-sync replicas of a partition (node ids, sorted), as the live nodes see them."""
        return _admin.partition_isr(self.live_bootstrap_servers, topic, partition)

    def wait_in_sync(self, topic: str, partition: int, node_id: int, timeout: float = 30.0) -> None:
        """Wait until ``node_id`` is back in the partition's ISR (after a restart it must catch
        up first); raise :class:`HarnessError` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        isr: list[int] = []
        while time.monotonic() < deadline:
            try:
                isr = self.isr(topic, partition)
            except Exception:  # a metadata round trip can fail while nodes move
                isr = []
            if node_id in isr:
                return
            time.sleep(0.2)
        raise HarnessError(
            f"node {node_id} not back in the ISR of {topic}-{partition} after {timeout}s: {isr}"
        )

    @property
    def live_bootstrap_servers(self) -> str:
        return ",".join(n.bootstrap_server for n in self.nodes if n.running)

    def log_tail(self, max_bytes: int = 8000) -> str:
        return "\n".join(
            f"---- kafka node {n.node_id} ({n.log_path}) ----\n{n.log_tail(max_bytes)}"
            for n in self.nodes
        )

    def close(self) -> None:
        for n in self.nodes:
            n.process.stop(grace=10.0)
        if self._own_dir and not os.environ.get("AIOPRODUCER_KEEP_LOGS"):
            shutil.rmtree(self.work_dir, ignore_errors=True)


@contextlib.contextmanager
def kafka_cluster(size: int = 1, **kwargs: object) -> Iterator[KafkaCluster]:
    cluster = KafkaCluster(size, **kwargs)  # type: ignore[arg-type]
    try:
        yield cluster.start()
    finally:
        cluster.close()
