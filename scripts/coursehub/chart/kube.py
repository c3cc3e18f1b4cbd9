"""Kubernetes object schemas (kubernetes-validate's bundled, strict ones), built once per process.

kubernetes_validate.validate() reads and parses the schema files on every call;
this module keeps one validator per (Kubernetes version, kind, apiVersion).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv
from referencing import Registry, Resource

SUPPORTED = ("1.30", "1.31", "1.32", "1.33", "1.34", "1.35")


@cache
def _definitions(version: str) -> Registry:
    defs = kv.schema_contents(f"kubernetes-json-schema/v{version}.0-local-strict/_definitions.json", version)
    return Resource.from_contents(defs) @ Registry()


@cache
def validator(version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
    """The strict validator for one kind at one Kubernetes version; None if there is no schema for it."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(
            f"kubernetes-json-schema/v{version}.0-local-strict/{kind.lower()}-{group_version}.json", version
        )
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(schema) @ _definitions(version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def problems(obj: dict[str, Any], version: str) -> list[str]:
    """What is wrong with one object at one Kubernetes version (empty when it is valid)."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return ["has no kind or apiVersion"]
    check = validator(version, kind, api_version)
    if check is None:
        return [f"Kubernetes {version} has no {kind} in {api_version}"]
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in sorted(check.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]
