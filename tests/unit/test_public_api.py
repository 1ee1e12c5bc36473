"""The inventory of the public API: what each public module exports (``__all__``, a tuple), and
where each public class says it lives (``__module__``).

A change to ``aioproducer.__all__`` fails here until ``TOP_LEVEL`` below says the same: adding
or removing a public name is a decision, written down in this file and in CHANGELOG.md.
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.metadata
import inspect
import pickle
import typing
from types import ModuleType

import pytest

import aioproducer
from aioproducer import _broker_errors, errors

#: The public modules: what a user imports. Everything else (``aioproducer._*``, the
#: submodules of ``aioproducer.testing``) is implementation.
PUBLIC_MODULES = (
    "aioproducer",
    "aioproducer.config",
    "aioproducer.errors",
    "aioproducer.producer",
    "aioproducer.testing",
)
#: Modules that gather names defined elsewhere: the names they import are their exports.
FACADES = ("aioproducer", "aioproducer.errors", "aioproducer.testing")
#: Public-looking module-level names that are deliberately not exported.
NOT_EXPORTED = {
    "aioproducer.producer": {"log"},  # the "aioproducer" logger: logging.getLogger finds it
}

TOP_LEVEL = (
    "AbstractTokenProvider",
    "AuthenticationError",
    "BadRecordError",
    "BadRecordTypeError",
    "BootstrapResolutionError",
    "BrokerProtocolError",
    "BrokerResponseError",
    "ClientCredentialsTokenProvider",
    "Cluster",
    "ConfigError",
    "ConsumerGroupMetadata",
    "IdempotenceUnavailableError",
    "JwtBearerTokenProvider",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaTimeoutError",
    "PersistedStatus",
    "PreparedTxnState",
    "Producer",
    "ProducerClosedError",
    "ProducerConfig",
    "ProducerInterceptor",
    "ProducerLike",
    "ProducerRecord",
    "ProducerSettings",
    "ProtocolError",
    "RecordFuture",
    "RecordMetadata",
    "RecordTooLargeError",
    "RoundRobinPartitioner",
    "SaslAuthenticationError",
    "SecurityProtocolMismatchError",
    "SerializationError",
    "SslAuthenticationError",
    "TopicPartition",
    "TransactionAbortedError",
    "TransactionStateError",
    "TransactionalProducerLike",
    "UnsupportedAsyncLibraryError",
    "UnsupportedVersion",
    "WrongEventLoopError",
    "__version__",
)
#: errors.__all__ beside the generated broker classes (_broker_errors.__all__).
ERRORS_HAND_WRITTEN = (
    "AuthenticationError",
    "BadRecordError",
    "BadRecordTypeError",
    "BootstrapResolutionError",
    "BrokerProtocolError",
    "BrokerResponseError",
    "ConfigError",
    "IdempotenceUnavailableError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaTimeoutError",
    "PersistedStatus",
    "ProducerClosedError",
    "ProtocolError",
    "RecordTooLargeError",
    "SaslAuthenticationError",
    "SecurityProtocolMismatchError",
    "SerializationError",
    "SslAuthenticationError",
    "TransactionAbortedError",
    "TransactionStateError",
    "UnknownBrokerError",
    "UnsupportedAsyncLibraryError",
    "UnsupportedVersion",
    "WrongEventLoopError",
    "error_class",
    "for_code",
)
OTHER_MODULES = {
    "aioproducer.config": (
        "Acks",
        "CompressionType",
        "ProducerConfig",
        "SaslMechanism",
        "SecurityProtocol",
        "Serializer",
        "StrPath",
        "TlsProtocol",
        "TlsVersion",
    ),
    "aioproducer.producer": ("Producer", "ProducerRecord"),
    "aioproducer.testing": (
        "KAFKA_COMPAT_VERSION",
        "KAFKA_VERSION",
        "ChaosProxy",
        "HarnessError",
        "KafkaCluster",
        "KafkaNode",
        "KafkaSecurity",
        "KerberosKdc",
        "MissingToolError",
        "MockCluster",
        "MockProducer",
        "ReadRecord",
        "StaticTokenProvider",
        "TansuBroker",
        "TokenEndpoint",
        "create_topic",
        "create_topics",
        "ensure_kafka_jars",
        "read_topic",
        "read_topic_kcat",
        "unsecured_jwt",
    ),
}


def module(name: str) -> ModuleType:
    return importlib.import_module(name)


def defined_names(mod: ModuleType) -> set[str]:
    """The public names the module's own source binds at top level: its classes, functions
    and assignments, and, for a facade, what it imports from its package."""
    tree = ast.parse(inspect.getsource(mod))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and node.level and mod.__name__ in FACADES:
            names |= {a.asname or a.name for a in node.names if a.name != "*"}
    names -= {"__all__"}
    return {n for n in names if not n.startswith("_") or n == "__version__"}


def canonical_module(cls: type) -> str:
    """Errors live in aioproducer.errors, the harness in aioproducer.testing, the rest in
    aioproducer."""
    if issubclass(cls, BaseException) and cls.__module__.startswith("aioproducer.testing"):
        return "aioproducer.testing"
    if issubclass(cls, errors.KafkaError) or cls is errors.PersistedStatus:
        return "aioproducer.errors"
    if cls.__module__.startswith("aioproducer.testing"):
        return "aioproducer.testing"
    return "aioproducer"


def public_classes() -> list[tuple[str, str, type]]:
    out = []
    for name in PUBLIC_MODULES:
        mod = module(name)
        for attr in mod.__all__:
            obj = getattr(mod, attr, None)  # a missing name fails its own test
            if isinstance(obj, type):
                out.append((name, attr, obj))
    return out


def test_the_top_level_exports_are_the_ones_written_here() -> None:
    assert aioproducer.__all__ == TOP_LEVEL, "a public name changed: update TOP_LEVEL on purpose"
    hand_written = tuple(n for n in errors.__all__ if n not in _broker_errors.__all__)
    assert hand_written == ERRORS_HAND_WRITTEN
    assert set(_broker_errors.__all__) == {"BROKER_ERRORS"} | {
        cls.__name__ for cls in _broker_errors.BROKER_ERRORS.values()
    }
    for name, expected in OTHER_MODULES.items():
        assert module(name).__all__ == expected, name


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_a_tuple_of_names_that_exist(name: str) -> None:
    mod = module(name)
    assert type(mod.__all__) is tuple
    assert len(set(mod.__all__)) == len(mod.__all__), "a name is exported twice"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{name}.__all__ names what does not exist: {missing}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_name_is_in_all(name: str) -> None:
    mod = module(name)
    unexported = defined_names(mod) - set(mod.__all__) - NOT_EXPORTED.get(name, set())
    assert not unexported, f"public in {name} but not in __all__: {sorted(unexported)}"


def test_the_top_level_has_every_error_the_client_raises() -> None:
    """aioproducer re-exports the roots and every client-side error; the broker's own, one class
    per code (and the helpers around them), are imported from aioproducer.errors."""
    broker_side = {"UnknownBrokerError", "error_class", "for_code"}
    assert set(ERRORS_HAND_WRITTEN) - broker_side <= set(aioproducer.__all__)
    for name in set(ERRORS_HAND_WRITTEN) - broker_side:
        assert getattr(aioproducer, name) is getattr(errors, name)


@pytest.mark.parametrize(("mod", "name", "cls"), public_classes())
def test_public_classes_name_their_public_module(mod: str, name: str, cls: type) -> None:
    assert cls.__module__ == canonical_module(cls), f"{mod}.{name}"
    # The name its __module__ gives leads back to the class: pickle and docs rely on it.
    # (In the pure-Python build RecordFuture is PyRecordFuture under its public alias.)
    if cls.__name__ == name:
        assert getattr(module(cls.__module__), cls.__qualname__) is cls
    else:
        assert getattr(module(cls.__module__), name) is cls


@pytest.mark.parametrize(("mod", "name", "cls"), public_classes())
def test_public_annotations_resolve_from_the_public_module(mod: str, name: str, cls: type) -> None:
    """typing.get_type_hints looks names up in __module__'s namespace: the annotations of a
    class published elsewhere are evaluated where they were written (aioproducer/_public.py)."""
    typing.get_type_hints(cls)


def test_the_public_classes_read_aioproducer_in_their_repr() -> None:
    assert aioproducer.Producer.__module__ == "aioproducer"
    assert repr(aioproducer.ProducerConfig) == "<class 'aioproducer.ProducerConfig'>"
    assert repr(errors.UnknownServerError) == "<class 'aioproducer.errors.UnknownServerError'>"


def example_errors() -> list[errors.KafkaError]:
    out: list[errors.KafkaError] = []
    for name in errors.__all__:
        cls = getattr(errors, name)
        if not (isinstance(cls, type) and issubclass(cls, errors.KafkaError)):
            continue
        out.append(cls(42, "detail") if cls is errors.UnknownBrokerError else cls("detail"))
    return out


@pytest.mark.parametrize("err", example_errors(), ids=lambda e: type(e).__name__)
def test_every_error_pickles_and_copies_to_the_same(err: errors.KafkaError) -> None:
    err.persisted_status = errors.PersistedStatus.POSSIBLY_PERSISTED
    for back in (pickle.loads(pickle.dumps(err)), copy.copy(err)):
        assert type(back) is type(err)
        assert str(back) == str(err) and back.args == err.args
        assert back.persisted_status is errors.PersistedStatus.POSSIBLY_PERSISTED


def test_the_public_values_pickle_by_their_public_path() -> None:
    values = (
        aioproducer.TopicPartition("t", 3),
        aioproducer.RecordMetadata("t", 3, 7, 1000, 3, 5),
        aioproducer.ProducerConfig(linger_ms=7),
    )
    for value in values:
        # Protocol 0 writes the module and the class name as text lines.
        assert f"caioproducer\n{type(value).__name__}\n".encode() in pickle.dumps(value, 0)
        assert pickle.loads(pickle.dumps(value)) == value


def test_the_version_is_the_installed_distributions() -> None:
    """One version, aioproducer/_version.py: pyproject.toml reads it (dynamic), and so does the
    metadata of the wheel or of the editable install."""
    assert aioproducer.__version__ == importlib.metadata.version("aioproducer")
