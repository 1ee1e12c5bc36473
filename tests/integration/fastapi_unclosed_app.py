"""``examples/fastapi_app.py`` with a lifespan that forgets ``close()``: what the shutdown
check of tests/integration/test_examples.py must catch (uvicorn's exit status and stderr do
not show it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import fastapi_app  # examples/, on the path by uvicorn's --app-dir
from fastapi import FastAPI

from aioproducer import Producer


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    producer = Producer(bootstrap_servers=fastapi_app.BOOTSTRAP, client_id="fastapi-unclosed")
    await producer.start()
    yield {"producer": producer}  # and no close()


app = fastapi_app.app
app.router.lifespan_context = lifespan
