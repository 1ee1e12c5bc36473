"""An aiohttp service that writes each request's body to Kafka and answers once it is stored.

The producer is a ``cleanup_ctx`` of the application: started with it, closed (delivering
what is pending) when the application is cleaned up. ``web.run_app`` does that on SIGTERM or
Ctrl-C, after the requests in progress finish (within ``shutdown_timeout``).

Run it::

    KAFKA_BOOTSTRAP=localhost:9092 KAFKA_TOPIC=events python examples/aiohttp_app.py --port 8080

    curl -X POST localhost:8080/events/user-1 -d 'signed up'
    curl localhost:8080/health
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator

from aiohttp import web

from aioproducer import KafkaError, Producer
from aioproducer.metrics import as_dict

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")
TOPIC = os.environ.get("KAFKA_TOPIC", "events")
PRODUCER = web.AppKey("producer", Producer)


async def kafka_producer(app: web.Application) -> AsyncIterator[None]:
    async with Producer(bootstrap_servers=BOOTSTRAP, client_id="aiohttp-example") as producer:
        app[PRODUCER] = producer
        yield


async def produce(request: web.Request) -> web.Response:
    producer = request.app[PRODUCER]
    try:
        record = await producer.send(
            TOPIC, await request.read(), key=request.match_info["key"].encode()
        )
        metadata = await record  # acknowledged by Kafka (acks=all, idempotent by default)
    except KafkaError as exc:
        return web.json_response({"error": str(exc)}, status=503)
    return web.json_response({"partition": metadata.partition, "offset": metadata.offset})


async def health(request: web.Request) -> web.Response:
    producer = request.app[PRODUCER]
    body = {"producer": producer.state, "metrics": as_dict(producer.metrics())}
    return web.json_response(body, status=200 if producer.state == "running" else 503)


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(kafka_producer)
    app.router.add_post("/events/{key}", produce)
    app.router.add_get("/health", health)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    web.run_app(make_app(), host=args.host, port=args.port, shutdown_timeout=30)
