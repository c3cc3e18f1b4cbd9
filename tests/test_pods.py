"""The pods students get (issue 10, item 5): built by the real KubeSpawner from the render's hub configuration.

`coursehub.pods` runs z2jh 4.4.0's own jupyterhub_config.py (from the chart in use) on the
rendered hub files, then asks KubeSpawner 7.0.0 for the pod of a student and of a shared
account. These tests read those manifests as a cluster would receive them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import render_chart
from coursehub import kube, pods, rendered
from coursehub.helm import Helm

Obj = dict[str, Any]


def notebook(pod: Obj) -> Obj:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "notebook")


def built(
    helm: Helm, chart: Path, course: str, values: dict[str, Any] | None = None
) -> tuple[list[Obj], dict[str, Obj]]:
    objs = render_chart(helm, chart, course, values=values)
    return objs, pods.course_pods(objs, namespace=course)


@pytest.fixture(scope="module", params=["stat159", "data100"])
def course_pods(request: pytest.FixtureRequest, upstream_chart: Path) -> tuple[str, list[Obj], dict[str, Obj]]:
    from coursehub import tools

    helm = Helm(tools.helm_path(max(tools.HELM_PINS)))
    objs, built_pods = built(helm, upstream_chart, request.param)
    return request.param, objs, built_pods


def test_the_hub_configuration_is_z2jhs_with_coursehubs_hub_python(helm: Helm, upstream_chart: Path) -> None:
    """The config the pods come from ran both z2jh's jupyterhub_config.py and coursehub's jupyterhub_config.d file."""
    c = pods.hub_config(render_chart(helm, upstream_chart, "stat159"), namespace="stat159")
    assert c.KubeSpawner.image == "quay.io/coursehub/stat159-image:2023.03.1"  # z2jh: singleuser.image
    assert c.KubeSpawner.namespace == "stat159"  # z2jh: the hub's POD_NAMESPACE
    roles = {r["name"] for r in c.JupyterHub.load_roles}
    assert {f"coursehub-access-shared-{n}" for n in range(1, 5)} <= roles  # coursehub_config.py ran


def test_each_pod_is_the_courses_image_and_command_and_passes_strict_validation(
    course_pods: tuple[str, list[Obj], dict[str, Obj]],
) -> None:
    _, objs, built_pods = course_pods
    values = rendered.hub_values(objs)["singleuser"]  # what the hub reads
    assert sorted(built_pods) == ["shared account", "student"]
    for who, pod in built_pods.items():
        assert pod["kind"] == "Pod" and pod["apiVersion"] == "v1"
        for version in kube.SUPPORTED:
            assert kube.problems(pod, version) == [], (who, version)
        container = notebook(pod)
        assert container["image"] == f"{values['image']['name']}:{values['image']['tag']}"
        assert container["args"][: len(values["cmd"])] == values["cmd"]  # the RTC flags and the stores in /tmp
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["runAsUser"] == 1000
        assert container["resources"]["requests"]["memory"]  # a memory request: the scheduler can place it
        # singleuser.extraFiles (the IPython history kept off NFS) reach the pod from the singleuser Secret.
        files = [m for m in container["volumeMounts"] if m["name"] == "files"]
        assert [m["mountPath"] for m in files] == ["/etc/ipython/ipython_config.json"]
    assert pods.problems(built_pods, pods.course_users(objs)) == []


def test_a_shared_accounts_pod_mounts_its_own_home_never_a_students(
    course_pods: tuple[str, list[Obj], dict[str, Obj]],
) -> None:
    _, objs, built_pods = course_pods
    users = pods.course_users(objs)
    account = users["shared account"].name
    assert account.startswith("collab-")
    assert pods.home_subpaths(built_pods["shared account"]) == [account]
    assert pods.home_subpaths(built_pods["student"]) == [users["student"].name]
    labels = built_pods["shared account"]["metadata"]["labels"]
    assert labels["hub.jupyter.org/username"] == account


def test_a_home_shared_between_users_is_a_problem(helm: Helm, upstream_chart: Path) -> None:
    """The check above can fail: a course that mounts one folder as everyone's home is refused."""
    objs, built_pods = built(
        helm, upstream_chart, "stat159", {"jupyterhub.singleuser.storage.static.subPath": "everyone"}
    )
    assert pods.home_subpaths(built_pods["shared account"]) == ["everyone"]
    found = pods.problems(built_pods, pods.course_users(objs), versions=())
    assert [p.key for p in found] == ["singleuser.storage", "singleuser.storage"]
    assert "not 'collab-shared-1' alone" in found[0].message or "not 'collab-shared-1' alone" in found[1].message


def test_a_field_kubernetes_rejects_in_a_pod_is_a_problem(course_pods: tuple[str, list[Obj], dict[str, Obj]]) -> None:
    """Strict validation of the pods can fail too: an unknown field in the container is reported."""
    _, objs, built_pods = course_pods
    broken = {who: dict(pod) for who, pod in built_pods.items()}
    student = broken["student"] = {**built_pods["student"], "spec": dict(built_pods["student"]["spec"])}
    student["spec"]["containers"] = [{**notebook(built_pods["student"]), "imagePullPolicyy": "Always"}]
    found = pods.problems(broken, pods.course_users(objs), versions=(kube.SUPPORTED[-1],))
    assert len(found) == 1 and "imagePullPolicyy" in found[0].message
