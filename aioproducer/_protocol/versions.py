"""Version negotiation: the highest version of each API that both sides support."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import UnsupportedVersion
from .messages import REQUESTS, ApiVersionsResponse

#: API key -> API name, for error messages.
API_NAMES = {key: cls.__name__.removesuffix("Request") for key, cls in REQUESTS.items()}


def broker_ranges(api_versions_response: ApiVersionsResponse) -> dict[int, tuple[int, int]]:
    """``{api_key: (min, max)}`` from an ApiVersions response."""
    return {a.api_key: (a.min_version, a.max_version) for a in api_versions_response.api_keys}


def pick_version(
    api_key: int,
    broker: Mapping[int, tuple[int, int]],
    ours: tuple[int, int] | None = None,
) -> int:
    """The highest version of ``api_key`` in both our range and the broker's.

    Raises :class:`UnsupportedVersion` naming the API and both ranges when there is none.
    """
    if ours is None:
        cls = REQUESTS.get(api_key)
        if cls is None:
            raise UnsupportedVersion(f"this client does not implement API key {api_key}")
        ours = (cls.VALID_VERSIONS.lo, cls.VALID_VERSIONS.hi)
    name = API_NAMES.get(api_key, f"API key {api_key}")
    theirs = broker.get(api_key)
    if theirs is None:
        raise UnsupportedVersion(f"the broker does not support {name} at all")
    lo, hi = max(ours[0], theirs[0]), min(ours[1], theirs[1])
    if lo > hi:
        raise UnsupportedVersion(
            f"no common version of {name}: client supports {ours[0]}-{ours[1]}, "
            f"broker supports {theirs[0]}-{theirs[1]}"
        )
    return hi
