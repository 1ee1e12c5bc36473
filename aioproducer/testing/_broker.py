"""What every broker of the harness offers: start, close, ``with``, and topics."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from . import _admin

_B = TypeVar("_B", bound="Broker")
#: Topic-level settings (name to value), as Kafka takes them.
Config = dict[str, str] | None


class Broker:
    """A broker (or cluster) on 127.0.0.1 for tests: ``with Kind(...) as b:`` starts it and
    stops it, whatever happens; ``b.bootstrap_servers`` is where clients connect."""

    if TYPE_CHECKING:

        @property
        def bootstrap_servers(self) -> str: ...

    def start(self: _B) -> _B:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = 1,
        config: dict[str, str] | None = None,
    ) -> None:
        """Create a topic and wait for its leaders."""
        self._create_topic(name, partitions, replication_factor, config)

    def _create_topic(self, name: str, partitions: int, rf: int, cfg: Config) -> None:
        """Through the admin API of confluent-kafka, a client we did not write."""
        _admin.create_topic(self.bootstrap_servers, name, partitions, rf, cfg)

    def __enter__(self: _B) -> _B:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
