"""``aioproducer produce``: lines (or whole files) from stdin or paths, to a topic.

    aioproducer produce --bootstrap-server HOST:PORT --topic events [FILE ...]
    printf 'k1\\tv1\\nk2\\tv2\\n' | aioproducer produce --topic events --key-separator $'\\t' ...
    aioproducer produce --topic blobs --whole-files a.json b.json ...

Each line is a record (without its line ending); ``-`` or no FILE reads stdin. With
``--key-separator S`` a line is ``KEY S VALUE`` (a line without S is a value without key).
With ``--headers-separator S`` a line starts with headers, ``NAME:VALUE,NAME:VALUE S REST``
(Java's console producer's ``parse.headers``); ``-H NAME=VALUE`` adds a header to every record.
Bytes are sent as they are read (no decoding). Exits 1 if any record failed (the first
failures are printed), 0 when every record was acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .. import Producer, RecordMetadata
from ._options import add_producer_options, producer_settings
from ._progress import Progress


def _sep(text: str | None) -> bytes | None:
    """A separator given on the command line; ``\\t`` and ``\\n`` escapes understood."""
    if text is None:
        return None
    if not text:
        raise SystemExit("aioproducer produce: a separator cannot be empty")
    return text.encode().decode("unicode_escape").encode("latin-1")


def _inputs(paths: list[str], stdin: IO[bytes]) -> Iterator[tuple[str, IO[bytes]]]:
    for path in paths or ["-"]:
        if path == "-":
            yield "<stdin>", stdin
        else:
            with open(path, "rb") as f:
                yield path, f


def _records(
    args: argparse.Namespace, stdin: IO[bytes]
) -> Iterator[tuple[bytes | None, bytes, list[tuple[str, bytes | None]]]]:
    key_sep, headers_sep = _sep(args.key_separator), _sep(args.headers_separator)
    static = [(n, v.encode()) for n, _, v in (h.partition("=") for h in args.header)]
    for _name, f in _inputs(args.files, stdin):
        if args.whole_files:
            yield None, f.read(), list(static)
            continue
        for raw in f:
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if line.endswith(b"\r"):
                line = line[:-1]
            headers = list(static)
            if headers_sep is not None:
                head, sep, line = line.partition(headers_sep)
                if not sep:
                    head, line = b"", head
                for item in head.split(b",") if head else ():
                    name, _, value = item.partition(b":")
                    headers.append((name.decode("utf-8", "replace"), value))
            key: bytes | None = None
            if key_sep is not None:
                k, sep, rest = line.partition(key_sep)
                if sep:
                    key, line = k, rest
            yield key, line, headers


async def _produce(args: argparse.Namespace, stdin: IO[bytes]) -> int:
    settings: dict[str, Any] = producer_settings(args)
    sent = acked = failed = total_bytes = 0
    failures: list[str] = []

    def done(md: RecordMetadata | None, exc: BaseException | None) -> None:
        nonlocal acked, failed
        if exc is None:
            acked += 1
            return
        failed += 1
        if len(failures) < 5:
            failures.append(f"{type(exc).__name__}: {exc}")

    bar = Progress(None, "records", mode=args.progress)
    started = time.perf_counter()
    async with Producer(**settings) as producer:
        for key, value, headers in _records(args, stdin):
            await producer.send(
                args.topic,
                value,
                key=key,
                partition=args.partition,
                headers=headers or None,
                callback=done,
            )
            sent += 1
            total_bytes += len(value)
            if sent & 255 == 0:
                bar.update(sent)
        await producer.flush()
        bar.update(sent)
    bar.close()
    elapsed = time.perf_counter() - started
    print(
        f"produced {acked:,} of {sent:,} records ({total_bytes:,} value bytes) to "
        f"{args.topic!r} in {elapsed:.2f} s: {acked / max(elapsed, 1e-9):,.0f} records/s"
    )
    if failed:
        print(f"{failed:,} records failed; the first errors:", file=sys.stderr)
        for text in failures:
            print(f"  {text}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    stdin = sys.stdin.buffer
    for path in args.files:
        if path != "-" and not Path(path).is_file():
            raise SystemExit(f"aioproducer produce: no such file: {path}")
    return asyncio.run(_produce(args, stdin))


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "produce",
        help="produce lines or files from stdin or paths to a topic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--topic", required=True)
    p.add_argument("files", nargs="*", metavar="FILE", help="paths to read; '-' or none: stdin")
    p.add_argument("--whole-files", action="store_true", help="one record per file, not line")
    p.add_argument("--key-separator", metavar="S", help="lines are KEY S VALUE")
    p.add_argument("--headers-separator", metavar="S", help="lines are H:V,H:V S REST")
    p.add_argument(
        "-H", "--header", action="append", default=[], metavar="NAME=VALUE",
        help="a header on every record (repeatable)",
    )  # fmt: skip
    p.add_argument("--partition", type=int, default=None, help="default: the partitioner's")
    p.add_argument(
        "--progress",
        choices=["auto", "bar", "lines", "none"],
        default="auto",
        help="a bar on a terminal, a line every 5 s otherwise (auto)",
    )
    add_producer_options(p)
    p.set_defaults(run=run)


__all__ = ("add_parser", "run")
