"""With the real z2jh chart (chart/charts/ after `make deps`, or UPSTREAM_CHART): every check, every course.

These skip, with one line saying how to get the chart, where it cannot be had.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import find, render_chart
from coursehub import kube
from coursehub.courses import course_names, load_course
from coursehub.helm import Helm
from coursehub.standin import STAND_IN_ANNOTATION
from coursehub.validate import validate


@pytest.mark.parametrize("course", course_names())
def test_every_course_passes_every_check_on_kubernetes_1_30_to_1_35(
    helm: Helm, upstream_chart: Path, course: str
) -> None:
    report = validate(load_course(course), helm, upstream_chart, kube.SUPPORTED)
    assert report.problems == []
    assert not any("skipped helm lint" in note for note in report.notes)


def test_the_real_chart_is_not_the_stand_in(helm: Helm, upstream_chart: Path) -> None:
    objs = render_chart(helm, upstream_chart)
    secret = find(objs, "Secret", "hub")
    assert STAND_IN_ANNOTATION not in (secret["metadata"].get("annotations") or {})
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "Service", "ConfigMap", "Secret"} <= kinds
    hub = find(objs, "Deployment", "hub")
    mounts = hub["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert any(m["name"] == "coursehub-hub-python" for m in mounts)
