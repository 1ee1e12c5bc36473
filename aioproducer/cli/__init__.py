"""The ``aioproducer`` command (installed as a console script; also ``python -m aioproducer``).

    aioproducer produce --bootstrap-server HOST:PORT --topic T [FILE ...]
    aioproducer perf --topic T --num-records N --record-size B --throughput -1 \\
                     --producer-props bootstrap.servers=HOST:PORT [--compare aiokafka,confluent]
    aioproducer demo

``aioproducer COMMAND --help`` describes each. Progress goes to stderr: a bar on a terminal
(``rich``'s with the ``cli`` extra), plain lines otherwise; results go to stdout.
"""

from __future__ import annotations

import argparse
import sys

from .._version import __version__
from ..errors import ConfigError, KafkaError
from . import demo, perf, produce


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="aioproducer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--version", action="version", version=f"aioproducer {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    produce.add_parser(sub)
    perf.add_parser(sub)
    demo.add_parser(sub)
    args = ap.parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ConfigError as exc:
        print(f"aioproducer {args.cmd}: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"aioproducer {args.cmd}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return code


__all__ = ("main",)
