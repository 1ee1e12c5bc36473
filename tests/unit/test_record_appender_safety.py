"""The record appenders under hostile input.

Buffers that change size between two requests, a headers list emptied while it is read, an
append made from inside another append, objects that fail half-way through: the compiled
appender (``_speedups.c``) must never write out of bounds, leave a half-appended record, keep
a buffer export or a reference, or raise ``SystemError``; and both appenders must behave
alike (same result, same exception type and message, same bytes).

Odd buffer exporters are made with ctypes (a heap type whose ``bf_getbuffer`` is a Python
callback), so the tests run on every Python version, not only on 3.12+ with ``__buffer__``.
The scenarios that crashed the interpreter before the fix (a heap overflow, a NULL read) run in
a subprocess: a segfault is a failed test, not a dead pytest.
"""

from __future__ import annotations

import ctypes
import gc
import pickle
import subprocess
import sys
from array import array
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aioproducer._records import record_batch as batch_module
from aioproducer._records.reader import BATCH_OVERHEAD, read_batches
from aioproducer._records.record_batch import PyRecordBatchBuilder
from aioproducer.errors import BadRecordError

ROOT = Path(__file__).resolve().parents[2]
IMPLS = ["python", "c"]


def builder_for(impl: str) -> type[PyRecordBatchBuilder]:
    if impl == "python":
        return PyRecordBatchBuilder
    if batch_module.CRecordBatchBuilder is None:
        pytest.fail("the compiled record buffer (aioproducer/_records/_speedups.c) is not built")
    return batch_module.CRecordBatchBuilder  # type: ignore[return-value]


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    builder_for(request.param)
    return str(request.param)


def records_of(b: PyRecordBatchBuilder) -> list[tuple[int, int, Any, Any, list[Any]]]:
    [batch] = read_batches(b.build())
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch.records]


# -- a buffer exporter whose every request can differ ---------------------------------------------


class _Slot(ctypes.Structure):
    _fields_ = [("slot", ctypes.c_int), ("pfunc", ctypes.c_void_p)]


class _Spec(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("basicsize", ctypes.c_int),
        ("itemsize", ctypes.c_int),
        ("flags", ctypes.c_uint),
        ("slots", ctypes.POINTER(_Slot)),
    ]


_api = ctypes.pythonapi
_api.PyBuffer_FillInfo.argtypes = [
    ctypes.c_void_p,
    ctypes.py_object,
    ctypes.c_void_p,
    ctypes.c_ssize_t,
    ctypes.c_int,
    ctypes.c_int,
]
_api.PyBuffer_FillInfo.restype = ctypes.c_int
_api.PyType_FromSpec.argtypes = [ctypes.POINTER(_Spec)]
_api.PyType_FromSpec.restype = ctypes.py_object
_GETBUFFER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_void_p, ctypes.c_int)
_Py_bf_getbuffer = 1
_FLAGS = (1 << 18) | (1 << 10)  # Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE


def _getbuffer(obj: Exporter, view: int, flags: int) -> int:
    try:  # an exception escaping a ctypes callback would leave the view unfilled
        address, length = obj.serve()
    except BaseException as exc:  # pragma: no cover - a bug in a test, reported by the test
        obj.errors.append(exc)
        address, length = None, 0
    return int(_api.PyBuffer_FillInfo(view, obj, address, length, 1, flags))


_getbuffer_c = _GETBUFFER(_getbuffer)  # module globals: the type points at all of these
_slots = (_Slot * 2)(_Slot(_Py_bf_getbuffer, ctypes.cast(_getbuffer_c, ctypes.c_void_p)), _Slot())
_spec = _Spec(b"test_record_appender_safety.ExporterBase", object.__basicsize__, 0, _FLAGS, _slots)
_ExporterBase: type = _api.PyType_FromSpec(ctypes.byref(_spec))


class Exporter(_ExporterBase):  # type: ignore[misc]
    """Exports ``chunks[i]`` on its i-th buffer request (the last one ever after), after calling
    ``on_request`` (which may do anything: mutate a list, append to the builder, seal it)."""

    def __init__(
        self,
        *chunks: bytes,
        on_request: Callable[[], object] | None = None,
        length: int | None = None,
        null: bool = False,
    ) -> None:
        self.chunks = [ctypes.create_string_buffer(c, len(c)) for c in chunks]
        self.asked = 0
        self.on_request = on_request
        self.length = length  # a lie about the length, when given
        self.null = null  # a NULL buffer pointer
        self.errors: list[BaseException] = []

    def serve(self) -> tuple[int | None, int]:
        chunk = self.chunks[min(self.asked, len(self.chunks) - 1)]
        self.asked += 1
        if self.on_request is not None:
            on_request, self.on_request = self.on_request, None
            on_request()
        length = len(chunk) if self.length is None else self.length
        return (None if self.null else ctypes.addressof(chunk)), length


def test_the_exporter_serves_a_new_buffer_per_request() -> None:
    e = Exporter(b"abc", b"defgh")
    assert (bytes(memoryview(e)), bytes(memoryview(e)), e.asked) == (b"abc", b"defgh", 2)


# -- scenarios run in a subprocess (they crashed the interpreter before the fix) ------------------


def run_isolated(scenario: Callable[[str], None], impl: str) -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        f"from tests.unit.test_record_appender_safety import {scenario.__name__}\n"
        f"{scenario.__name__}({impl!r})\n"
        "print('scenario passed')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    how = (
        f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
    )
    assert proc.returncode == 0 and "scenario passed" in proc.stdout, (
        f"{scenario.__name__}({impl!r}): {how}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )


def scenario_header_value_grows_on_a_second_request(impl: str) -> None:
    # Measured at 1 byte, then (if asked again) 64 MiB: copying the second into room made
    # for the first overflowed the heap.
    b = builder_for(impl)(batch_size=1 << 20, max_size=1 << 20)
    value = Exporter(b"x", b"y" * (64 << 20))
    assert b.try_append(5, None, b"v", [("h", value)]) == 0
    assert b.try_append(6, b"k", None, [("h2", b"z")]) == 1  # appending still works
    assert records_of(b) == [(0, 5, None, b"v", [("h", b"x")]), (1, 6, b"k", None, [("h2", b"z")])]
    assert value.asked == 1


def scenario_header_value_shrinks_on_a_second_request(impl: str) -> None:
    # Measured at 4 KiB, then 1 byte: the record's length said 4 KiB, its bytes were 1 byte
    # and 4 KiB of whatever the heap held.
    b = builder_for(impl)(batch_size=1 << 20, max_size=1 << 20)
    big = bytes(range(256)) * 16
    value = Exporter(big, b"!")
    assert b.try_append(5, None, b"v", [("a", b"1"), ("h", value)]) == 0
    assert records_of(b) == [(0, 5, None, b"v", [("a", b"1"), ("h", big)])]
    assert value.asked == 1


def scenario_key_and_value_change_on_a_second_request(impl: str) -> None:
    b = builder_for(impl)(batch_size=1 << 20, max_size=1 << 20)
    key, value = Exporter(b"k", b"K" * (16 << 20)), Exporter(b"value", b"V" * (16 << 20))
    assert b.try_append(5, key, value) == 0
    assert records_of(b) == [(0, 5, b"k", b"value", [])]
    assert (key.asked, value.asked) == (1, 1)


def scenario_headers_list_emptied_while_read(impl: str) -> None:
    # The first header value's buffer request empties the list: the compiled appender then
    # read the list's freed item array.
    b = builder_for(impl)(batch_size=1 << 20, max_size=1 << 20)
    headers: list[tuple[str, Any]] = []
    headers += [("a", Exporter(b"1", on_request=headers.clear)), ("b", b"2"), ("c", None)]
    assert b.try_append(5, None, b"v", headers) == 0
    assert headers == []
    assert records_of(b) == [(0, 5, None, b"v", [("a", b"1"), ("b", b"2"), ("c", None)])]


def scenario_null_buffer_with_a_length(impl: str) -> None:
    # An exporter's bug (a NULL pointer with a length) is an error, not a read through NULL.
    # (Only the compiled appender can check: Python's own memoryview trusts the exporter.)
    b = builder_for(impl)()
    with pytest.raises(ValueError, match="record value"):
        b.try_append(5, None, Exporter(b"abc", null=True))
    assert b.record_count == 0 and b.try_append(5, None, b"v") == 0


def scenario_append_after_tp_clear(impl: str) -> None:
    # The cyclic GC's tp_clear drops the buffer; a method called afterwards (from a finalizer,
    # say) dereferenced the NULL pointer.
    b = builder_for(impl)()
    b.try_append(5, None, b"v")
    _api.PyType_GetSlot.argtypes = [ctypes.py_object, ctypes.c_int]
    _api.PyType_GetSlot.restype = ctypes.c_void_p
    tp_clear = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.py_object)(
        # Slot 51 is Py_tp_clear, of the compiled buffer type (a private, not re-exported name).
        _api.PyType_GetSlot(batch_module._CRecordBuffer, 51)  # type: ignore[attr-defined]
    )
    tp_clear(b)
    with pytest.raises(ValueError, match="released"):
        b.try_append(6, None, b"v")
    with pytest.raises(ValueError, match="released"):
        b.append_record(Batch(), 6, None, b"v", None, None)  # type: ignore[attr-defined]
    assert not b.is_full()


ISOLATED = [
    scenario_header_value_grows_on_a_second_request,
    scenario_header_value_shrinks_on_a_second_request,
    scenario_key_and_value_change_on_a_second_request,
    scenario_headers_list_emptied_while_read,
]
ISOLATED_C = [scenario_null_buffer_with_a_length, scenario_append_after_tp_clear]


def _name(scenario: Callable[[str], None]) -> str:
    return scenario.__name__.removeprefix("scenario_")


@pytest.mark.parametrize("scenario", ISOLATED, ids=_name)
def test_isolated(scenario: Callable[[str], None], impl: str) -> None:
    run_isolated(scenario, impl)


@pytest.mark.parametrize("scenario", ISOLATED_C, ids=_name)
def test_isolated_compiled(scenario: Callable[[str], None]) -> None:
    builder_for("c")
    run_isolated(scenario, "c")


# -- Python code running in the middle of an append ------------------------------------------------


def test_an_append_from_inside_an_append_keeps_the_batch_consistent(impl: str) -> None:
    # The offset delta was read before the key's buffer was: both records got offset delta 0.
    b = builder_for(impl)()
    key = Exporter(b"outer", on_request=lambda: b.try_append(3, None, b"inner"))
    assert b.try_append(5, key, b"v") == 1
    assert records_of(b) == [(0, 3, None, b"inner", []), (1, 5, b"outer", b"v", [])]


def test_an_append_into_a_batch_sealed_meanwhile_does_not_happen(impl: str) -> None:
    # The sealed check came before the value's buffer was taken: the record went into the
    # sealed payload (the same bytearray, uncompressed), behind the CRC's back.
    b = builder_for(impl)()
    b.try_append(3, None, b"first")
    assert b.try_append(5, None, Exporter(b"late", on_request=b.seal)) == -1
    assert records_of(b) == [(0, 3, None, b"first", [])]


def test_headers_changed_while_the_value_is_taken(impl: str) -> None:
    # The headers were measured before the value's buffer was taken and written after: the
    # record's length counted two headers, its bytes held none.
    b = builder_for(impl)()
    headers: list[tuple[str, bytes | None]] = [("a", b"1"), ("b", None)]
    assert b.try_append(5, None, Exporter(b"v", on_request=headers.clear), headers) == 0
    assert b.try_append(6, None, b"w", [("c", b"3")]) == 1
    assert records_of(b) == [(0, 5, None, b"v", []), (1, 6, None, b"w", [("c", b"3")])]


class HeaderList(list):  # type: ignore[type-arg]
    pass


@pytest.mark.parametrize(
    "make",
    [list, tuple, HeaderList, iter, lambda h: (x for x in h)],
    ids=["list", "tuple", "list subclass", "iterator", "generator"],
)
def test_headers_may_be_any_iterable_of_pairs(impl: str, make: Callable[[Any], Any]) -> None:
    pairs = [("a", b"1"), ("b", None), ("c", bytearray(b"3")), ("d", memoryview(b"4"))]
    b = builder_for(impl)()
    assert b.try_append(5, None, b"v", make(pairs)) == 0
    assert b.try_append(6, None, b"w", make(pairs[:2])) == 1  # bytes and None only
    assert b.try_append(7, None, b"x", make([])) == 2
    assert b.try_append(8, None, b"y", deque()) == 3  # false: no headers
    assert records_of(b) == [
        (0, 5, None, b"v", [("a", b"1"), ("b", None), ("c", b"3"), ("d", b"4")]),
        (1, 6, None, b"w", [("a", b"1"), ("b", None)]),
        (2, 7, None, b"x", []),
        (3, 8, None, b"y", []),
    ]


# -- a failed append leaves the batch exactly as it was --------------------------------------------


class BadIndex:
    def __index__(self) -> int:
        raise ValueError("no index")


def _released() -> memoryview:
    m = memoryview(b"gone")
    m.release()
    return m


# name -> (b, held) -> (timestamp, key, value, headers, exception): an append that must fail
# without a trace; ``held`` is a bytearray whose buffer it takes (and must give back).
Bad = Callable[[PyRecordBatchBuilder, bytearray], tuple[Any, Any, Any, Any, type]]
BAD: dict[str, Bad] = {
    "str key": lambda b, h: (5, "text", h, None, TypeError),
    "int value": lambda b, h: (5, h, 5, None, TypeError),
    "str header value": lambda b, h: (5, b"k", b"v", [("a", h), ("k", "x")], TypeError),
    "header not a pair": lambda b, h: (5, b"k", b"v", [("a", h), ("k", b"", b"")], TypeError),
    "header as a list": lambda b, h: (5, h, b"v", [["h", b"x"]], TypeError),
    "bytes header key": lambda b, h: (5, h, b"v", [(b"h", b"x")], TypeError),
    "surrogate header key": lambda b, h: (5, b"k", b"v", [("a", h), ("\ud800", b"")], ValueError),
    "headers not iterable": lambda b, h: (5, h, h, 5, TypeError),
    "released memoryview": lambda b, h: (5, h, _released(), None, ValueError),
    "negative length": lambda b, h: (5, h, Exporter(b"abc", length=-3), None, ValueError),
    "negative timestamp": lambda b, h: (-1, b"k", b"v", None, BadRecordError),
    "timestamp too large": lambda b, h: (1 << 63, b"k", b"v", None, BadRecordError),
    "timestamp not an int": lambda b, h: (5.5, b"k", b"v", None, TypeError),
    "timestamp index fails": lambda b, h: (BadIndex(), b"k", b"v", None, ValueError),
    "the builder's own buffer": lambda b, h: (5, b._buf, h, None, ValueError),
    "a view of the builder's buffer": lambda b, h: (5, h, memoryview(b._buf), None, ValueError),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_failed_append_leaves_the_batch_unchanged(impl: str, case: str) -> None:
    cls = builder_for(impl)
    b, ref = cls(), cls()
    for x in (b, ref):
        assert x.try_append(4, b"k", b"first", [("h", b"v")]) == 0
    held = bytearray(b"held")
    ts, key, value, headers, expected = BAD[case](b, held)
    before = (b.uncompressed_size, b.record_count, b.is_full(), bytes(b._buf))
    with pytest.raises(expected) as info:
        b.try_append(ts, key, value, headers)
    assert type(info.value) is not SystemError
    assert (b.uncompressed_size, b.record_count, b.is_full(), bytes(b._buf)) == before
    del key, value, headers, info
    held.extend(b"!")  # no export of it was kept (BufferError otherwise)
    for x in (b, ref):
        assert x.try_append(6, None, b"second") == 1
    assert b.build(1, 2, 3) == ref.build(1, 2, 3)


@pytest.mark.parametrize("case", list(BAD))
def test_both_appenders_raise_the_same_error(case: str) -> None:
    errors: list[tuple[type[Exception] | None, str]] = []
    for impl in IMPLS:
        b = builder_for(impl)()
        ts, key, value, headers, _ = BAD[case](b, bytearray(b"held"))
        try:
            b.try_append(ts, key, value, headers)
        except Exception as exc:
            errors.append((type(exc), str(exc)))
        else:
            errors.append((None, ""))
    assert errors[0] == errors[1]


# -- the compiled append_record: the handle's fields and its failures ------------------------------


class Batch:
    def __init__(self) -> None:
        self.handles: list[Any] = []


class IndexOnce:
    """A timestamp whose __index__ works once."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.calls = 0

    def __index__(self) -> int:
        self.calls += 1
        if self.calls > 1:
            raise ValueError("__index__ called twice")
        return self.value


def test_append_record_reads_the_timestamp_once() -> None:
    # It was read again for the handle, after the record was appended: a second __index__
    # that raises gave SystemError (a handle returned with an exception set).
    b = builder_for("c")()
    batch = Batch()
    ts = IndexOnce(7)
    h = b.append_record(batch, ts, b"k", b"v", None, None)  # type: ignore[attr-defined]
    assert (h.timestamp, ts.calls, batch.handles) == (7, 1, [h])
    assert records_of(b) == [(0, 7, b"k", b"v", [])]


def test_append_record_sizes_are_byte_counts() -> None:
    # PyObject_Length of a PickleBuffer failed after the record was appended (SystemError);
    # of a memoryview of 4-byte items it gave the item count.
    b = builder_for("c")()
    batch = Batch()
    key = pickle.PickleBuffer(b"key")
    value = memoryview(array("I", [1, 2, 3]))
    h = b.append_record(batch, 5, key, value, None, None)  # type: ignore[attr-defined]
    assert (h.key_size, h.value_size, h.relative_offset, h.timestamp) == (3, 12, 0, 5)
    h2 = b.append_record(batch, 6, None, None, None, None)  # type: ignore[attr-defined]
    assert (h2.key_size, h2.value_size, h2.relative_offset) == (-1, -1, 1)
    assert batch.handles == [h, h2]
    assert records_of(b) == [(0, 5, b"key", value.tobytes(), []), (1, 6, None, None, [])]


class NoHandles:
    pass


class TupleHandles:
    handles = ()


@pytest.mark.parametrize(
    ("batch", "expected"), [(NoHandles(), AttributeError), (TupleHandles(), TypeError)]
)
def test_a_failed_append_record_leaves_the_batch_unchanged(batch: object, expected: type) -> None:
    # The record was appended first and the handle list looked up after: an AttributeError (or
    # a SystemError from PyList_Append on a tuple) left a record without a handle.
    b, ref = builder_for("c")(), builder_for("c")()
    for x in (b, ref):
        x.try_append(4, None, b"first")
    with pytest.raises(expected):
        b.append_record(batch, 5, b"k", b"v", None, None)  # type: ignore[attr-defined]
    assert b.record_count == 1
    assert b.build() == ref.build()


def test_no_reference_or_export_is_kept() -> None:
    b = builder_for("c")(batch_size=1 << 30, max_size=1 << 30)
    batch = Batch()
    key, value, hv = bytearray(b"key"), _strided(b"value"), bytearray(b"hv")
    headers = [("h", hv), ("n", None)]
    bad_headers = [*headers, ("bad", "str")]
    callback = object()
    objs = [key, value, hv, headers, bad_headers, callback, batch]
    before = [sys.getrefcount(o) for o in objs]
    append_record = b.append_record  # type: ignore[attr-defined]
    # Header values may be any bytes-like at run time; Header is typed (str, bytes | None) in
    # record_batch.py (a product annotation), hence the arg-type ignores.
    for i in range(200):
        assert b.try_append(i, key, value, headers) == 2 * i  # type: ignore[arg-type]
        assert append_record(batch, i, key, value, headers, callback).relative_offset == 2 * i + 1
        with pytest.raises(TypeError):
            b.try_append(i, key, value, bad_headers)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            append_record(batch, i, key, value, bad_headers, callback)
    batch.handles.clear()
    gc.collect()
    assert [sys.getrefcount(o) for o in objs] == before
    key.extend(b"!")  # no export kept (BufferError otherwise)
    hv.extend(b"!")
    assert b.record_count == 400


# -- bytes-like inputs of every shape -------------------------------------------------------------


def _strided(data: bytes) -> memoryview:
    spaced = bytearray(2 * len(data))
    spaced[::2] = data
    return memoryview(bytes(spaced))[::2]


class LyingLength(bytearray):
    def __len__(self) -> int:
        return 1


# name -> a bytes-like object made from 8 bytes
KINDS: dict[str, Callable[[bytes], Any]] = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "memoryview of 4-byte items": lambda d: memoryview(d).cast("I"),
    "array of ints": lambda d: array("i", d),
    "2-D memoryview": lambda d: memoryview(d).cast("B", shape=[2, 4]),
    "non-contiguous memoryview": _strided,
    "non-contiguous memoryview of 4-byte items": lambda d: memoryview(d * 2).cast("I")[::2],
    "0-dim memoryview": lambda d: memoryview(ctypes.c_uint64.from_buffer_copy(d)),
    "pickle.PickleBuffer": pickle.PickleBuffer,
    "bytearray with a lying __len__": LyingLength,
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_bytes_like_inputs_are_written_as_their_bytes(impl: str, kind: str) -> None:
    # The pure appender took len() for the byte length: a memoryview of wider items (or with
    # 2 dimensions, or a lying __len__) wrote a corrupt record; the compiled one refused
    # non-contiguous memoryviews with a misleading "must be bytes-like".
    obj = KINDS[kind](bytes(range(1, 9)))
    expected = memoryview(obj).tobytes()
    assert len(expected) in (4, 8)
    b = builder_for(impl)(batch_size=1 << 20, max_size=1 << 20)
    size = b.record_size(0, 0, obj, obj, [("h", obj)])
    assert b.try_append(5, obj, obj, [("h", obj)]) == 0
    assert b.uncompressed_size - BATCH_OVERHEAD == size
    assert records_of(b) == [(0, 5, expected, expected, [("h", expected)])]


# -- the compiled buffer's growth -----------------------------------------------------------------


def test_the_compiled_buffer_grows_by_doubling_and_writes_the_same_bytes() -> None:
    """bytearray's own growth (1/8) reallocated a 16 KiB batch of 1 KiB records, copying it whole,
    on nearly every record; the compiled appender doubles its allocation up to the batch's soft
    limit. The batch it builds is byte for byte the pure-Python one."""
    c, py = builder_for("c")(batch_size=16384), builder_for("python")(batch_size=16384)
    allocations = {sys.getsizeof(c._buf)}
    od = 0
    while (got := c.try_append(1000 + od, b"key-%d" % od, bytes([od]) * 1000, None)) >= 0:
        assert py.try_append(1000 + od, b"key-%d" % od, bytes([od]) * 1000, None) == got == od
        allocations.add(sys.getsizeof(c._buf))
        od += 1
    assert od == 16
    assert len(allocations) <= 7, sorted(allocations)  # 0, then ~1, 2, 4, 8, 16 KiB
    assert sys.getsizeof(c._buf) < 16384 + 1024  # capped at the soft limit, not doubled past it
    assert c.build(7, 1, 0) == py.build(7, 1, 0)
