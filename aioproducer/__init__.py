"""aioproducer: an asyncio-native Apache Kafka producer."""

from __future__ import annotations

from ._core.cluster import Cluster, TopicPartition
from ._core.partitioner import RoundRobinPartitioner
from ._core.producer_batch import RecordFuture, RecordMetadata
from ._version import __version__
from .config import ProducerConfig
from .errors import (
    BadRecordError,
    BadRecordTypeError,
    BrokerResponseError,
    ConfigError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    ProducerClosedError,
    ProtocolError,
    RecordTooLargeError,
    SerializationError,
    UnsupportedVersion,
    WrongEventLoopError,
)
from .producer import Producer, ProducerRecord

__all__ = (
    "BadRecordError",
    "BadRecordTypeError",
    "BrokerResponseError",
    "Cluster",
    "ConfigError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaTimeoutError",
    "Producer",
    "ProducerClosedError",
    "ProducerConfig",
    "ProducerRecord",
    "ProtocolError",
    "RecordFuture",
    "RecordMetadata",
    "RecordTooLargeError",
    "RoundRobinPartitioner",
    "SerializationError",
    "TopicPartition",
    "UnsupportedVersion",
    "WrongEventLoopError",
    "__version__",
)
