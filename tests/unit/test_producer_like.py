"""``aioproducer.ProducerLike``: the one type that ``Producer`` and ``MockProducer`` both are.

Two guards against drift between the real producer and the mock:

* mypy (``mypy --strict`` runs over ``tests``): both classes subclass the Protocol, and this
  module assigns both to it and passes both to code annotated with it, so a method whose
  signature or return type no longer fits fails type checking;
* at run time, :func:`signature_drift` compares every shared method's parameters (names,
  kinds, defaults) and whether it is a coroutine function, between the Protocol (and
  ``TransactionalProducerLike``, its transaction methods), ``Producer`` and ``MockProducer``
  (the parameters are what a caller's keywords depend on; mypy alone accepts, say, a
  renamed positional parameter nobody passes by keyword in the test code).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import pytest

from aioproducer import (
    Producer,
    ProducerInterceptor,
    ProducerLike,
    ProducerRecord,
    TransactionalProducerLike,
)
from aioproducer.errors import NotEnoughReplicasError
from aioproducer.metrics import value_of
from aioproducer.testing import MockProducer


def shared_members(protocol: type = ProducerLike) -> dict[str, Any]:
    """The Protocol's methods and properties, by name (the ones it defines itself)."""
    return {
        name: member
        for name, member in vars(protocol).items()
        if isinstance(member, property)
        or (inspect.isfunction(member) and member.__qualname__.startswith(protocol.__name__))
    }


def _shape(member: Any) -> tuple[Any, ...]:
    if isinstance(member, property):
        return ("property",)
    params = [(p.name, p.kind, p.default) for p in inspect.signature(member).parameters.values()]
    return (inspect.iscoroutinefunction(member), params)


def signature_drift(cls: type, protocol: type = ProducerLike) -> list[str]:
    """How ``cls`` differs from ``protocol``, member by member (empty: it does not)."""
    out = []
    for name, member in shared_members(protocol).items():
        theirs = inspect.getattr_static(cls, name, None)
        if theirs is None:
            out.append(f"{cls.__name__}.{name} is missing")
        elif _shape(theirs) != _shape(member):
            out.append(f"{cls.__name__}.{name}: {_shape(theirs)} != {_shape(member)}")
    return out


def test_the_protocol_covers_the_shared_api() -> None:
    assert set(shared_members()) == {
        "__aenter__",
        "__aexit__",
        "close",
        "flush",
        "metrics",
        "partitions_for",
        "send",
        "send_and_wait",
        "send_many",
        "start",
        "state",
    }


@pytest.mark.parametrize("cls", [Producer, MockProducer])
def test_producer_and_mock_have_the_protocols_signatures(cls: type) -> None:
    assert signature_drift(cls) == []
    assert ProducerLike in cls.__mro__  # mypy checks each where it is defined


def test_the_transactional_protocol_covers_the_transaction_methods() -> None:
    assert set(shared_members(TransactionalProducerLike)) == {
        "abort_transaction",
        "begin_transaction",
        "commit_transaction",
        "complete_transaction",
        "prepare_transaction",
        "send_offsets_to_transaction",
        "transaction",
    }


@pytest.mark.parametrize("cls", [Producer, MockProducer])
def test_producer_and_mock_have_the_transaction_methods_signatures(cls: type) -> None:
    """The mock's transaction methods are the real producer's, parameter by parameter (and
    ``begin_transaction`` and ``transaction()`` are not coroutine functions in either)."""
    assert signature_drift(cls, TransactionalProducerLike) == []
    assert TransactionalProducerLike in cls.__mro__


def test_the_drift_check_catches_drifted_transaction_methods() -> None:
    class Drifted:
        async def begin_transaction(self) -> None: ...  # a coroutine

        async def commit_transaction(self, timeout: float | None = None) -> None: ...  # extra

        async def send_offsets_to_transaction(self, offsets: Any, group: Any) -> None: ...

    drift = signature_drift(Drifted, TransactionalProducerLike)
    assert sorted(d.split(":")[0].split(" ")[0] for d in drift) == [
        "Drifted.abort_transaction",
        "Drifted.begin_transaction",
        "Drifted.commit_transaction",
        "Drifted.complete_transaction",
        "Drifted.prepare_transaction",
        "Drifted.send_offsets_to_transaction",
        "Drifted.transaction",
    ]


def test_the_drift_check_catches_a_drifted_producer() -> None:
    """The comparison above can fail: a class that renames, reorders, drops a default or
    makes a coroutine method synchronous is reported, one line per member."""

    class Drifted:
        state = property(lambda self: "new")

        async def start(self) -> None: ...

        async def close(self, timeout: float | None = 5.0) -> None: ...  # default

        async def send(  # a parameter renamed
            self,
            topic: str,
            value: Any = None,
            key: Any = None,
            partition: int | None = None,
            timestamp: int | None = None,
            headers: Sequence[tuple[str, bytes | None]] | None = None,
            callback: Any = None,
        ) -> Any: ...

        def flush(self, timeout: float | None = None) -> None: ...  # not a coroutine

        async def partitions_for(self, *, topic: str) -> list[int]:  # keyword-only
            return []

    drift = signature_drift(Drifted)
    assert sorted(d.split(":")[0].split(" ")[0] for d in drift) == [
        "Drifted.__aenter__",
        "Drifted.__aexit__",
        "Drifted.close",
        "Drifted.flush",
        "Drifted.metrics",
        "Drifted.partitions_for",
        "Drifted.send",
        "Drifted.send_and_wait",
        "Drifted.send_many",
    ]


async def publish_order(producer: ProducerLike, order_id: bytes) -> int:
    """Code under test, annotated with the Protocol: it takes the real producer or the mock."""
    acks: list[Any] = []
    async with producer:
        fut = await producer.send(
            "orders", b"{}", key=order_id, callback=lambda m, e: acks.append(e)
        )
        md = await producer.send_and_wait("audit", order_id, headers=[("h", b"1")])
        await producer.flush()
        assert (await fut).topic == "orders" and md.topic == "audit" and acks == [None]
        assert producer.state == "running"
        return len(await producer.partitions_for("orders"))


@pytest.mark.asyncio
async def test_code_typed_with_the_protocol_runs_on_the_mock() -> None:
    mock = MockProducer(partitions={"orders": 4})
    assert await publish_order(mock, b"o-1") == 4
    assert [r.topic for r in mock.history()] == ["orders", "audit"]
    assert mock.state == "closed"


def test_both_assign_to_the_protocol() -> None:
    """What mypy checks here: both are ``ProducerLike`` as instances and as classes."""
    real: ProducerLike = Producer(bootstrap_servers="127.0.0.1:9")
    mock: ProducerLike = MockProducer()
    txn_real: TransactionalProducerLike = Producer(transactional_id="t")
    txn_mock: TransactionalProducerLike = MockProducer(transactional_id="t")
    assert all(isinstance(p, TransactionalProducerLike) for p in (txn_real, txn_mock))
    classes: list[type[ProducerLike]] = [Producer, MockProducer]
    assert all(isinstance(p, ProducerLike) for p in (real, mock))
    assert [c.__name__ for c in classes] == ["Producer", "MockProducer"]
    assert real.state == mock.state == "new"


@pytest.mark.asyncio
async def test_the_mocks_metrics_have_the_real_producers_names() -> None:
    async with MockProducer(auto_complete=False, client_id="app") as p:
        for _ in range(3):
            await p.send("t", b"x")
        p.complete_next()
        p.error_next(NotEnoughReplicasError("injected"))
        p.complete_next()
        m = p.metrics()
    assert value_of(m, "record-send-total") == 2.0
    assert value_of(m, "record-error-total") == 1.0
    assert {(k.group, dict(k.tags)["client-id"]) for k in m} == {("producer-metrics", "app")}


@pytest.mark.asyncio
async def test_the_mock_runs_on_send_callback_interceptors_as_the_producer() -> None:
    """An interceptor's ``on_send_callback`` (tracing's span end) sees each record's outcome,
    before the record's own callback: the mock ignored it before ProducerLike."""
    seen: list[tuple[str, int | None, str | None]] = []

    class Spans(ProducerInterceptor):
        def on_send_callback(self, record: ProducerRecord) -> Any:
            return lambda md, exc: seen.append(
                ("span", md and md.offset, exc and type(exc).__name__)
            )

    async with MockProducer(auto_complete=False, interceptors=[Spans()]) as p:
        await p.send(
            "t", b"a", callback=lambda md, exc: seen.append(("own", md and md.offset, None))
        )
        await p.send("t", b"b")
        p.complete_next()
        p.error_next(NotEnoughReplicasError("x"))
    assert seen == [("span", 0, None), ("own", 0, None), ("span", None, "NotEnoughReplicasError")]
