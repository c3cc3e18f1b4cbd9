"""Checks on what Helm rendered: Kubernetes schemas, and that the hub gets what the course declares."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

from coursehub import fastyaml
from coursehub.chart import kube
from coursehub.courses import Course, Key, dotted, drop_nulls, get
from coursehub.errors import Problem

# What the hub will run, by key in the values z2jh receives: these must arrive unchanged.
HUB_KEYS: tuple[Key, ...] = (
    ("custom", "coursehub"),
    ("hub", "config"),
    ("hub", "extraVolumes"),
    ("hub", "extraVolumeMounts"),
    ("singleuser", "cmd"),
    ("singleuser", "image"),
    ("singleuser", "extraFiles"),
)
# Of those, the ones whose values may be shown in a message: the others hold credentials
# (hub.config, extraFiles) or private membership (custom.coursehub).
SHOWN_KEYS: tuple[Key, ...] = (("singleuser", "cmd"), ("singleuser", "image"))


def objects(manifests: str) -> list[dict[str, Any]]:
    return [doc for doc in fastyaml.load_all(manifests) if isinstance(doc, dict)]


def name_of(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{get(obj, ('metadata', 'name'), '?')}"


def hub_values(objs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The values the hub reads: z2jh's hub Secret (Secret/hub), data key values.yaml, decoded."""
    secrets = [o for o in objs if o.get("kind") == "Secret" and "values.yaml" in (o.get("data") or {})]
    secrets.sort(key=lambda o: get(o, ("metadata", "name")) != "hub")  # the one named hub, if there are several
    return fastyaml.load(base64.b64decode(secrets[0]["data"]["values.yaml"])) if secrets else None


def kubernetes(objs: list[dict[str, Any]], versions: tuple[str, ...] = kube.SUPPORTED) -> Iterator[Problem]:
    for obj in objs:
        for version in versions:
            for message in kube.problems(obj, version):
                yield Problem(
                    f"rendered {name_of(obj)}",
                    f"Kubernetes {version}",
                    message,
                    "correct the values or template that produce this field",
                )


def hub_receives_course(course: Course, values: dict[str, Any], objs: list[dict[str, Any]]) -> Iterator[Problem]:
    """Decode Secret/hub and compare what the hub will run with what the course declares."""
    received = hub_values(objs)
    if received is None:
        yield Problem(
            "rendered Secret/hub",
            "data.values.yaml",
            "is missing, so the hub gets no configuration",
            "check that the jupyterhub dependency is the z2jh chart",
        )
        return
    for key in HUB_KEYS:
        # Helm 3 drops keys whose default is null and Helm 4 keeps them; both mean "unset" to the hub.
        declared = drop_nulls(get(values, ("jupyterhub", *key)), into_lists=True)
        got = drop_nulls(get(received, key), into_lists=True)
        if declared != got:
            for sub in differences(declared, got):
                full = ("jupyterhub", *key, *sub)
                what = f" ({got!r} instead of {declared!r})" if key in SHOWN_KEYS and not sub else ""
                yield Problem(
                    course.origin(full),
                    dotted(full),
                    f"the hub receives a different value than the course declares{what}",
                    "check the value layering (values/common.yaml, the course file, its secrets file)",
                )


def differences(a: Any, b: Any, prefix: Key = ()) -> Iterator[Key]:
    """The keys at which two values differ, down to the deepest map that has them (values never shown)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                yield from differences(a.get(k), b.get(k), (*prefix, str(k)))
    elif a != b:
        yield prefix


def membership_only_in_secrets(course: Course, values: dict[str, Any], objs: list[dict[str, Any]]) -> Iterator[Problem]:
    """No student named in a group, and no TA (`staff`), may appear in a ConfigMap (or any object that is not a
    Secret)."""
    declaration = get(values, ("jupyterhub", "custom", "coursehub")) or {}
    members = {m for group in (declaration.get("members") or {}).values() for m in group or ()}
    members |= set(declaration.get("staff") or ())
    if not members:
        return
    pattern = re.compile(r"(?<![\w.@+-])(" + "|".join(map(re.escape, sorted(members))) + r")(?![\w.@+-])")
    for obj in objs:
        if obj.get("kind") == "Secret":
            continue
        hit = pattern.search(fastyaml.dump(obj))
        if hit:
            yield Problem(
                f"rendered {name_of(obj)}",
                "",
                f"names group member or TA {hit.group(1)!r}: membership and staff are private",
                "keep them in custom.coursehub.members and .staff, which reach the hub in Secret/hub only",
            )


def hub_image(objs: list[dict[str, Any]], values: dict[str, Any]) -> Iterator[Problem]:
    """The hub Deployment runs coursehub's hub image, which carries its hub side."""
    image = get(values, ("jupyterhub", "hub", "image")) or {}
    wanted = f"{image.get('name')}:{image.get('tag')}"
    for obj in objs:
        if obj.get("kind") == "Deployment" and get(obj, ("metadata", "name")) == "hub":
            containers = get(obj, ("spec", "template", "spec", "containers")) or []
            if not any(c.get("name") == "hub" and c.get("image") == wanted for c in containers):
                yield Problem(
                    "rendered Deployment/hub",
                    "spec.template.spec.containers[hub].image",
                    f"is not coursehub's hub image {wanted}",
                    "render from this checkout's chart/",
                )
            return
    yield Problem("rendered manifests", "Deployment/hub", "is missing", "check the z2jh dependency in chart/charts/")
