"""Courses and their value layers, merged the way Helm merges them.

A course's values are, in order (later wins):
  chart/values.yaml                      coursehub's defaults for every course
  values/common.yaml                     what this campus's courses share
  values/<course>.yaml                   the course itself (committed)
  values/<course>.groups.yaml            its groups and their accounts as `make groups` writes them (committed)
  values/<course>.secret.yaml            private: membership, credentials (git-ignored)
    or values/<course>.secret.enc.yaml   the same, sops-encrypted and committed (see ops/sops.py)
    or values/<course>.secret.example.yaml when neither exists
Render, validate and deploy all give Helm the layers as `Course.helm_values`: each
layer's file, and an encrypted layer's plaintext through Helm's standard input.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coursehub.errors import CoursehubError, Problem
from coursehub.ops import sops
from coursehub.paths import CHART, display
from coursehub.paths import values_dir as default_values_dir

COMMON = "common.yaml"
SECRET_SUFFIX = ".secret.yaml"
EXAMPLE_SUFFIX = ".secret.example.yaml"
ENCRYPTED_SUFFIX = ".secret.enc.yaml"
PRIVATE_SUFFIXES = (SECRET_SUFFIX, EXAMPLE_SUFFIX, ENCRYPTED_SUFFIX)
GROUPS_SUFFIX = ".groups.yaml"  # not private: which groups and accounts exist is reviewed like the course file
STDIN = "-"  # Helm's --values name for its standard input

Key = tuple[str, ...]
# Deeper than any chart value needs; PyYAML would otherwise recurse until Python gives up.
MAX_DEPTH = 50


class _Refused(yaml.constructor.ConstructorError):
    """Valid YAML that coursehub refuses, with its own fix."""

    def __init__(self, problem: str, mark: yaml.Mark, fix: str) -> None:
        super().__init__(None, None, problem, mark)
        self.fix = fix


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses what PyYAML silently accepts: a key given twice in one mapping
    (the second `jupyterhub:` block would replace the first) and absurd nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark, "flatten the values"
                )
            return super().compose_node(parent, index)  # type: ignore[no-untyped-call]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise _Refused(
                    f"key {key!r} appears twice in one mapping (first on line {seen[key]})",
                    key_node.start_mark,
                    "keep one of the two: the second would silently replace the first",
                )
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, name: str, keep: bool = True) -> dict[str, Any]:
    """YAML text as a mapping, or one problem naming `name` and the line. `keep`: remember the parse for the next
    read of the same text (not for decrypted secrets, which stay in memory no longer than their reader needs)."""
    try:
        # callers may change what they get; the kept parse stays as parsed
        data = copy.deepcopy(_parsed(text)) if keep else _parsed.__wrapped__(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "somewhere"
        raise CoursehubError(
            Problem(
                name,
                "",
                f"is not valid YAML ({where}: {getattr(e, 'problem', e)})",
                e.fix if isinstance(e, _Refused) else "correct the YAML syntax there",
            )
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CoursehubError(
            Problem(
                name, "", f"must be a mapping of keys, not a {type(data).__name__}", "start the file with `jupyterhub:`"
            )
        )
    return data


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> Any:
    """The strict loader's data for this text, parsed once per process. Every command and check loads the same
    values files again and again (each load_course reads common.yaml, the course's file and its secrets), and
    PyYAML's pure-Python loader, which the strict checks need, takes 3 to 5 ms a file and far longer for a course's
    membership; a copy takes a hundredth of that. A text that does not parse raises each time, as before."""
    return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: plain data only


def load_yaml(path: Path) -> dict[str, Any]:
    """A values file as a mapping, or a problem naming the file and line."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise CoursehubError(
            Problem(display(path), "", f"is not UTF-8 text (line {line})", "save the file as UTF-8")
        ) from None
    return parse_yaml(text, display(path))


def course_names(values_dir: Path | None = None) -> list[str]:
    values_dir = values_dir or default_values_dir()
    return sorted(
        p.name.removesuffix(".yaml")
        for p in values_dir.glob("*.yaml")
        if p.name != COMMON and not p.name.endswith((*PRIVATE_SUFFIXES, GROUPS_SUFFIX))
    )


@dataclass(frozen=True)
class Layer:
    path: Path
    data: dict[str, Any]
    encrypted: bool = False  # path is sops-encrypted; data is its plaintext (held in memory)

    @property
    def name(self) -> str:
        return display(self.path)

    @property
    def private(self) -> bool:
        return self.path.name.endswith(PRIVATE_SUFFIXES)

    @property
    def helm_arg(self) -> str:
        """What Helm's --values gets: the layer's file, or STDIN for an encrypted layer, whose plaintext Helm reads
        from a pipe (Course.helm_input), never from a file."""
        return STDIN if self.encrypted else str(self.path)


@dataclass(frozen=True)
class Course:
    name: str
    course_file: Path
    layers: tuple[Layer, ...]  # the files given to Helm, in order (chart defaults not included)
    chart_defaults: dict[str, Any]

    @property
    def files(self) -> list[Path]:
        """The layers' own files, in order (an encrypted layer as its encrypted file)."""
        return [layer.path for layer in self.layers]

    @property
    def helm_values(self) -> list[str]:
        """What Helm's --values options get, one per layer, in order (STDIN for the encrypted layer)."""
        return [layer.helm_arg for layer in self.layers]

    @property
    def encrypted_file(self) -> Path | None:
        """The sops-encrypted layer's file, if the course has one (at most one: its private layer)."""
        return next((layer.path for layer in self.layers if layer.encrypted), None)

    def helm_input(self) -> str | None:
        """The encrypted layer's plaintext as YAML, for Helm's standard input; None without one."""
        return next((yaml.safe_dump(layer.data, sort_keys=False) for layer in self.layers if layer.encrypted), None)

    @property
    def uses_example_secrets(self) -> bool:
        return any(layer.path.name.endswith(EXAMPLE_SUFFIX) for layer in self.layers)

    def user_values(self) -> dict[str, Any]:
        """The -f files merged as Helm merges them (nulls kept: they delete defaults later)."""
        merged: dict[str, Any] = {}
        for layer in self.layers:
            merged = merge(merged, layer.data)
        return merged

    def values(self) -> dict[str, Any]:
        """coursehub's effective values: the layers over the chart's defaults."""
        return coalesce(self.user_values(), self.chart_defaults)

    def committed_values(self) -> dict[str, Any]:
        """The effective values without the private layer (nothing secret): for showing to people."""
        merged: dict[str, Any] = {}
        for layer in self.layers:
            if not layer.private:
                merged = merge(merged, layer.data)
        return coalesce(merged, self.chart_defaults)

    def origin(self, key: Key) -> str:
        """The file a user should edit for `key`: the last layer that sets it, else the course file
        (a course overrides coursehub's chart defaults in its own file)."""
        for layer in reversed(self.layers):
            if has_key(layer.data, key):
                return layer.name
        return display(self.course_file)


def load_course(name: str, values_dir: Path | None = None, chart_dir: Path = CHART) -> Course:
    values_dir = values_dir or default_values_dir()
    sops.sweep()  # plaintext that a killed `sops edit` left behind
    course_file = values_dir / f"{name}.yaml"
    if not course_file.is_file():
        known = ", ".join(course_names(values_dir)) or "none"
        raise CoursehubError(
            Problem(
                display(course_file),
                "",
                f"there is no course {name!r} (courses: {known})",
                f"pick one of them, or create {display(course_file)}",
            )
        )
    paths = [values_dir / COMMON] if (values_dir / COMMON).is_file() else []
    paths.append(course_file)
    if (values_dir / f"{name}{GROUPS_SUFFIX}").is_file():
        paths.append(values_dir / f"{name}{GROUPS_SUFFIX}")
    secret = values_dir / f"{name}{SECRET_SUFFIX}"
    encrypted = values_dir / f"{name}{ENCRYPTED_SUFFIX}"
    example = values_dir / f"{name}{EXAMPLE_SUFFIX}"
    if secret.is_file() and encrypted.is_file():
        raise CoursehubError(
            Problem(
                display(secret),
                "",
                f"exists beside {display(encrypted)}, so it is unclear which secrets count",
                f"keep one: `make edit-secrets COURSE={name}` edits the encrypted one; then delete this file",
            )
        )
    if secret.is_file():
        paths.append(secret)
    elif not encrypted.is_file() and example.is_file():
        paths.append(example)
    layers = [Layer(p, load_yaml(p)) for p in paths]
    if encrypted.is_file():
        layers.append(
            Layer(encrypted, parse_yaml(sops.decrypt(encrypted), display(encrypted), keep=False), encrypted=True)
        )
    return Course(name, course_file, tuple(layers), load_yaml(chart_dir / "values.yaml"))


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of two -f files: maps merge key by key, anything else is replaced."""
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def coalesce(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of given values over a chart's defaults: a null deletes the key."""
    out = copy.deepcopy(dict(defaults))
    for k, v in values.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = coalesce(v, out[k])
        else:
            out[k] = drop_nulls(copy.deepcopy(v))
    return out


def drop_nulls(value: Any, into_lists: bool = False) -> Any:
    """`value` without null map entries (Helm drops them from maps; `into_lists` also cleans list items)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v, into_lists) for k, v in value.items() if v is not None}
    if into_lists and isinstance(value, list):
        return [drop_nulls(v, into_lists) for v in value]
    return value


def get(data: Mapping[str, Any], key: Key, default: Any = None) -> Any:
    """The value at `key`; a part that is a number (as text) indexes a list, so list items have an origin too."""
    node: Any = data
    for part in key:
        if isinstance(node, list) and str(part).isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return default
    return node


def has_key(data: Mapping[str, Any], key: Key) -> bool:
    marker = object()
    return get(data, key, marker) is not marker


def walk(data: Any, prefix: Key = ()) -> Iterator[tuple[Key, Any]]:
    """Every leaf of a nested mapping with its key path."""
    if isinstance(data, Mapping) and data:
        for k, v in data.items():
            yield from walk(v, (*prefix, str(k)))
    else:
        yield prefix, data


def dotted(key: Key | list[Any]) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
