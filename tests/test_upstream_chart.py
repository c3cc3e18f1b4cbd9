"""Every course on the real z2jh chart, with the newest pinned Helm: lint, render, Kubernetes 1.30-1.35, Secret/hub.

The chart is $UPSTREAM_CHART or chart/charts/ (`make test` fetches it there when neither is present).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from coursehub.chart import kube
from coursehub.chart.helm import Helm
from coursehub.chart.validate import validate
from coursehub.courses import course_names, load_course
from helpers.chart import find, render_chart


@pytest.mark.parametrize("course", course_names())
def test_every_course_passes_every_check_on_kubernetes_1_30_to_1_35(
    newest_helm: Helm, upstream_chart: Path, course: str
) -> None:
    report = validate(load_course(course), newest_helm, upstream_chart, kube.SUPPORTED)
    assert report.problems == []


def test_z2jh_runs_the_hub_with_coursehubs_python_and_the_courses_values() -> None:
    course = load_course("stat159")
    objs = render_chart(course=course)
    hub = find(objs, "Deployment", "hub")
    pod = hub["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"].startswith("quay.io/coursehub/hub:")  # the image carries the hub side
    # z2jh's Secret/hub carries the values the hub reads with get_config(): the declaration included
    received = yaml.safe_load(base64.b64decode(find(objs, "Secret", "hub")["data"]["values.yaml"]))
    assert received["custom"]["coursehub"] == course.values()["jupyterhub"]["custom"]["coursehub"]
    # and z2jh restarts the hub when that Secret changes (its checksum annotation)
    assert "checksum/secret" in hub["spec"]["template"]["metadata"]["annotations"]
