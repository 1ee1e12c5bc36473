"""Real Kafka-protocol brokers for tests, no Docker: Apache Kafka from Maven jars, Tansu, and
librdkafka's mock cluster; plus an independent reader built on confluent-kafka, and secured
listeners (TLS, mutual TLS, SASL PLAIN/SCRAM/OAUTHBEARER) with an OAuth token endpoint; and
:class:`MockProducer`, the producer's API without a network for unit tests of your own code.

Needs the ``test`` extra (``pip install 'aioproducer[test]'``), and Java 17 with Maven for
Apache Kafka. A missing tool raises :class:`MissingToolError` naming it.

Import from here: the submodules (``kafka``, ``mock``, ``tansu``, ``proxy``, ``reader``) are
the implementation, and each class exported here says ``aioproducer.testing`` in its
``__module__``. ``plugin`` is the pytest plugin, loaded by its entry point.
"""

from __future__ import annotations

from .._public import publish as _publish
from ._admin import create_topic, create_topics
from ._errors import HarnessError, MissingToolError
from .kafka import KAFKA_COMPAT_VERSION, KAFKA_VERSION, KafkaCluster, KafkaNode, ensure_kafka_jars
from .kerberos import KerberosKdc
from .mock import MockCluster
from .mock_producer import MockProducer
from .oauth import TokenEndpoint
from .proxy import ChaosProxy
from .reader import ReadRecord, read_topic, read_topic_kcat
from .security import KafkaSecurity, StaticTokenProvider, unsecured_jwt
from .tansu import TansuBroker

__all__ = (
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
)

for _cls in (
    ChaosProxy,
    HarnessError,
    KafkaCluster,
    KafkaNode,
    KafkaSecurity,
    KerberosKdc,
    MissingToolError,
    MockCluster,
    MockProducer,
    ReadRecord,
    StaticTokenProvider,
    TansuBroker,
    TokenEndpoint,
):
    _publish(_cls, __name__)
del _cls
