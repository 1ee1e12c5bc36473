"""aioproducer: an asyncio-native Apache Kafka producer.

The public API is what this package exports (``__all__``), plus :mod:`aioproducer.errors`
(every error class, among them one per broker error code) and :mod:`aioproducer.testing`
(brokers for tests). Each public class names where to import it from in its ``__module__``:
``aioproducer`` for the producer's classes, ``aioproducer.errors`` for the errors (re-exported
here: the roots and every error the client raises itself), so that reprs, docs and pickles
never name a private module.
"""

from __future__ import annotations

from ._core.cluster import Cluster, TopicPartition
from ._core.partitioner import RoundRobinPartitioner
from ._core.producer_batch import RecordFuture, RecordMetadata
from ._core.transactions import PreparedTxnState
from ._interceptors import ProducerInterceptor
from ._io.oauth import AbstractTokenProvider, ClientCredentialsTokenProvider
from ._io.oauth_assertion import JwtBearerTokenProvider
from ._io.transactions import ConsumerGroupMetadata
from ._producer_like import ProducerLike, TransactionalProducerLike
from ._public import publish as _publish
from ._settings import ProducerSettings
from ._version import __version__
from .config import ProducerConfig
from .errors import (
    AuthenticationError,
    BadRecordError,
    BadRecordTypeError,
    BootstrapResolutionError,
    BrokerProtocolError,
    BrokerResponseError,
    ConfigError,
    IdempotenceUnavailableError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    PersistedStatus,
    ProducerClosedError,
    ProtocolError,
    RecordTooLargeError,
    SaslAuthenticationError,
    SecurityProtocolMismatchError,
    SerializationError,
    SslAuthenticationError,
    TransactionAbortedError,
    TransactionStateError,
    UnsupportedAsyncLibraryError,
    UnsupportedVersion,
    WrongEventLoopError,
)
from .producer import Producer, ProducerRecord

__all__ = (
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

# The classes defined in private modules (and in config.py, producer.py) are imported from
# here, and say so. The errors say ``aioproducer.errors``, their canonical home.
for _name, _cls in (
    ("AbstractTokenProvider", AbstractTokenProvider),
    ("ClientCredentialsTokenProvider", ClientCredentialsTokenProvider),
    ("JwtBearerTokenProvider", JwtBearerTokenProvider),
    ("Cluster", Cluster),
    ("ConsumerGroupMetadata", ConsumerGroupMetadata),
    ("Producer", Producer),
    ("PreparedTxnState", PreparedTxnState),
    ("ProducerConfig", ProducerConfig),
    ("ProducerInterceptor", ProducerInterceptor),
    ("ProducerLike", ProducerLike),
    ("ProducerRecord", ProducerRecord),
    ("ProducerSettings", ProducerSettings),
    ("RecordFuture", RecordFuture),
    ("RecordMetadata", RecordMetadata),
    ("RoundRobinPartitioner", RoundRobinPartitioner),
    ("TopicPartition", TopicPartition),
    ("TransactionalProducerLike", TransactionalProducerLike),
):
    _publish(_cls, __name__)
    if _cls.__name__ != _name:  # the pure-Python RecordFuture (AIOPRODUCER_PURE_PYTHON=1)
        _cls.__name__ = _cls.__qualname__ = _name
del _cls, _name
