"""A script that produces numbered records to Kafka until it is done or told to stop.

It keeps at most ``--window`` records unacknowledged and prints one line per acknowledged
record (``value partition offset``). SIGTERM or Ctrl-C stops it cleanly: no new records,
``close()`` delivers the ones in flight (each still printed), exit status 0.

Run it::

    python examples/produce_script.py --bootstrap localhost:9092 --topic events --count 100000
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aioproducer import Producer, RecordFuture


async def main(bootstrap: str, topic: str, count: int, window: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    acked = 0

    def report(value: bytes, record: RecordFuture) -> None:
        nonlocal acked
        md = record.result()
        print(value.decode(), md.partition, md.offset, flush=False)
        acked += 1

    async with Producer(bootstrap_servers=bootstrap, client_id="example-script") as producer:
        pending: list[tuple[bytes, RecordFuture]] = []
        for i in range(count):
            if stop.is_set():
                break
            value = b"record-%d" % i
            pending.append((value, await producer.send(topic, value)))
            if len(pending) >= window:
                await producer.flush()
                for value, record in pending:
                    report(value, record)
                pending.clear()
                sys.stdout.flush()
        await producer.flush()
        for value, record in pending:
            report(value, record)
    sys.stdout.flush()
    outcome = "stopped by a signal" if stop.is_set() else "done"
    print(f"{outcome}: {acked} records acknowledged", file=sys.stderr)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="localhost:9092")
    parser.add_argument("--topic", default="events")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=1_000)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.bootstrap, args.topic, args.count, args.window)))
