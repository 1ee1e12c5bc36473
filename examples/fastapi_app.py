"""A FastAPI service that writes each request's body to Kafka and answers once it is stored.

The producer lives in the application's lifespan: started before the first request, closed
(delivering what is pending) after the last one when the server shuts down — uvicorn does
that on SIGTERM or Ctrl-C, after letting requests in progress finish. Handlers ``await``
the record, so a 2xx answer means Kafka has the record.

Run it (uvicorn uses uvloop when installed)::

    KAFKA_BOOTSTRAP=localhost:9092 KAFKA_TOPIC=events \\
        uvicorn fastapi_app:app --app-dir examples --port 8000

    curl -X POST localhost:8000/events/user-1 -d 'signed up'
    curl localhost:8000/health
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from aioproducer import KafkaError, Producer
from aioproducer.metrics import as_dict

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")
TOPIC = os.environ.get("KAFKA_TOPIC", "events")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    async with Producer(bootstrap_servers=BOOTSTRAP, client_id="fastapi-example") as producer:
        yield {"producer": producer}  # request.state.producer in the handlers


app = FastAPI(lifespan=lifespan)


@app.post("/events/{key}")
async def produce(key: str, request: Request) -> JSONResponse:
    producer: Producer = request.state.producer
    try:
        record = await producer.send(TOPIC, await request.body(), key=key.encode())
        metadata = await record  # acknowledged by Kafka (acks=all, idempotent by default)
    except KafkaError as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)
    return JSONResponse({"partition": metadata.partition, "offset": metadata.offset})


@app.get("/health")
async def health(request: Request) -> JSONResponse:
    producer: Producer = request.state.producer
    body = {"producer": producer.state, "metrics": as_dict(producer.metrics())}
    return JSONResponse(body, status_code=200 if producer.state == "running" else 503)
