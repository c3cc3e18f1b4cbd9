"""The values reference: every value chart/values.schema.json describes, with its default from chart/values.yaml.

Generated at each docs build, so a value added to the schema appears without editing a page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coursehub.docs import markdown
from coursehub.errors import CoursehubError, Problem
from coursehub.paths import CHART, display

SCHEMA = CHART / "values.schema.json"
DEFAULTS = CHART / "values.yaml"

_UNSET = object()


@dataclass(frozen=True)
class Value:
    """One value: its dotted path (`[]` for a list's items, `<name>` for a map's keys) and its schema."""

    path: str
    schema: Mapping[str, Any]
    required: bool


def load_schema(path: Path = SCHEMA) -> dict[str, Any]:
    try:
        schema = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CoursehubError(
            Problem(
                display(path), "", f"cannot be read as JSON ({error})", "fix the file (git diff shows what changed)"
            )
        ) from None
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        raise CoursehubError(
            Problem(display(path), "properties", "the schema describes no values", "give the root object properties")
        )
    return schema


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any], file: str) -> Mapping[str, Any]:
    """The schema with a local `$ref` (#/definitions/x) replaced by what it points at."""
    while "$ref" in schema:
        ref = schema["$ref"]
        target: Any = root
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise CoursehubError(Problem(file, str(ref), "only local references are documented", "use #/definitions/…"))
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        if not isinstance(target, Mapping):
            raise CoursehubError(Problem(file, ref, "points at nothing", "add that definition or fix the reference"))
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def values(schema: Mapping[str, Any], file: str = display(SCHEMA)) -> Iterator[Value]:
    """Every value the schema describes, depth first, in the schema's order."""

    def walk(node: Mapping[str, Any], path: str, required: bool) -> Iterator[Value]:
        node = _resolve(node, schema, file)
        yield Value(path, node, required)
        properties = node.get("properties") or {}
        for name, child in properties.items():
            yield from walk(child, f"{path}.{name}", name in (node.get("required") or ()))
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping) and _children(_resolve(extra, schema, file)):
            yield from walk(extra, f"{path}.<name>", False)
        items = node.get("items")
        if isinstance(items, Mapping) and _children(_resolve(items, schema, file)):
            yield from walk(items, f"{path}[]", False)

    for name, child in schema["properties"].items():
        yield from walk(child, name, name in (schema.get("required") or ()))


def _children(node: Mapping[str, Any]) -> bool:
    return bool(node.get("properties")) or isinstance(node.get("additionalProperties"), Mapping)


def _type(node: Mapping[str, Any]) -> str:
    for choice in ("oneOf", "anyOf"):
        if isinstance(node.get(choice), list):
            return " or ".join(
                _type(option) + "".join(f" ({c})" for c in _constraints(option, {}, "")) for option in node[choice]
            )
    if "enum" in node:
        return "one of " + ", ".join(markdown.code(json.dumps(v)) for v in node["enum"])
    kind = node.get("type")
    names = {"object": "map", "array": "list", "integer": "integer", "number": "number", "boolean": "boolean"}
    if isinstance(kind, list):
        return " or ".join(names.get(k, k) for k in kind)
    if kind == "array" and isinstance(node.get("items"), Mapping):
        items = node["items"]
        if "$ref" in items:
            return "list of " + markdown.code(items["$ref"].rsplit("/", 1)[-1])
        if _children(items):
            return "list of maps (below)"
        return "list of " + _type(items)
    if (
        kind == "object"
        and isinstance(node.get("additionalProperties"), Mapping)
        and not _children(node["additionalProperties"])
    ):
        return "map of " + _type(node["additionalProperties"])
    return names.get(kind, kind) if isinstance(kind, str) else "any"


def _constraints(node: Mapping[str, Any], root: Mapping[str, Any], file: str) -> list[str]:
    found = []
    for key, words in (
        ("minLength", "at least {} character(s)"),
        ("minimum", "at least {}"),
        ("maximum", "at most {}"),
    ):
        if key in node:
            found.append(words.format(node[key]))
    if "minItems" in node:
        found.append(f"at least {node['minItems']} item(s)")
    if node.get("uniqueItems"):
        found.append("no item twice")
    if "pattern" in node:
        found.append("matches " + markdown.code(node["pattern"]))
    refused = node.get("not") or {}
    if "enum" in refused:
        found.append("not " + ", ".join(markdown.code(json.dumps(v)) for v in refused["enum"]))
    if "pattern" in refused:
        found.append("never matches " + markdown.code(refused["pattern"]))
    if "propertyNames" in node:
        keys = _resolve(node["propertyNames"], root, file)
        if "pattern" in keys:
            found.append("keys match " + markdown.code(keys["pattern"]))
        if keys.get("description"):
            found.append("keys: " + markdown.text(keys["description"].rstrip(".")))
    if node.get("additionalProperties") is False and node.get("properties"):
        found.append("no other keys")
    items = node.get("items")
    if isinstance(items, Mapping) and "$ref" in items:
        item = _resolve(items, root, file)
        if "pattern" in item:
            found.append("each matches " + markdown.code(item["pattern"]))
        if item.get("description"):
            found.append("each: " + markdown.text(item["description"].rstrip(".")))
    return found


def _default(defaults: Any, path: str) -> Any:
    node = defaults
    for part in path.split("."):
        if "[]" in part or part == "<name>" or not isinstance(node, Mapping) or part not in node:
            return _UNSET
        node = node[part]
    return node


def _show(value: Any) -> str:
    shown = json.dumps(value, separators=(", ", ": ")) if isinstance(value, dict | list) else json.dumps(value)
    return markdown.code(shown if len(shown) <= 100 else shown[:97] + "…")


def anchor(path: str) -> str:
    """The label of a value's heading, for {ref}`…` from other pages: `value-` and its path, lower case."""
    return markdown.label("value", path.replace("[]", ".item").replace("<name>", "key"))


def page(schema_path: Path = SCHEMA, defaults_path: Path = DEFAULTS) -> str:
    """The values reference as MyST Markdown: a heading per top-level key and per map of values, and under it one
    entry (its label, path, description and facts) per value, in the schema's order."""
    schema = load_schema(schema_path)
    file = display(schema_path)
    defaults = yaml.safe_load(defaults_path.read_text()) if defaults_path.is_file() else {}
    lines = [
        f"<!-- Generated from {display(schema_path)} and {display(defaults_path)} by coursehub.docs.values at "
        "each build: edit the schema, not this page. -->",
        "",
    ]
    for value in values(schema, file):
        node = value.schema
        facts = [f"*{_type(node)}*"]
        if value.required:
            facts.append("required")
        default = _default(defaults, value.path)
        if default is not _UNSET and not (isinstance(default, dict) and node.get("properties")):
            facts.append(f"default {_show(default)}")
        facts += _constraints(node, schema, file)
        said = [markdown.text(node["description"])] if node.get("description") else []
        if "." not in value.path or node.get("properties"):  # a top-level key or a map of values: a section
            level = "##" if "." not in value.path else "###"
            lines += [f"({anchor(value.path)})=", f"{level} {markdown.code(value.path)}", ""]
            lines += [*said, "", "; ".join(facts) + ".", ""] if said else ["; ".join(facts) + ".", ""]
        else:
            first, *rest = [*said, "; ".join(facts) + "."]
            lines += [f"({anchor(value.path)})=", markdown.code(value.path), f": {first}", ""]
            lines += [line for more in rest for line in (f"  {more}", "")]
    return "\n".join(lines)
