"""The pods students get (issue 10, item 5): built by the real KubeSpawner from the render's hub configuration.

`coursehub.chart.pods` runs z2jh 4.4.0's own jupyterhub_config.py (from the chart in use) on the
rendered hub files, then asks KubeSpawner 7.0.0 for the pod of a student and of a shared
account. These tests read those manifests as a cluster would receive them.
"""

from __future__ import annotations

from typing import Any

import pytest

from coursehub.chart import kube, pods, rendered
from helpers.chart import render_chart

Obj = dict[str, Any]


def notebook(pod: Obj) -> Obj:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "notebook")


def built(course: str, values: dict[str, Any] | None = None) -> tuple[list[Obj], dict[str, Obj]]:
    objs = render_chart(values, course=course)
    return objs, pods.course_pods(objs, namespace=course)


@pytest.fixture(scope="module", params=["stat159", "data100"])
def course_pods(request: pytest.FixtureRequest) -> tuple[str, list[Obj], dict[str, Obj]]:
    objs, built_pods = built(request.param)
    return request.param, objs, built_pods


def test_the_hub_configuration_is_z2jhs_with_coursehubs_hub_python() -> None:
    """The config the pods come from ran both z2jh's jupyterhub_config.py and coursehub's jupyterhub_config.d file."""
    c = pods.hub_config(render_chart(course="stat159"), namespace="stat159")
    assert c.KubeSpawner.image == "quay.io/coursehub/stat159-image:2023.03.1"  # z2jh: singleuser.image
    assert c.KubeSpawner.namespace == "stat159"  # z2jh: the hub's POD_NAMESPACE
    roles = {r["name"] for r in c.JupyterHub.load_roles}
    assert {f"coursehub-access-shared-{n}" for n in range(1, 5)} <= roles  # the hub image's config file ran


def test_each_pod_is_the_courses_image_and_command_and_passes_strict_validation(
    course_pods: tuple[str, list[Obj], dict[str, Obj]],
) -> None:
    _, objs, built_pods = course_pods
    values = rendered.hub_values(objs)["singleuser"]  # what the hub reads
    staff = rendered.hub_values(objs)["custom"]["coursehub"].get("staff")  # stat159's example secrets name a TA
    assert sorted(built_pods) == ["shared account", *(["staff"] if staff else []), "student"]
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


def test_a_home_shared_between_users_is_a_problem() -> None:
    """The check above can fail: a course that mounts one folder as everyone's home is refused."""
    objs, built_pods = built("stat159", {"jupyterhub.singleuser.storage.static.subPath": "everyone"})
    assert pods.home_subpaths(built_pods["shared account"]) == ["everyone"]
    found = pods.problems(built_pods, pods.course_users(objs), versions=())
    assert [p.key for p in found] == ["singleuser.storage"] * len(built_pods)  # every pod's home is everyone's
    assert "not 'collab-shared-1' alone" in found[0].message or "not 'collab-shared-1' alone" in found[1].message


def test_a_field_kubernetes_rejects_in_a_pod_is_a_problem(course_pods: tuple[str, list[Obj], dict[str, Obj]]) -> None:
    """Strict validation of the pods can fail too: an unknown field in the container is reported."""
    _, objs, built_pods = course_pods
    broken = {who: dict(pod) for who, pod in built_pods.items()}
    student = broken["student"] = {**built_pods["student"], "spec": dict(built_pods["student"]["spec"])}
    student["spec"]["containers"] = [{**notebook(built_pods["student"]), "imagePullPolicyy": "Always"}]
    found = pods.problems(broken, pods.course_users(objs), versions=(kube.SUPPORTED[-1],))
    assert len(found) == 1 and "imagePullPolicyy" in found[0].message


def pod_templates(objs: list[Obj]) -> dict[str, Obj]:
    """Every pod the render makes, by `Kind/name`: the workloads' templates (a CronJob's through its Job)."""
    found = {}
    for o in objs:
        spec = o.get("spec") or {}
        template = (spec.get("jobTemplate") or {}).get("spec", {}).get("template") or spec.get("template")
        if template and o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
            meta = o["metadata"]
            found[f"{o['kind']}/{meta.get('name') or meta['generateName']}"] = template
    return found


def covered(labels: dict[str, str], objs: list[Obj]) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in objs
        if p["kind"] == "NetworkPolicy" and p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
    ]


def test_every_pod_of_the_course_has_a_network_policy() -> None:
    """z2jh's helper pods included (coursehub's component-networkpolicies.yaml), and the servers KubeSpawner makes."""
    objs, built_pods = built("stat159", {"archive.volumeClaim": "archives", "archive.run": True})
    templates = pod_templates(objs)
    assert {"DaemonSet/hook-image-puller", "Job/hook-image-awaiter", "StatefulSet/user-placeholder"} <= set(templates)
    for name, template in templates.items():
        assert covered(template["metadata"].get("labels", {}), objs), f"{name} has no NetworkPolicy"
    for who, pod in built_pods.items():
        assert covered(pod["metadata"]["labels"], objs) == ["singleuser"], who
    # Without coursehub's component policies, z2jh's helper pods have none: the check above would fail.
    bare = render_chart({"componentNetworkPolicies.enabled": False}, course="stat159")
    assert not covered(pod_templates(bare)["DaemonSet/hook-image-puller"]["metadata"]["labels"], bare)


def test_the_helper_pods_reach_only_the_api_server() -> None:
    objs = render_chart(course="stat159")
    policies = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "NetworkPolicy"}
    for name in ("coursehub-continuous-image-puller", "coursehub-hook-image-puller", "coursehub-user-placeholder"):
        assert policies[name]["policyTypes"] == ["Ingress", "Egress"]
        assert "ingress" not in policies[name] and "egress" not in policies[name]  # nothing in or out
    for name in ("coursehub-image-puller", "coursehub-user-scheduler"):
        (rule,) = policies[name]["egress"]
        assert "to" not in rule and [p["port"] for p in rule["ports"]] == [443, 6443]
    assert policies["coursehub-user-scheduler"]["ingress"] == [{"ports": [{"port": 10259, "protocol": "TCP"}]}]


COURSE_FOLDER = {
    "jupyterhub.custom.coursehub.courseFolder.subPath": "_course/stat159",
    "jupyterhub.custom.coursehub.staff": ["ta-1"],
}


def course_folder_mounts(pod: Obj) -> list[Obj]:
    return [m for m in notebook(pod)["volumeMounts"] if m["mountPath"] == "/home/jovyan/course"]


def test_the_course_folder_is_read_only_for_students_and_shared_accounts_and_writable_for_staff() -> None:
    """Issue 11 item 2, on the pods KubeSpawner builds: the same folder of the homes claim, three permissions."""
    objs, built_pods = built("stat159", COURSE_FOLDER)
    assert sorted(built_pods) == ["shared account", "staff", "student"]
    for who, read_only in (("student", True), ("shared account", True), ("staff", False)):
        (mount,) = course_folder_mounts(built_pods[who])
        assert mount["subPath"] == "_course/stat159" and mount["name"] == "home", who
        assert mount.get("readOnly", False) is read_only, who
        assert pods.home_subpaths(built_pods[who]) == [pods.course_users(objs)[who].name]  # its home stays its own
    assert pods.problems(built_pods, pods.course_users(objs), versions=(kube.SUPPORTED[-1],)) == []


def test_no_course_folder_unless_the_course_sets_one(course_pods: tuple[str, list[Obj], dict[str, Obj]]) -> None:
    _, _, built_pods = course_pods
    assert all(course_folder_mounts(pod) == [] for pod in built_pods.values())


def test_a_course_folder_on_storage_without_the_homes_claim_is_a_problem() -> None:
    """Each user's own volume (dynamic storage) has no course folder to mount: refused, not a pod that fails."""
    objs, built_pods = built("stat159", {**COURSE_FOLDER, "jupyterhub.singleuser.storage.type": "none"})
    found = pods.problems(built_pods, pods.course_users(objs), versions=())
    assert found and all("'home'" in p.message and "courseFolder" in p.fix for p in found if "volume" in p.message)
    assert {p.file.split("'")[0] for p in found if "volume 'home'" in p.message} == {
        "student",
        "shared account",
        "staff",
    }


def test_with_rtc_for_shared_accounts_only_the_accounts_pod_runs_the_collaborative_command() -> None:
    """The same setting test_rtc_setting.py proves live, on the pods z2jh's config and KubeSpawner really build."""
    _, built_pods = built("stat159", {"jupyterhub.custom.coursehub.rtc": "sharedAccounts"})
    account, student = notebook(built_pods["shared account"])["args"], notebook(built_pods["student"])["args"]
    assert "--LabApp.collaborative=true" in account and "--YDocExtension.disable_rtc=True" not in account
    assert "--LabApp.collaborative=true" not in student and "--YDocExtension.disable_rtc=True" in student


def test_building_a_courses_pods_reads_the_machines_ca_bundle_at_most_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each kubernetes_asyncio client makes a TLS context from the whole CA bundle (50 ms each, most of the time
    a pod took); the pods are built offline, so the clients share one. The ssl module is theirs again after."""
    import ssl

    from kubernetes_asyncio.client import rest

    made: list[object] = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: made.append(a or k) or real(*a, **k))
    objs = render_chart(course="stat159")
    assert set(pods.course_pods(objs, namespace="stat159")) == {"student", "shared account", "staff"}
    assert len(made) <= 1  # made once per process (none if an earlier test made it); 6 without sharing
    assert rest.ssl is ssl
