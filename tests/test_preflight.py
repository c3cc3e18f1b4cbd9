"""`make deploy`'s pre-flight: kube context, permission, hub restart, Helm's safety flags.

There is no Kubernetes cluster here: the cluster is KUBE_API_DOUBLE below, a
TEST DOUBLE of the two Kubernetes API calls the pre-flight makes
(SelfSubjectAccessReview, read Deployment/hub), served on 127.0.0.1. The
official `kubernetes` client, the kubeconfig handling and the rendered
manifests (real Helm, the real z2jh chart) are real.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from coursehub.chart.helm import Helm, Release
from coursehub.courses import load_course
from coursehub.errors import CoursehubError
from coursehub.hub.local import free_port
from coursehub.ops.preflight import check_context, preflight, safety_flags
from coursehub.tools import HELM_PINS
from helpers.chart import render_chart
from helpers.commands import coursehub
from helpers.files import edit

CONTEXT = "stat159-prod"


class KubeApiDouble(BaseHTTPRequestHandler):
    """TEST DOUBLE of a Kubernetes API server: answers what `state` says."""

    state: ClassVar[dict[str, Any]] = {}

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        attributes = review["spec"]["resourceAttributes"]
        self.state["reviews"].append(attributes)
        allowed = attributes["resource"] not in self.state["forbidden"]
        self._send(201, {**review, "status": {"allowed": allowed}})

    def do_GET(self) -> None:
        hub = self.state.get("hub")
        if self.path.startswith("/apis/apps/v1/namespaces/stat159/deployments/hub") and hub:
            self._send(200, hub)
        else:
            self._send(
                404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
            )

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """KUBE_API_DOUBLE on a free port, and a kubeconfig whose current context points at it."""
    state: dict[str, Any] = {"reviews": [], "forbidden": set(), "hub": None}
    handler = type("Handler", (KubeApiDouble,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["kubeconfig"] = write_kubeconfig(tmp_path / "kubeconfig", server.server_address[1], CONTEXT)
    monkeypatch.setenv("KUBECONFIG", str(state["kubeconfig"]))
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_kubeconfig(path: Path, port: int, current: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": name, "context": {"cluster": "c", "user": "u"}} for name in (CONTEXT, "other-course")
                ],
                "current-context": current,
            }
        )
    )
    return path


@pytest.fixture
def course_dir(values_dir: Path) -> Path:
    edit(values_dir / "stat159.yaml", {"deploy.kubeContext": CONTEXT})
    return values_dir


def one_line(caught: pytest.ExceptionInfo[CoursehubError]) -> str:
    assert len(caught.value.problems) == 1
    text = str(caught.value.problems[0])
    assert "\n" not in text
    return text


def test_a_course_without_a_kube_context_is_refused(values_dir: Path) -> None:
    with pytest.raises(CoursehubError) as caught:
        check_context(load_course("stat159", values_dir=values_dir))
    assert "deploy.kubeContext: is not set" in one_line(caught)


def test_the_wrong_current_context_is_refused(course_dir: Path, kube: dict[str, Any]) -> None:
    write_kubeconfig(kube["kubeconfig"], 1, "other-course")
    with pytest.raises(CoursehubError) as caught:
        check_context(load_course("stat159", values_dir=course_dir))
    text = one_line(caught)
    assert "stat159.yaml: deploy.kubeContext: is 'stat159-prod', but the current kube context is 'other-course'" in text
    assert "kubectl config use-context stat159-prod" in text


def test_no_kubeconfig_is_one_line(course_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(CoursehubError) as caught:
        check_context(load_course("stat159", values_dir=course_dir))
    assert "no cluster is configured" in one_line(caught)


def test_a_cluster_that_does_not_answer_is_one_line(course_dir: Path, kube: dict[str, Any]) -> None:
    write_kubeconfig(kube["kubeconfig"], free_port(), CONTEXT)  # nothing listens there
    course = load_course("stat159", values_dir=course_dir)
    with pytest.raises(CoursehubError) as caught:
        preflight(course, Release.for_course(course), [])
    assert "the cluster does not answer" in one_line(caught)


def test_no_permission_is_one_line(course_dir: Path, kube: dict[str, Any]) -> None:
    kube["forbidden"].add("secrets")
    course = load_course("stat159", values_dir=course_dir)
    with pytest.raises(CoursehubError) as caught:
        preflight(course, Release.for_course(course), [])
    assert "may not update secrets in namespace stat159" in one_line(caught)


def test_the_plan_says_whether_the_hub_restarts(course_dir: Path, kube: dict[str, Any]) -> None:
    course = load_course("stat159", values_dir=course_dir)
    objs = render_chart(course=course)
    release = Release.for_course(course)
    assert preflight(course, release, objs).lines()[:2] == [
        "kube context: stat159-prod",
        "the hub: new (first install)",
    ]
    assert {r["resource"] for r in kube["reviews"]} == {"secrets", "configmaps", "deployments"}

    hub = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "hub")
    kube["hub"] = json.loads(json.dumps(hub))  # what the cluster runs: the same release
    assert preflight(course, release, objs).hub_restarts is False
    annotations = kube["hub"]["spec"]["template"]["metadata"]["annotations"]
    annotations[next(k for k in annotations if k.startswith("checksum/"))] = "an older config"
    plan = preflight(course, release, objs)
    assert plan.hub_restarts is True and "the hub: restarts (its configuration changed)" in plan.lines()


def test_helm_rolls_back_and_waits_in_each_helms_spelling(course_dir: Path) -> None:
    edit(course_dir / "stat159.yaml", {"deploy.timeout": "15m"})
    course = load_course("stat159", values_dir=course_dir)
    assert safety_flags(Helm(HELM_PINS[3].installed), course) == ["--atomic", "--wait", "--timeout", "15m"]
    assert safety_flags(Helm(HELM_PINS[4].installed), course) == [
        "--rollback-on-failure",
        "--wait=watcher",
        "--timeout",
        "15m",
    ]


def test_the_dry_run_prints_the_plan_and_names_the_context(
    course_dir: Path, kube: dict[str, Any], upstream_chart: Path
) -> None:
    (course_dir / "stat159.secret.yaml").write_text((course_dir / "stat159.secret.example.yaml").read_text())
    result = coursehub("deploy", "--course", "stat159", "--dry-run", values=course_dir, upstream=upstream_chart)
    assert result.returncode == 0, result.stderr
    assert "plan: kube context: stat159-prod\nplan: the hub: new (first install)\nwould run:" in result.stdout
    assert result.stdout.strip().splitlines()[-1].endswith("--kube-context stat159-prod )")  # the subshell's end


def test_the_hub_database_volume_is_kept_by_helm() -> None:
    objs = render_chart(course="stat159")
    pvc = next(o for o in objs if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == "hub-db-dir")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
