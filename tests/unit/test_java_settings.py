"""Java's producer settings: names, the errors for unknown or unsupported ones, typed keywords.

The mypy tests run mypy --strict on a snippet (about 10 s each, cold cache): the keywords of
``Producer(...)`` are checked statically, and the installed package is found with its types.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from aioproducer import ConfigError, Producer, ProducerConfig, ProducerSettings, _java_settings
from aioproducer._java_settings import BY_JAVA, JAVA_SETTINGS, java_name, status

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {f.name for f in fields(ProducerConfig)}


def test_the_table_covers_javas_producer_settings() -> None:
    names = [s.java for s in JAVA_SETTINGS]
    assert len(names) == len(set(names)) >= 95
    # A sample from each of Java's sources: ProducerConfig, CommonClientConfigs, SSL, SASL.
    for java in ("linger.ms", "client.dns.lookup", "ssl.keystore.location", "sasl.jaas.config"):
        assert java in BY_JAVA
    supported = [s for s in JAVA_SETTINGS if status(s) == "supported"]
    assert {s.python for s in supported} <= FIELDS
    assert len(supported) >= 34


def _java_producer_setting_names(out: Path) -> set[str]:
    """``ProducerConfig.configNames()`` of the harness's Kafka, printed by a small Java program
    compiled here against its jars (no Java, no javac: the test fails saying so)."""
    from aioproducer.testing.kafka import ensure_kafka_jars, java_executable

    libs = ensure_kafka_jars()
    java = java_executable()
    javac = shutil.which("javac") or str(Path(java).with_name("javac"))
    assert Path(javac).exists(), "javac not found: install a Java 17 JDK (openjdk-17-jdk-headless)"
    source = ROOT / "tests" / "java" / "ProducerConfigNames.java"
    classpath = f"{libs}/*"
    subprocess.run([javac, "-d", str(out), "-cp", classpath, str(source)], check=True, timeout=120)
    res = subprocess.run(
        [java, "-cp", f"{out}{os.pathsep}{classpath}", "ProducerConfigNames"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(res.stdout.split())


@pytest.mark.kafka  # Java 17 and the harness's Kafka jars
def test_the_table_has_exactly_the_settings_java_reports(tmp_path: Path) -> None:
    """Every name Java's ``ProducerConfig.configNames()`` reports has a row (a later Kafka's new
    setting fails here until it has one), and no row names a setting Java lacks."""
    java = _java_producer_setting_names(tmp_path)
    assert len(java) >= 120
    table = {s.java for s in JAVA_SETTINGS}
    assert sorted(java - table) == [], "Java settings without a row in _java_settings._TABLE"
    assert sorted(table - java) == [], "rows of _java_settings._TABLE that Java does not have"
    for name in sorted(java):  # each is refused with a reason, or accepted under its own name
        s = BY_JAVA[name]
        if status(s) == "supported":
            continue
        setting: dict[str, Any] = {s.python: None}
        with pytest.raises(ConfigError, match="Java producer setting") as info:
            ProducerConfig(**setting)
        assert ("does not apply" in str(info.value)) == (s.not_applicable is not None)


def test_java_names_of_fields() -> None:
    assert java_name("linger_ms") == "linger.ms"
    assert java_name("partitioner") == "partitioner.class"
    assert java_name("ssl_check_hostname") == "ssl.endpoint.identification.algorithm"
    assert java_name("ssl_context") is None  # aioproducer's own


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("lingerms", "unknown setting 'lingerms'; did you mean 'linger_ms'\\?"),
        ("bootstrap_server", "did you mean 'bootstrap_servers'\\?"),
        ("no_such_thing_at_all", "unknown setting 'no_such_thing_at_all' \\(the settings"),
        ("linger.ms", "'linger.ms' is Java's spelling; aioproducer calls it 'linger_ms'"),
        ("partitioner_class", "Java's 'partitioner.class' is 'partitioner' in aioproducer"),
        (
            "connections_max_idle_ms",
            "'connections_max_idle_ms' is a Java producer setting \\('connections.max.idle.ms'\\) "
            "aioproducer does not support yet",
        ),
        (
            "sasl_login_retry_backoff_ms",
            "\\('sasl.login.retry.backoff.ms'\\) aioproducer does not support yet",
        ),
        ("security_providers", "does not apply to aioproducer: a JVM mechanism"),
        ("sasl_jaas_config", "does not apply .* use sasl_plain_username"),
    ],
)
def test_unknown_or_unsupported_names_raise_config_error(name: str, message: str) -> None:
    if name in FIELDS:  # another branch added the setting: nothing left to refuse
        return
    settings: dict[str, Any] = {name: 1}
    for make in (lambda: ProducerConfig(**settings), lambda: Producer(**settings)):
        with pytest.raises(ConfigError, match=message) as info:
            make()
        assert not isinstance(info.value, TypeError)
    with pytest.raises(ConfigError, match=message):  # also through dataclasses.replace
        Producer(ProducerConfig(), **settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"linger_ms": "5"}, "linger_ms='5' must be an integer"),
        ({"linger_ms": True}, "linger_ms=True must be an integer"),
        ({"ssl_check_hostname": "no"}, "ssl_check_hostname='no' must be a bool"),
        ({"client_id": 5}, "client_id=5 must be a string or None"),
        ({"security_protocol": "TLS"}, "security_protocol='TLS'"),
        ({"interceptors": object()}, "interceptors=<object .*> must be a sequence"),
        ({"bootstrap_servers": 9092}, "bootstrap_servers=9092 must be a string or a sequence"),
        ({"compression_gzip_level": 1.5}, "compression_gzip_level=1.5 must be an integer or None"),
        ({"partitioner_ignore_keys": 1}, "partitioner_ignore_keys=1 must be a bool"),
    ],
)
def test_wrong_types_raise_config_error_naming_the_setting(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ProducerConfig(**settings)


def test_every_field_is_type_checked_at_runtime() -> None:
    """A value of no annotated type is refused for every field (from the annotations, so a
    field added later is covered without further work)."""

    class Nothing:
        pass

    hints = get_type_hints(ProducerConfig)
    for name in FIELDS - {n for n, tp in hints.items() if tp is Any}:
        bad: dict[str, Any] = {name: Nothing()}
        with pytest.raises(ConfigError, match=name):
            ProducerConfig(**bad)


def test_from_java_properties(monkeypatch: pytest.MonkeyPatch) -> None:
    c = ProducerConfig.from_properties(
        {
            "bootstrap.servers": "a:1,b:2",
            "linger.ms": "7",
            "acks": "1",
            "enable.idempotence": "false",
            "compression.type": "lz4",
            "compression.lz4.level": "null",
            "ssl.endpoint.identification.algorithm": "",
            "partitioner.ignore.keys": "true",
        },
        client_id="cli",
    )
    assert (c.linger_ms, c.acks, c.enable_idempotence, c.compression_type) == (7, 1, False, "lz4")
    assert c.bootstrap_list == [("a", 1), ("b", 2)]
    assert (c.compression_lz4_level, c.ssl_check_hostname, c.partitioner_ignore_keys) == (
        None,
        False,
        True,
    )
    assert c.client_id == "cli"
    assert ProducerConfig.from_properties({"acks": "all"}).acks_value == -1
    with pytest.raises(ConfigError, match="linger_ms='soon' cannot be read as an integer"):
        ProducerConfig.from_properties({"linger.ms": "soon"})
    # A Java setting that applies but that ProducerConfig lacks (as each was until it was
    # added): pretend sasl_login_retry_backoff_ms is missing.
    everything = _java_settings._field_names()
    monkeypatch.setattr(
        _java_settings, "_field_names", lambda: everything - {"sasl_login_retry_backoff_ms"}
    )
    error = _java_settings.unknown_setting("sasl.login.retry.backoff.ms")
    assert "does not support yet" in str(error)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="did you mean 'linger_ms'"):
        ProducerConfig.from_properties({"linger.msec": "5"})


def test_typed_keywords_are_the_fields() -> None:
    """ProducerSettings (generated) has every field with the field's type."""
    assert get_type_hints(ProducerSettings) == get_type_hints(ProducerConfig)
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_settings.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def _mypy(snippet: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (cwd / "snippet.py").write_text(textwrap.dedent(snippet))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(cwd / ".mypy_cache"),
            "snippet.py",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_mypy_strict_rejects_wrong_keywords(tmp_path: Path) -> None:
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    env.pop("PYTHONPATH", None)
    res = _mypy(
        """
        from aioproducer import Producer, ProducerConfig

        ok = Producer(linger_ms=5, acks="all", compression_type="lz4", bootstrap_servers=["a:1"])
        typo = Producer(lingerms=5)
        wrong_type = Producer(linger_ms="5")
        wrong_literal = Producer(acks="some")
        both = Producer(ProducerConfig(linger_ms=1), batch_size=None)
        """,
        tmp_path,
        env,
    )
    errors = [line for line in res.stdout.splitlines() if line.startswith("snippet.py:")]
    errors = [line for line in errors if ": error:" in line]
    lines = sorted({int(e.split(":")[1]) for e in errors})
    assert lines == [5, 6, 7, 8], res.stdout + res.stderr
    assert '"lingerms"' in res.stdout
    assert '"linger_ms"' in res.stdout and '"str"' in res.stdout


def test_mypy_finds_the_installed_package_and_its_types(tmp_path: Path) -> None:
    """From outside the checkout, as a user's project would: the installed package (editable
    or not) is found, with its inline types (py.typed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    res = _mypy(
        """
        import aioproducer
        reveal_type(aioproducer.Producer.send)
        """,
        tmp_path,
        env,
    )
    assert "Revealed type" in res.stdout, res.stdout + res.stderr
    assert "RecordFuture" in res.stdout, res.stdout
    assert ": error:" not in res.stdout, res.stdout


def test_jaas_config_lines_give_the_credentials_and_never_show_them() -> None:
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="API_KEY" password="s3cr;et \\"q\\"";'
    )
    c = ProducerConfig.from_properties(
        {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.jaas.config": plain}
    )
    assert (c.sasl_plain_username, c.sasl_plain_password) == ("API_KEY", 's3cr;et "q"')
    assert "s3cr" not in repr(c)
    scram = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required username='u' password=pw;"
    )
    c = ProducerConfig.from_properties({"sasl.jaas.config": scram})
    assert (c.sasl_plain_username, c.sasl_plain_password) == ("u", "pw")
    oauth = (
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
        "clientId='app' clientSecret='s3cret' scope='kafka';"
    )
    c = ProducerConfig.from_properties(
        {
            "sasl.mechanism": "OAUTHBEARER",
            "sasl.oauthbearer.token.endpoint.url": "https://idp.example.com/token",
            "sasl.jaas.config": oauth,
        }
    )
    assert (
        c.sasl_oauthbearer_client_credentials_client_id,
        c.sasl_oauthbearer_client_credentials_client_secret,
        c.sasl_oauthbearer_scope,
    ) == ("app", "s3cret", "kafka")
    assert "s3cret" not in repr(c)
    with pytest.raises(ConfigError, match="only PlainLoginModule, ScramLoginModule, ") as info:
        ProducerConfig.from_properties(
            {"sasl.jaas.config": "org.example.CustomLoginModule required secretToken=k;"}
        )
    assert "secretToken" not in str(info.value)
    with pytest.raises(ConfigError, match=r"no username=\.\.\. password="):
        ProducerConfig.from_properties({"sasl.jaas.config": plain.replace("password", "pass")})
    with pytest.raises(ConfigError, match="does not apply"):  # as a keyword: the Python names
        jaas: dict[str, Any] = {"sasl_jaas_config": plain}
        ProducerConfig(**jaas)


@pytest.mark.parametrize("value", ["http", "htps", "HTTPS-ish"])
def test_a_misspelt_endpoint_identification_algorithm_does_not_turn_verification_off(
    value: str,
) -> None:
    # It did: anything but "https" read as False, hostname verification off without a word.
    with pytest.raises(ConfigError, match=r"ssl.endpoint.identification.algorithm=.*'https' or"):
        ProducerConfig.from_properties({"ssl.endpoint.identification.algorithm": value})
    props = {"ssl.endpoint.identification.algorithm": " HTTPS "}
    assert ProducerConfig.from_properties(props).ssl_check_hostname is True
    for off in ("", "null"):
        props = {"ssl.endpoint.identification.algorithm": off}
        assert ProducerConfig.from_properties(props).ssl_check_hostname is False


def test_client_dns_lookup_takes_javas_default_only() -> None:
    assert ProducerConfig.from_properties({"client.dns.lookup": "use_all_dns_ips"})
    with pytest.raises(ConfigError, match=r"client_dns_lookup=.* must be one of 'use_all_dns_ips'"):
        ProducerConfig(client_dns_lookup="resolve_canonical_bootstrap_servers_only")  # type: ignore[arg-type]


def test_java_key_stores_are_refused_with_the_way_out() -> None:
    c = ProducerConfig.from_properties(
        {"ssl.truststore.location": "/etc/ca.pem", "ssl.keystore.location": "/etc/me.pem"}
    )
    assert (c.ssl_cafile, c.ssl_certfile) == ("/etc/ca.pem", "/etc/me.pem")
    with pytest.raises(ConfigError, match="is a Java key store; aioproducer reads PEM files"):
        ProducerConfig.from_properties({"ssl.truststore.location": "/etc/kafka/truststore.jks"})


def test_file_settings_take_paths() -> None:
    from pathlib import Path

    c = ProducerConfig(ssl_cafile=Path("/etc/ca.pem"))
    assert c.ssl_cafile == Path("/etc/ca.pem")
    bad: dict[str, Any] = {"ssl_cafile": 5}
    with pytest.raises(ConfigError, match="ssl_cafile=5 must be a string or PathLike or None"):
        ProducerConfig(**bad)
