"""`make diff A=stat159 B=data100`: what differs between two courses' images and values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coursehub.courses import Course, dotted, get, walk
from coursehub.images.build import deployed


def _leaves(course: Course) -> dict[str, Any]:
    """Committed values only: the private layer (membership, credentials) never appears in a diff."""
    return {dotted(k): v for k, v in walk(course.committed_values())}


def diff(a: Course, b: Course) -> list[str]:
    lines = [f"--- {a.name}", f"+++ {b.name}"]
    image_a = deployed(a.name, get(a.values(), ("jupyterhub", "singleuser", "image", "tag")))
    image_b = deployed(b.name, get(b.values(), ("jupyterhub", "singleuser", "image", "tag")))
    lines.append(f"image: {image_a.ref} vs {image_b.ref}")
    lines += _compare(
        image_a.pins(),
        image_b.pins(),
        lambda name, v: f"package {name}=={v}",
        lambda name, va, vb: f"package {name}: {va} -> {vb}",
    )
    lines += _compare(
        _leaves(a), _leaves(b), lambda key, v: f"{key}: {v!r}", lambda key, va, vb: f"{key}: {va!r} -> {vb!r}"
    )
    return lines


def _compare(
    a: dict[str, Any], b: dict[str, Any], one: Callable[[str, Any], str], both: Callable[[str, Any, Any], str]
) -> list[str]:
    """`+` only in b, `-` only in a, `~` in both but different; by key."""
    lines = []
    for key in sorted(a.keys() | b.keys()):
        if key not in a:
            lines.append("+ " + one(key, b[key]))
        elif key not in b:
            lines.append("- " + one(key, a[key]))
        elif a[key] != b[key]:
            lines.append("~ " + both(key, a[key], b[key]))
    return lines
