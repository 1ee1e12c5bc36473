"""A KIP-714 client-metrics receiver for the Kafka harness: a broker plugin that writes what
clients push, decoded by Kafka's own OTLP classes, to a file the tests read.

A Kafka broker accepts GetTelemetrySubscriptions and PushTelemetry only when a metrics
reporter (``metric.reporters``) implements ``ClientTelemetryExporterProvider`` (Kafka 4.x's
interface, used where the jars have it) or ``ClientTelemetry`` (3.x's, for older brokers).
The plugin's Java source is below; it is compiled once per Kafka version with ``javac``
against the cached jars and put on the brokers' classpath (``KafkaCluster(classpath=...,
extra_config=broker_config(path))``). A client-metrics subscription is created with
Kafka's ``ConfigCommand`` (:func:`subscribe`).

Each push becomes one ``push`` line (client id, client instance id, terminating, number of
points), then one ``point`` line per data point (metric name, gauge or sum, value, the sum's
temporality and start time, attributes), tab-separated.
"""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import HarnessError, MissingToolError
from .kafka import cache_dir, ensure_kafka_jars, java_executable

CLASS = "aioproducer.harness.TelemetrySink"
#: The broker setting that names the file the plugin writes.
FILE_CONFIG = "aioproducer.telemetry.sink.file"

_SOURCE = """\
package aioproducer.harness;

import java.io.FileWriter;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.StringJoiner;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.metrics.MetricsReporter;
import org.apache.kafka.server.telemetry.ClientTelemetryPayload;
import org.apache.kafka.shaded.io.opentelemetry.proto.common.v1.KeyValue;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.Metric;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.MetricsData;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.NumberDataPoint;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.ResourceMetrics;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.ScopeMetrics;

public class TelemetrySink implements MetricsReporter, @INTERFACE@ {
    private String file;

    @Override public void configure(Map<String, ?> configs) {
        Object f = configs.get("@FILE_CONFIG@");
        file = f == null ? null : f.toString();
    }
    @Override public void init(List<KafkaMetric> metrics) {}
    @Override public void metricChange(KafkaMetric metric) {}
    @Override public void metricRemoval(KafkaMetric metric) {}
    @Override public void close() {}

@METHOD@

    private static String clean(String s) {
        return s.replace('\\t', ' ').replace('\\n', ' ');
    }

    private synchronized void export(String clientId, ClientTelemetryPayload payload) {
        StringBuilder out = new StringBuilder();
        String client = clean(clientId);
        try {
            MetricsData data = MetricsData.parseFrom(payload.data());
            StringBuilder points = new StringBuilder();
            int n = 0;
            for (ResourceMetrics rm : data.getResourceMetricsList()) {
                for (ScopeMetrics sm : rm.getScopeMetricsList()) {
                    for (Metric m : sm.getMetricsList()) {
                        List<NumberDataPoint> dps;
                        String kind;
                        String temporality = "-";
                        if (m.hasGauge()) {
                            kind = "gauge";
                            dps = m.getGauge().getDataPointsList();
                        } else if (m.hasSum()) {
                            kind = "sum";
                            dps = m.getSum().getDataPointsList();
                            temporality = m.getSum().getAggregationTemporality().name()
                                + (m.getSum().getIsMonotonic() ? ":monotonic" : "");
                        } else {
                            kind = "other";
                            dps = List.of();
                        }
                        for (NumberDataPoint p : dps) {
                            StringJoiner attrs = new StringJoiner(";");
                            for (KeyValue kv : p.getAttributesList()) {
                                String value = kv.getValue().getStringValue();
                                attrs.add(clean(kv.getKey()) + "=" + clean(value));
                            }
                            double v = p.hasAsInt() ? p.getAsInt() : p.getAsDouble();
                            points.append("point\\t").append(client).append('\\t')
                                .append(clean(m.getName())).append('\\t').append(kind).append('\\t')
                                .append(Double.toString(v)).append('\\t').append(temporality)
                                .append('\\t').append(p.getStartTimeUnixNano()).append('\\t')
                                .append(attrs).append('\\n');
                            n++;
                        }
                    }
                }
            }
            out.append("push\\t").append(client).append('\\t').append(payload.clientInstanceId())
                .append('\\t').append(payload.isTerminating()).append('\\t').append(n).append('\\n');
            out.append(points);
        } catch (Exception e) {
            out.append("error\\t").append(client).append('\\t').append(clean(e.toString())).append('\\n');
        }
        if (file == null) return;
        try (FileWriter w = new FileWriter(file, true)) {
            w.write(out.toString());
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }
}
""".replace("@FILE_CONFIG@", FILE_CONFIG)
_T = "org.apache.kafka.server.telemetry."
#: Kafka 4.x's interface, and the 3.x one (still read by 4.x) for older brokers.
_EXPORTER = (
    _T + "ClientTelemetryExporterProvider",
    f"""    @Override public {_T}ClientTelemetryExporter clientTelemetryExporter() {{
        return (ctx, payload) -> export(ctx.authorizableRequestContext().clientId(), payload);
    }}""",
)
_RECEIVER = (
    _T + "ClientTelemetry",
    f"""    @Override public {_T}ClientTelemetryReceiver clientReceiver() {{
        return (ctx, payload) -> export(ctx.clientId(), payload);
    }}""",
)


def _has_class(libs: Path, jar_glob: str, name: str) -> bool:
    """Whether a jar of ``libs`` matching ``jar_glob`` holds the class ``name``."""
    entry = name.replace(".", "/") + ".class"
    for path in libs.glob(jar_glob):
        with zipfile.ZipFile(path) as jar:
            if entry in jar.namelist():
                return True
    return False


def _source(libs: Path) -> str:
    """The plugin for the jars in ``libs``: the exporter interface where Kafka has it."""
    new = _has_class(libs, "kafka-clients-*.jar", _EXPORTER[0])
    interface, method = _EXPORTER if new else _RECEIVER
    return _SOURCE.replace("@INTERFACE@", interface).replace("@METHOD@", method)


def compile_sink(version: str | None = None) -> Path:
    """The plugin's compiled classes for Kafka ``version`` (cached): a classpath entry."""
    libs = ensure_kafka_jars(version)
    source = _source(libs)
    digest = hashlib.sha256((source + str(libs)).encode()).hexdigest()[:16]
    out = cache_dir() / "telemetry-sink" / digest
    marker = out / "aioproducer" / "harness" / "TelemetrySink.class"
    if marker.exists():
        return out
    javac = Path(java_executable()).with_name("javac")
    if not javac.exists():
        raise MissingToolError("javac", "install a Java 17 JDK (Debian: openjdk-17-jdk-headless)")
    src = out / "src" / "aioproducer" / "harness" / "TelemetrySink.java"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(source)
    proc = subprocess.run(
        [str(javac), "-cp", f"{libs}/*", "-d", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise HarnessError(f"compiling the telemetry sink failed:\n{proc.stderr[-4000:]}")
    return out


def broker_config(path: Path) -> dict[str, str]:
    """The broker settings that load the plugin, writing to ``path``."""
    return {"metric.reporters": CLASS, FILE_CONFIG: str(path)}


def subscribe(
    bootstrap: str,
    name: str,
    metrics: list[str],
    interval_ms: int,
    version: str | None = None,
) -> None:
    """Create (or change) the client-metrics subscription ``name`` with Kafka's
    ``ConfigCommand``: every client, the metric name prefixes ``metrics``, pushed every
    ``interval_ms``."""
    libs = ensure_kafka_jars(version)
    settings = f"metrics=[{','.join(metrics)}],interval.ms={interval_ms}"
    argv = [
        java_executable(),
        "-cp",
        f"{libs}/*",
        # Kafka 4.x's tools module; 3.x's is in the core jar.
        next(
            c
            for c in ("org.apache.kafka.tools.ConfigCommand", "kafka.admin.ConfigCommand")
            if _has_class(libs, "kafka*.jar", c)
        ),
        "--bootstrap-server",
        bootstrap,
        "--alter",
        "--entity-type",
        "client-metrics",
        "--entity-name",
        name,
        "--add-config",
        settings,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise HarnessError(f"kafka-configs failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


@dataclass
class Push:
    """One push the broker received, its data points decoded."""

    client_id: str
    instance_id: str
    terminating: bool
    #: name -> (kind, value, temporality, start ns, attributes), one per point.
    points: list[tuple[str, str, float, str, int, dict[str, str]]] = field(default_factory=list)

    def value(self, name: str, **attributes: str) -> float:
        found = [p[2] for p in self.points if p[0] == name and p[5] == attributes]
        if len(found) != 1:
            raise KeyError(f"{name} {attributes}: {len(found)} points")
        return found[0]


def read_pushes(path: Path) -> list[Push]:
    """Every push written to ``path`` so far, in order (an ``error`` line raises)."""
    if not path.exists():
        return []
    pushes: list[Push] = []
    text = path.read_text()
    # The sink may be writing a line now: read the complete lines only.
    for line in text[: text.rfind("\n") + 1].splitlines():
        cols = line.split("\t")
        if cols[0] == "error":
            raise HarnessError(f"the telemetry sink could not decode a push: {line}")
        if cols[0] == "push":
            pushes.append(Push(cols[1], cols[2], cols[3] == "true"))
        elif cols[0] == "point" and pushes:
            attrs = dict(a.split("=", 1) for a in cols[7].split(";") if a) if len(cols) > 7 else {}
            pushes[-1].points.append(
                (cols[2], cols[3], float(cols[4]), cols[5], int(cols[6]), attrs)
            )
    return pushes


__all__ = ["Push", "broker_config", "compile_sink", "read_pushes", "subscribe"]
