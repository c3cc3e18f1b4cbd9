"""Which key paths differ between two versions of a private values layer, with every value redacted.

One line per key path, `added`, `removed` or `changed`, then the kind of value in brackets, never the value:
a list is its key with a count (`(list: 3 -> 4 items)`), never its items, and some maps only down to a key whose
name is not private, with a count of what is under it: the membership map to its groups (`members.<group>`; the
students in them are private), the hub's settings to each trait (`hub.config.<Class>.<trait>`: JupyterHub's
token maps, `JupyterHub.service_tokens` and `api_tokens`, are keyed by the token), and any map under a key whose
name says credential (secret, token, password, key). A key that equals any value of either version (a student's
name used as a key, a secret pasted into a key) is printed as `<redacted>`, and a key that is not plain text (a
dot, a space, a control character) is printed quoted, so no key can pass for another line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

Key = tuple[str, ...]
# The group -> students map: compared per group, never below it.
MEMBERS: Key = ("jupyterhub", "custom", "coursehub", "members")
# The hub's traitlets settings (`<Class>.<trait>` below it): compared per trait, never below one.
HUB_CONFIG: Key = ("jupyterhub", "hub", "config")
# A key named like a credential: a map under it may be keyed by secrets.
CREDENTIAL_NAME = re.compile(r"secret|token|passw|key|credential", re.IGNORECASE)
REDACTED = "<redacted>"
PLAIN_KEY = re.compile(r"[A-Za-z0-9_@:/+-]+")


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """`added|removed|changed <key path> (<kind>)`, one line per key path, in key order."""
    hidden = _strings(old) | _strings(new)
    found = sorted(_compare(old, new, ()), key=lambda change: change[1])
    return [f"{verb} {_path(key, hidden)} ({note})".removesuffix(" ()") for verb, key, note in found]


def _compare(old: Any, new: Any, key: Key) -> Iterator[tuple[str, Key, str]]:
    if isinstance(old, Mapping) and isinstance(new, Mapping) and not _opaque(key):
        for k in [*old, *(k for k in new if k not in old)]:
            sub = (*key, str(k))
            if k not in new:
                yield from _whole("removed", old[k], sub)
            elif k not in old:
                yield from _whole("added", new[k], sub)
            else:
                yield from _compare(old[k], new[k], sub)
    elif not _same(old, new):
        yield "changed", key, _note(old, new)


def _whole(verb: str, value: Any, key: Key) -> Iterator[tuple[str, Key, str]]:
    """A key added or removed with everything under it: each of its leaves."""
    if isinstance(value, Mapping) and value and not _opaque(key):
        for k, v in value.items():
            yield from _whole(verb, v, (*key, str(k)))
    else:
        yield verb, key, _kind(value)


def _opaque(key: Key) -> bool:
    """A key whose map is compared whole, never walked (its keys may be private): a group's entry in the membership
    map (students), a hub trait (`JupyterHub.service_tokens` is keyed by tokens), a credential-named key."""
    group = len(key) == len(MEMBERS) + 1 and key[:-1] == MEMBERS
    trait = len(key) == len(HUB_CONFIG) + 2 and key[: len(HUB_CONFIG)] == HUB_CONFIG
    return group or trait or bool(key and CREDENTIAL_NAME.search(key[-1]))


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (YAML's `1` and `true` differ; key order does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _note(old: Any, new: Any) -> str:
    if isinstance(old, list) and isinstance(new, list):
        return f"list: {len(old)} -> {_count(len(new), 'item')}"
    if isinstance(old, Mapping) and isinstance(new, Mapping):  # an opaque map only: other maps are walked
        return f"map: {len(old)} -> {_count(len(new), 'key')}"
    before, after = _kind(old), _kind(new)
    return "" if before == after else f"{before} -> {after}"


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"map: {_count(len(value), 'key')}"
    if isinstance(value, list):
        return f"list: {_count(len(value), 'item')}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return type(value).__name__  # a YAML date, say


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _strings(value: Any) -> set[str]:
    """Every text value at any depth, list items included."""
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        return set().union(*map(_strings, value))
    return {value} if isinstance(value, str) else set()


def _path(key: Key, hidden: set[str]) -> str:
    return ".".join(
        REDACTED if part in hidden else part if PLAIN_KEY.fullmatch(part) else json.dumps(part) for part in key
    )
