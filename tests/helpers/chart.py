"""Rendering coursehub's chart in tests, as airflow's helm tests do: `render_chart(values, show_only)` renders the
chart's own defaults (chart/values.yaml) plus the few values a test is about, inline, with the newest pinned
Helm and the real upstream z2jh chart. A test about a real course passes `course=` (its value layers come first,
the inline values last); the Helm 3/4 matrix passes `helm=` in one smoke test (tests/test_chart.py)."""

from __future__ import annotations

import base64
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from coursehub import tools
from coursehub.chart.helm import DEFAULT_KUBE_VERSION, Helm, Release, staged_chart
from coursehub.chart.rendered import objects
from coursehub.chart.upstream import HOW_TO_GET, find_chart
from coursehub.courses import Course, load_course

Obj = dict[str, Any]

NEWEST_HELM = max(tools.HELM_PINS)

# What chart/values.yaml leaves to every course, and the schema refuses empty: the course's name and its image.
# A test on the chart's defaults gets these (an example course, `demo`), under its own inline values.
EVERY_COURSE_SETS = {
    "jupyterhub.custom.coursehub.course": "demo",
    "jupyterhub.singleuser.image.name": "quay.io/coursehub/demo-image",
    "jupyterhub.singleuser.image.tag": "2026.01.1",
}

# The secrets z2jh draws at random in each render unless given, pinned as a cluster keeps them between
# upgrades: two renders are then equal.
PINNED_SECRETS = {
    "jupyterhub.hub.config.ConfigurableHTTPProxy.auth_token": "0" * 64,
    "jupyterhub.hub.config.JupyterHub.cookie_secret": "1" * 64,
    "jupyterhub.hub.config.CryptKeeper.keys": ["2" * 64],
}

# The settings `make archive` and `make restore` give, plus a schedule: every archive object renders (with an
# archive claim, which values/common.yaml gives every course).
ARCHIVE_JOBS = {
    "archive.run": True,
    "archive.schedule": "0 3 * * 0",
    "archive.restore.account": "alice",
    "archive.restore.archive": "alice-20261125T000000Z.tar.gz",
    "archive.restore.path": "project/data",
}


def pinned_helm(major: int = NEWEST_HELM) -> Helm:
    """Real Helm of a pinned major version (installed by `make tools`), the newest by default."""
    return Helm(tools.helm_path(major))


@cache
def z2jh_chart() -> Path:
    """The real z2jh chart ($UPSTREAM_CHART or chart/charts/; `make test` fetches it when neither is there)."""
    chart = find_chart()
    if chart is None:
        pytest.fail(f"no upstream z2jh chart: {HOW_TO_GET}", pytrace=False)
    return chart


def render_chart(
    values: dict[str, Any] | None = None,
    show_only: list[str] | None = None,
    *,
    course: Course | str | None = None,
    helm: Helm | None = None,
    kube_version: str = DEFAULT_KUBE_VERSION,
) -> list[Obj]:
    """The objects `helm template` renders: the chart's defaults, or a course's value layers (`course`), then
    `values` (keys may be dotted: {"archive.run": True}; None removes a key, as null does in a values file).
    `show_only` names templates, as `helm template --show-only` does. The newest pinned Helm unless `helm`."""
    helm = helm or pinned_helm()
    with tempfile.TemporaryDirectory(prefix="coursehub-test-values-") as tmp:
        extra: list[str] = []
        for name, layer in (("example-course", None if course else EVERY_COURSE_SETS), ("inline", values)):
            if layer:
                path = Path(tmp) / f"{name}.yaml"
                path.write_text(yaml.safe_dump(nested(layer)))
                extra += ["--values", str(path)]
        for template in show_only or ():
            extra += ["--show-only", template]
        with staged_chart(z2jh_chart()) as staged:
            if course is None:
                name = EVERY_COURSE_SETS["jupyterhub.custom.coursehub.course"]
                args = ["template", name, str(staged), "--namespace", name, "--kube-version", kube_version]
                return objects(helm.run([*args, *extra], "the chart's defaults"))
            course = load_course(course) if isinstance(course, str) else course
            return objects(helm.template(staged, course, Release.for_course(course), kube_version, extra=extra))


def lint_chart(values: dict[str, Any] | None = None, helm: Helm | None = None) -> str:
    """`helm lint --strict` on the chart's defaults plus `values`: what Helm prints."""
    helm = helm or pinned_helm()
    with tempfile.TemporaryDirectory(prefix="coursehub-test-values-") as tmp, staged_chart(z2jh_chart()) as staged:
        path = Path(tmp) / "values.yaml"
        path.write_text(yaml.safe_dump(nested({**EVERY_COURSE_SETS, **(values or {})})))
        args = ["lint", "--strict", str(staged), "--kube-version", DEFAULT_KUBE_VERSION, "--values", str(path)]
        return helm.run(args, "the chart's defaults")


def nested(values: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} as {"a": {"b": 1}} (values files are nested; tests read better dotted)."""
    out: dict[str, Any] = {}
    for dotted, value in values.items():
        node = out
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = nested(value) if isinstance(value, dict) else value
    return out


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    """The one object of this kind and name (a Job's generated name does not count)."""
    matches = [o for o in objs if o["kind"] == kind and o["metadata"].get("name") == name]
    assert matches, f"no {kind}/{name} among {[(o['kind'], o['metadata'].get('name')) for o in objs]}"
    return matches[0]


def hub_values(objs: list[Obj]) -> dict[str, Any]:
    """What the hub reads with z2jh's get_config(): Secret/hub's values.yaml, decoded."""
    return yaml.safe_load(base64.b64decode(find(objs, "Secret", "hub")["data"]["values.yaml"]))


def is_coursehubs(obj: Obj) -> bool:
    """An object coursehub's own templates render (not z2jh's)."""
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "coursehub"
