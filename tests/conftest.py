"""Shared fixtures: real Helm (3 and 4), the real upstream z2jh chart, course values.

`render_chart` is the one helper every rendering test goes through.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from coursehub import tools
from coursehub.courses import Course, load_course
from coursehub.helm import DEFAULT_KUBE_VERSION, Helm, Release, staged_chart
from coursehub.images import deployed, ensure_env
from coursehub.localhub import LocalHub, classify, make_plan
from coursehub.paths import ROOT, VALUES
from coursehub.rendered import objects
from coursehub.upstream import HOW_TO_GET, UpstreamData, find_chart, load_data


@pytest.fixture(scope="session", params=sorted(tools.HELM_PINS), ids=lambda m: f"helm{m}")
def helm(request: pytest.FixtureRequest) -> Helm:
    """Real Helm, every pinned major version (installed by `make tools`)."""
    return Helm(tools.helm_path(request.param))


@pytest.fixture(scope="session")
def helm3() -> Helm:
    return Helm(tools.helm_path(3))


@pytest.fixture(scope="session")
def upstream_chart() -> Path:
    """The real z2jh chart ($UPSTREAM_CHART or chart/charts/; `make test` fetches it when neither is there)."""
    chart = find_chart()
    if chart is None:
        pytest.fail(f"no upstream z2jh chart: {HOW_TO_GET}", pytrace=False)
    return chart


@pytest.fixture(scope="session")
def upstream(upstream_chart: Path) -> UpstreamData:
    """z2jh's default values and values schema, from that chart."""
    return load_data(upstream_chart)


@pytest.fixture
def values_dir(tmp_path: Path) -> Path:
    """A copy of values/ that a test may break (the real secrets file, if any, is left out)."""
    target = tmp_path / "values"
    shutil.copytree(VALUES, target, ignore=shutil.ignore_patterns("*.secret.yaml"))
    return target


def edit(path: Path, change: dict[str, Any] | None = None, text: str | None = None) -> None:
    """Deep-set dotted keys in a YAML values file (value None deletes), or replace its text."""
    if text is not None:
        path.write_text(text)
        return
    data = yaml.safe_load(path.read_text()) or {}
    for dotted, value in (change or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def render_chart(
    helm: Helm, chart: Path, course: Course | str = "stat159", kube_version: str = DEFAULT_KUBE_VERSION
) -> list[dict[str, Any]]:
    """Render a course with real Helm and the real upstream chart."""
    course = load_course(course) if isinstance(course, str) else course
    with staged_chart(chart) as staged:
        return objects(helm.template(staged, course, Release.for_course(course), kube_version))


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert matches, f"no {kind}/{name} among {[(o['kind'], o['metadata']['name']) for o in objs]}"
    return matches[0]


def coursehub(
    *args: str, values: Path | None = None, upstream: Path | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run the real entry point as the Makefile does (with the upstream chart the tests use, or `upstream`)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    if values is not None:
        env["COURSEHUB_VALUES"] = str(values)
    if upstream is not None:
        env["UPSTREAM_CHART"] = str(upstream)
    return subprocess.run([sys.executable, "-m", "coursehub", *args], capture_output=True, text=True, env=env, cwd=cwd)


@contextmanager
def live_hub(values: Path, workdir: Path) -> Iterator[LocalHub]:
    """A real hub (localhub.py) for stat159 with the values in `values`, stopped whatever happens."""
    course = load_course("stat159", values_dir=values)
    env = ensure_env(deployed("stat159", course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    plan = make_plan(course, load_data(), workdir, env, classify(course), admin_token=secrets.token_hex(16))
    hub = LocalHub(plan)
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()


def stat159_values(folder: Path, secret: dict[str, Any], **course_keys: Any) -> Path:
    """A values folder with common.yaml, stat159.yaml (plus `course_keys` in custom.coursehub) and a secrets file."""
    for name in ("common.yaml", "stat159.yaml"):
        (folder / name).write_text((VALUES / name).read_text())
    if course_keys:
        course = yaml.safe_load((folder / "stat159.yaml").read_text())
        course["jupyterhub"]["custom"]["coursehub"].update(course_keys)
        (folder / "stat159.yaml").write_text(yaml.safe_dump(course))
    (folder / "stat159.secret.yaml").write_text(yaml.safe_dump(secret))
    return folder
