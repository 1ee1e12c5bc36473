"""Public classes name the public module they are imported from in ``__module__``, not the
private one that defines them (as anyio does), so that reprs, docs and pickles show the path a
user writes: ``aioproducer.Producer``, not ``aioproducer.producer.Producer``.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any


def publish(cls: type, module: str, namespace: dict[str, Any] | None = None) -> None:
    """Make ``module`` the ``__module__`` of ``cls``.

    Its string annotations (``from __future__ import annotations``) are evaluated first, in
    ``namespace``, by default that of the module that defines ``cls``: ``typing.get_type_hints``
    (dataclass loaders, Sphinx, pydantic) looks them up in ``__module__``'s namespace, where
    ``Sequence`` or ``ClassVar`` are not. An annotation that cannot be evaluated here (a name
    imported under ``TYPE_CHECKING``) stays a string; tests/unit/test_public_api.py checks that
    none does.
    """
    own = inspect.get_annotations(cls)
    if any(isinstance(v, str) for v in own.values()):
        ns = vars(sys.modules[cls.__module__]) if namespace is None else namespace
        try:
            cls.__annotations__ = inspect.get_annotations(cls, globals=ns, eval_str=True)
        except NameError:
            pass
    if cls.__module__ != module:  # the compiled RecordFuture names aioproducer already
        cls.__module__ = module
