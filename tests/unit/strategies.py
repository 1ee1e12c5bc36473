"""Hypothesis strategies that build any generated message at any version from its schema."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from aioproducer._protocol._schema import Field, Struct

_INTS = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


def _scalar(
    kind: str, struct: type[Struct] | None, version: int, depth: int
) -> st.SearchStrategy[Any]:
    if kind in _INTS:
        return st.integers(*_INTS[kind])
    if kind == "bool":
        return st.booleans()
    if kind == "float64":
        return st.floats(allow_nan=False)
    if kind == "uuid":
        return st.uuids()
    if kind == "string":
        return st.text(max_size=12)
    if kind in ("bytes", "records"):
        return st.binary(max_size=24)
    assert kind == "struct" and struct is not None
    return struct_strategy(struct, version, depth + 1)


def struct_strategy(cls: type[Struct], version: int, depth: int = 0) -> st.SearchStrategy[Any]:
    flexible = version in getattr(cls, "_flexible_", ())
    fields: dict[str, st.SearchStrategy[Any]] = {}
    known_tags = {f.tag for f in cls.FIELDS if f.tag is not None and version in f.tagged}
    f: Field
    for f in cls.FIELDS:
        if version not in f.versions:
            continue
        if f.kind == "array":
            assert f.elem is not None
            elem = _scalar(f.elem, f.struct, version, depth)
            s: st.SearchStrategy[Any] = st.lists(elem, max_size=3 if depth < 2 else 1)
        else:
            s = _scalar(f.kind, f.struct, version, depth)
        if version in f.nullable:
            s = st.one_of(st.none(), s)
        fields[f.attr] = s
    if flexible:
        fields["unknown_tags"] = st.dictionaries(
            st.integers(0, 200).filter(lambda t: t not in known_tags),
            st.binary(max_size=8),
            max_size=2,
        )
    return st.builds(cls, **fields)
