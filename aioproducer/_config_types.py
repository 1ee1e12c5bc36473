"""Runtime checks of :class:`ProducerConfig` values against the fields' annotations.

mypy checks typed code; this checks everything else (untyped callers, ``**dict``, Java
properties) with a :class:`ConfigError` that names the setting and the expected type. It reads
the annotations, so a field added to ``ProducerConfig`` is checked without further work.
"""

from __future__ import annotations

import collections.abc
import types
from typing import Any, Literal, Union, get_args, get_origin

from .errors import ConfigError

_UNIONS = (Union, types.UnionType)


def _is_protocol(tp: Any) -> bool:
    return isinstance(tp, type) and bool(getattr(tp, "_is_protocol", False))


def matches(value: Any, tp: Any, *, literal_values: bool = True) -> bool:
    """Whether ``value`` has type ``tp``. With ``literal_values=False`` a Literal only checks
    the values' types, a Callable and a sequence's items pass (so that a field's own
    validation, which runs next, may word the error)."""
    origin = get_origin(tp)
    if tp is Any or _is_protocol(tp):
        return True
    if origin in _UNIONS:
        return any(matches(value, a, literal_values=literal_values) for a in get_args(tp))
    if origin is Literal:
        args = get_args(tp)
        if not literal_values:
            return type(value) in {type(a) for a in args}
        return any(type(value) is type(a) and value == a for a in args)
    if tp is None or tp is type(None):
        return value is None
    if tp is bool:
        return type(value) is bool
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is collections.abc.Callable:
        return callable(value) or not literal_values
    if origin in (collections.abc.Sequence, list, tuple):
        if not isinstance(value, collections.abc.Sequence) or isinstance(value, (str, bytes)):
            return False
        args = get_args(tp)
        return not args or not literal_values or all(matches(v, args[0]) for v in value)
    if origin in (collections.abc.Mapping, dict):
        return isinstance(value, collections.abc.Mapping)
    if isinstance(tp, type):
        return isinstance(value, tp)
    if isinstance(origin, type):  # another generic alias (os.PathLike[str]): its class
        return isinstance(value, origin)
    return True  # a form this checker does not know: the field's own validation decides


def describe(tp: Any) -> str:
    """``tp`` in words, for error messages."""
    origin = get_origin(tp)
    if origin in _UNIONS:
        return " or ".join(describe(a) for a in get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if tp is None or tp is type(None):
        return "None"
    if origin is collections.abc.Callable:
        return "a callable"
    if origin in (collections.abc.Sequence, list, tuple):
        args = get_args(tp)
        return "a sequence" + (f" of {describe(args[0])}" if args and args[0] is not Any else "")
    names = {bool: "a bool", int: "an integer", float: "a number", str: "a string"}
    if tp in names:
        return names[tp]
    return str(getattr(origin, "__name__", None) or getattr(tp, "__name__", repr(tp)))


def check(name: str, value: Any, tp: Any, *, literal_values: bool = True) -> None:
    """Raise :class:`ConfigError` unless ``value`` has type ``tp``."""
    if not matches(value, tp, literal_values=literal_values):
        raise ConfigError(f"{name}={value!r} must be {describe(tp)}")


def convert_string(name: str, text: str, tp: Any) -> Any:
    """A Java property's string value as the field's type: tried in the order of the union."""
    options = get_args(tp) if get_origin(tp) in _UNIONS else (tp,)
    stripped = text.strip()
    for option in options:
        if option is type(None) and stripped.lower() in ("", "null", "none"):
            return None
        if option is bool and stripped.lower() in ("true", "false"):
            return stripped.lower() == "true"
        if option is int:
            try:
                return int(stripped)
            except ValueError:
                continue
        if option is float:
            try:
                return float(stripped)
            except ValueError:
                continue
        if get_origin(option) is Literal:
            for a in get_args(option):
                if str(a) == stripped and not isinstance(a, bool):
                    return a
        if option is str or option is Any:
            return text
        if get_origin(option) in (collections.abc.Sequence, list, tuple):
            parts = [part.strip() for part in stripped.split(",") if part.strip()]
            # An empty list where None is allowed is None (Java: the default).
            return parts if parts or type(None) not in options else None
    raise ConfigError(f"{name}={text!r} cannot be read as {describe(tp)}")


__all__ = ("check", "convert_string", "describe", "matches")
