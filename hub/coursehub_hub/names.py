"""Small helpers on lists of names, shared by the config, the patches and the reconciler."""

from __future__ import annotations

from collections.abc import Iterable


def batches(names: list[str], size: int) -> Iterable[tuple[str, ...]]:
    """``names`` in bounded runs of ``size``: requests to the hub, ``IN (...)`` lists in a query."""
    return (tuple(names[i : i + size]) for i in range(0, len(names), size))
