"""uvicorn's own command line, plus a report of the state the app left its producers in.

uvicorn shuts an app down gracefully on SIGTERM (the lifespan's exit included), then raises
the signal again with the handler it found at start-up: by default the process dies on the
spot, so neither its exit status nor a ``ResourceWarning`` from an unclosed producer's
``__del__`` (never run) tells whether the lifespan closed its producer. This launcher
remembers every :class:`~aioproducer.Producer` started in the process and installs the
SIGTERM handler uvicorn finds, and restores after its shutdown: the handler writes each
producer's ``client_id`` and ``state`` to the JSON file ``$PRODUCER_REPORT``, then lets the
signal end the process as uvicorn meant. No report means the hook never ran, which the test
takes as a failure too::

    PRODUCER_REPORT=/tmp/r.json python -m tests.integration.uvicorn_probe fastapi_app:app ...
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from types import FrameType

from uvicorn.main import main

from aioproducer import Producer

_started: list[Producer] = []
_start = Producer.start


async def _remembering_start(self: Producer) -> None:
    _started.append(self)
    await _start(self)


def _report(signum: int, frame: FrameType | None) -> None:
    report = [{"client_id": p.config.client_id, "state": p.state} for p in _started]
    Path(os.environ["PRODUCER_REPORT"]).write_text(json.dumps(report))
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


if __name__ == "__main__":
    setattr(Producer, "start", _remembering_start)  # noqa: B010  (mypy: a method is read-only)
    signal.signal(signal.SIGTERM, _report)
    main(prog_name="uvicorn")
