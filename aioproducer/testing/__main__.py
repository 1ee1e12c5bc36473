"""``python -m aioproducer.testing``: fetch the Kafka jars, or run a broker in the foreground.

python -m aioproducer.testing fetch-jars [--version 4.4.0]
python -m aioproducer.testing run {kafka,kafka-secure,kafka-cluster,tansu,mock}

``kafka-secure`` also prints each secured listener's address and the certificate files
(``KafkaSecurity``; its SCRAM/PLAIN users are those of ``KafkaSecurity().users``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ._errors import HarnessError
from .kafka import KafkaCluster, default_version, ensure_kafka_jars
from .mock import MockCluster
from .security import KafkaSecurity
from .tansu import TansuBroker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aioproducer.testing")
    sub = parser.add_subparsers(dest="cmd", required=True)
    fetch = sub.add_parser("fetch-jars", help="resolve the Kafka jars into the cache")
    fetch.add_argument("--version", default=default_version())
    run = sub.add_parser("run", help="run a broker until Ctrl-C")
    run.add_argument("kind", choices=["kafka", "kafka-secure", "kafka-cluster", "tansu", "mock"])
    args = parser.parse_args(argv)
    try:
        if args.cmd == "fetch-jars":
            print(ensure_kafka_jars(args.version))
            return 0
        broker: KafkaCluster | TansuBroker | MockCluster
        if args.kind == "kafka":
            broker = KafkaCluster(1)
        elif args.kind == "kafka-secure":
            broker = KafkaCluster(1, security=KafkaSecurity())
        elif args.kind == "kafka-cluster":
            broker = KafkaCluster(3)
        elif args.kind == "tansu":
            broker = TansuBroker()
        else:
            broker = MockCluster(3)
        with broker:
            print(f"bootstrap_servers={broker.bootstrap_servers}", flush=True)
            sec = getattr(broker, "security", None)
            if sec is not None:
                for name in sec.listener_names:
                    print(f"{name}={sec.bootstrap(name)}")
                print(f"ssl_cafile={sec.ca_file}\nssl_certfile={sec.client_cert_file}")
                print(f"ssl_keyfile={sec.client_key_file}\nusers={','.join(sec.users)}")
                print("", end="", flush=True)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
        return 0
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
