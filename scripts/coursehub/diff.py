"""`make diff A=stat159 B=data100`: what differs between two courses' images and values."""

from __future__ import annotations

from typing import Any

from coursehub.courses import Course, dotted, get, walk
from coursehub.images import deployed


def _leaves(course: Course) -> dict[str, Any]:
    """Committed values only: the private layer (membership, credentials) never appears in a diff."""
    return {dotted(k): v for k, v in walk(course.committed_values())}


def diff(a: Course, b: Course) -> list[str]:
    lines = [f"--- {a.name}", f"+++ {b.name}"]
    image_a = deployed(a.name, get(a.values(), ("jupyterhub", "singleuser", "image", "tag")))
    image_b = deployed(b.name, get(b.values(), ("jupyterhub", "singleuser", "image", "tag")))
    lines.append(f"image: {image_a.ref} vs {image_b.ref}")
    pins_a, pins_b = image_a.pins(), image_b.pins()
    for name in sorted(pins_a.keys() | pins_b.keys()):
        va, vb = pins_a.get(name), pins_b.get(name)
        if va == vb:
            continue
        if va is None:
            lines.append(f"+ package {name}=={vb}")
        elif vb is None:
            lines.append(f"- package {name}=={va}")
        else:
            lines.append(f"~ package {name}: {va} -> {vb}")
    leaves_a, leaves_b = _leaves(a), _leaves(b)
    for key in sorted(leaves_a.keys() | leaves_b.keys()):
        va, vb = leaves_a.get(key, _MISSING), leaves_b.get(key, _MISSING)
        if va == vb:
            continue
        if va is _MISSING:
            lines.append(f"+ {key}: {vb!r}")
        elif vb is _MISSING:
            lines.append(f"- {key}: {va!r}")
        else:
            lines.append(f"~ {key}: {va!r} -> {vb!r}")
    return lines


_MISSING: Any = object()
