"""The producer options the commands share, and the settings they make."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._java_settings import from_java_properties
from ..errors import ConfigError


def add_producer_options(p: argparse.ArgumentParser, *, shortcuts: bool = True) -> None:
    g = p.add_argument_group("producer settings")
    g.add_argument(
        "--bootstrap-server",
        "--bootstrap-servers",
        dest="bootstrap_servers",
        metavar="HOST:PORT[,...]",
        help="the cluster to produce to (or bootstrap.servers in --producer-props)",
    )
    if shortcuts:
        g.add_argument("--acks", choices=["all", "-1", "0", "1"], help="default: all")
        g.add_argument(
            "--compression",
            "--compression-type",
            dest="compression",
            choices=["none", "gzip", "snappy", "lz4", "zstd"],
            help="default: none",
        )
        g.add_argument(
            "--idempotence",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="enable_idempotence (default: on unless acks/retries conflict)",
        )
        g.add_argument("--linger-ms", type=int, metavar="MS")
        g.add_argument("--batch-size", type=int, metavar="BYTES")
    g.add_argument(
        "--producer-props",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="any producer setting by its Java name (linger.ms=5) or ours (linger_ms=5)",
    )
    g.add_argument(
        "--producer.config",
        "--producer-config",
        dest="producer_config",
        metavar="FILE",
        help="a Java properties file of producer settings",
    )


def _parse_properties(lines: list[str], where: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            name, sep, value = line.partition(":")
        if not sep:
            raise ConfigError(f"{where}: {line!r} is not NAME=VALUE")
        props[name.strip()] = value.strip()
    return props


def producer_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword settings for ``Producer(...)``: the file, then --producer-props, then the
    shortcut options, each overriding the one before."""
    props: dict[str, str] = {}
    if args.producer_config:
        text = Path(args.producer_config).read_text()
        props.update(_parse_properties(text.splitlines(), args.producer_config))
    props.update(_parse_properties(args.producer_props, "--producer-props"))
    settings = from_java_properties(props)
    if args.bootstrap_servers:
        settings["bootstrap_servers"] = args.bootstrap_servers
    for option, name in (
        ("acks", "acks"),
        ("compression", "compression_type"),
        ("idempotence", "enable_idempotence"),
        ("linger_ms", "linger_ms"),
        ("batch_size", "batch_size"),
    ):
        value = getattr(args, option, None)
        if value is not None:
            settings[name] = value
    if settings.get("compression_type") == "none":
        settings["compression_type"] = None
    if "bootstrap_servers" not in settings:
        raise ConfigError("no cluster: give --bootstrap-server or bootstrap.servers")
    return settings


__all__ = ("add_producer_options", "producer_settings")
