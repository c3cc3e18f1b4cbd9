"""The coursehub chart rendered by real Helm with the real z2jh 4.4.0 chart as its dependency, as airflow's helm
tests render theirs: the chart's defaults plus the few values a test is about, inline (helpers.chart.render_chart),
or a real course's value layers where the course is the point. Every test renders with the newest pinned Helm
but the first, which renders a course with each pinned Helm (3 and 4).

What the hub will run is read back from z2jh's own Secret/hub, as the hub reads it.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from coursehub.chart import kube, rendered
from coursehub.chart.checks import effective
from coursehub.chart.helm import DEFAULT_KUBE_VERSION, Helm, Release, staged_chart, value_args
from coursehub.chart.upstream import load_data
from coursehub.courses import course_names, load_course
from coursehub.errors import CoursehubError
from coursehub.groups import hubpython
from coursehub.paths import CHART
from helpers.chart import ARCHIVE_JOBS, PINNED_SECRETS, find, hub_values, lint_chart, render_chart

hub_python = hubpython.load()


def comparable(objs: list[dict]) -> list[dict]:
    """The objects without what Helm 4 does differently: it keeps the keys z2jh's defaults set to null, which Helm 3
    drops (both mean "unset" to the hub), in the objects and in Secret/hub's values, so in the hub's checksum of it."""

    def without_nulls(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: without_nulls(v) for k, v in node.items() if v is not None}
        return [without_nulls(v) for v in node] if isinstance(node, list) else node

    out = without_nulls(objs)
    secret, hub = find(out, "Secret", "hub"), find(out, "Deployment", "hub")
    secret["data"]["values.yaml"] = without_nulls(yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"])))
    del hub["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]
    return out


def test_each_pinned_helm_renders_a_course_to_the_same_objects_and_refuses_a_bad_value(helm: Helm) -> None:
    """The Helm 3/4 matrix, once (ops may deploy with either; every other test renders with the newest)."""
    objs = render_chart(PINNED_SECRETS, course="stat159", helm=helm)
    assert len(objs) > 20 and hub_values(objs)["custom"]["coursehub"]["course"] == "stat159"
    assert comparable(objs) == comparable(render_chart(PINNED_SECRETS, course="stat159"))
    with pytest.raises(CoursehubError, match="schema") as caught:
        render_chart({"jupyterhub.custom.coursehub.sharedAcounts": []}, helm=helm)
    assert "sharedAcounts" in str(caught.value)


@pytest.mark.parametrize("course", course_names())
def test_the_hub_receives_exactly_what_the_course_declares(upstream_chart: Path, course: str) -> None:
    loaded = load_course(course)
    objs = render_chart(course=loaded)
    assert list(rendered.hub_receives_course(loaded, effective(loaded, load_data(upstream_chart)), objs)) == []
    received = hub_values(objs)
    declared = loaded.values()["jupyterhub"]
    assert received["custom"]["coursehub"] == declared["custom"]["coursehub"]
    assert received["singleuser"]["image"]["name"] == declared["singleuser"]["image"]["name"]
    assert received["hub"]["config"]["Authenticator"]["manage_groups"] is False


def test_stat159_reproduces_the_seed() -> None:
    received = hub_values(render_chart(course="stat159"))
    accounts = received["custom"]["coursehub"]["sharedAccounts"]
    assert [a["group"] for a in accounts] == [f"shared-{i}" for i in range(1, len(accounts) + 1)]
    assert all(a["account"] == f"collab-{a['group']}" for a in accounts)
    cmd = received["singleuser"]["cmd"]
    assert cmd[0] == "jupyterhub-singleuser" and "--LabApp.collaborative=true" in cmd
    assert "--SQLiteYStore.db_path=/tmp/ystore.db" in cmd
    assert not any("tmpystore" in arg for arg in cmd)


def test_every_course_gets_rtc_with_stores_off_home() -> None:
    received = hub_values(render_chart())  # the chart's defaults (data100 keeps them)
    cmd = received["singleuser"]["cmd"]
    assert "--SQLiteYStore.db_path=/tmp/jupyter_ystore.db" in cmd
    assert "--BaseFileIdManager.db_path=/tmp/jupyter_file_id.db" in cmd
    history = received["singleuser"]["extraFiles"]["coursehub-ipython-history"]
    assert history["data"]["HistoryManager"]["hist_file"] == ":memory:"


def test_the_hub_runs_coursehubs_hub_image_which_carries_the_hub_side() -> None:
    objs = render_chart()
    (container,) = find(objs, "Deployment", "hub")["spec"]["template"]["spec"]["containers"]
    image = yaml.safe_load((CHART / "values.yaml").read_text())["jupyterhub"]["hub"]["image"]  # courses keep it
    assert container["image"] == f"quay.io/coursehub/hub:{image['tag']}"
    # nothing of coursehub's code travels in the chart any more: no ConfigMap, no volume for it
    assert not [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("coursehub-hub")]
    assert "coursehub-hub-python" not in str(find(objs, "Deployment", "hub"))
    # the reconciler service runs from the package the image installs
    assert hub_python.reconciler_service()["command"][1:] == ["-m", "coursehub_hub.reconcile", "--in-hub"]


def test_plain_helm_with_the_values_files_gives_what_make_render_gives(
    newest_helm: Helm, upstream_chart: Path, tmp_path: Path
) -> None:
    """Ops may run `helm upgrade --install <course> chart -f values/common.yaml -f values/<course>.yaml -f <private>`
    by hand: the objects are exactly `make render`'s (z2jh's random secrets pinned, as a cluster would keep them)."""
    course = load_course("stat159")
    pinned = tmp_path / "pinned.yaml"  # the secrets z2jh would otherwise draw at random per render
    pinned.write_text(
        yaml.safe_dump(
            {
                "jupyterhub": {
                    "hub": {"cookieSecret": "a" * 64, "config": {"CryptKeeper": {"keys": ["b" * 64]}}},
                    "proxy": {"secretToken": "c" * 64},
                }
            }
        )
    )
    release = Release.for_course(course)
    with staged_chart(upstream_chart) as staged:
        by_make = newest_helm.template(staged, course, release, extra=["--values", str(pinned)])
        plain = newest_helm.run(
            [
                "template",
                release.name,
                str(staged),
                "--namespace",
                release.namespace,
                "--kube-version",
                DEFAULT_KUBE_VERSION,
                *[arg for path in course.files for arg in ("-f", str(path))],
                "-f",
                str(pinned),
            ],
            "plain helm",
        )
    assert plain == by_make


def test_membership_is_in_a_secret_and_in_no_configmap() -> None:
    """stat159's members and TA, from its secrets layer (the example's), reach the hub and no ConfigMap."""
    course = load_course("stat159")
    declaration = course.values()["jupyterhub"]["custom"]["coursehub"]
    members = {m for g in declaration["members"].values() for m in g} | set(declaration["staff"])  # TAs too
    assert members and declaration["staff"]
    objs = render_chart(course=course)
    for obj in objs:
        text = yaml.safe_dump(obj)
        if obj["kind"] == "ConfigMap":
            assert not any(m in text for m in members), obj["metadata"]["name"]
    received = hub_values(objs)["custom"]["coursehub"]
    assert members <= {m for g in received["members"].values() for m in g} | set(received["staff"])
    assert list(rendered.membership_only_in_secrets(course, course.values(), objs)) == []


def test_the_membership_check_catches_a_leak() -> None:
    course = load_course("stat159")
    leak = {"kind": "ConfigMap", "metadata": {"name": "oops"}, "data": {"x": "example-student-1 is in shared-1"}}
    assert [p.file for p in rendered.membership_only_in_secrets(course, course.values(), [leak])] == [
        "rendered ConfigMap/oops"
    ]
    ta = {"kind": "ConfigMap", "metadata": {"name": "oops"}, "data": {"x": "TAs: example-ta"}}
    assert [p.file for p in rendered.membership_only_in_secrets(course, course.values(), [ta])] == [
        "rendered ConfigMap/oops"
    ]


@pytest.mark.parametrize("version", kube.SUPPORTED)
def test_every_rendered_object_passes_strict_kubernetes_schemas(version: str) -> None:
    """Every object the chart renders: its defaults, with the archive objects and Jobs switched on too."""
    objs = render_chart({"archive.volumeClaim": "archives", **ARCHIVE_JOBS})
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "NetworkPolicy", "Job", "CronJob"} <= kinds
    for obj in objs:
        assert kube.problems(obj, version) == []
    broken = {**objs[0], "metadata": {**objs[0]["metadata"], "nmae": "x"}}
    assert kube.problems(broken, version)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"jupyterhub.custom.coursehub.sharedAcounts": []}, "sharedAcounts"),
        ({"jupyterhub.custom.coursehub.course": 159}, "course"),
        ({"jupyterhub.singleuser.image.tag": ""}, "tag"),  # the chart's default: a course that sets none
        ({"jupyterhub.singleuser.image.tag": None}, "tag"),  # none at all
        ({"jupyterhub.singleuser.image.tag": 2023}, "tag"),  # z2jh's own schema, applied by Helm
        ({"jupyterhub.custom.coursehub.sharedAccounts": [{"group": "Bad Name", "account": "a"}]}, "group"),
    ],
)
def test_helm_itself_rejects_bad_values_naming_the_key(change: dict, words: str) -> None:
    with pytest.raises(CoursehubError) as caught:
        render_chart(change)
    message = str(caught.value)
    assert "schema" in message.lower() and words in message


def test_helm_lint_strict_passes() -> None:
    """The chart's defaults (each course's layers are linted by `make validate`: test_upstream_chart.py)."""
    assert "0 chart(s) failed" in lint_chart()


def test_chart_lock_is_in_sync_with_chart_yaml(newest_helm: Helm, tmp_path: Path) -> None:
    """`helm dependency build` checks the lock digest before it needs the network."""
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(tmp_path / "c"),
        "HELM_CACHE_HOME": str(tmp_path / "k"),
        "HELM_DATA_HOME": str(tmp_path / "d"),
    }
    chart = tmp_path / "coursehub"
    for name in ("Chart.yaml", "Chart.lock", "values.yaml"):
        (chart / name).parent.mkdir(exist_ok=True)
        (chart / name).write_text((CHART / name).read_text())
    result = subprocess.run(
        [str(newest_helm.binary), "dependency", "build", str(chart)], capture_output=True, text=True, env=env
    )
    assert "out of sync" not in result.stderr, result.stderr
    lock = yaml.safe_load((CHART / "Chart.lock").read_text())
    assert lock["dependencies"] == yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    # and it would notice a lock that is out of sync
    (chart / "Chart.lock").write_text((CHART / "Chart.lock").read_text().replace("4.4.0", "4.3.0"))
    result = subprocess.run(
        [str(newest_helm.binary), "dependency", "build", str(chart)], capture_output=True, text=True, env=env
    )
    assert "out of sync" in result.stderr


def test_render_and_deploy_use_the_same_value_layers(newest_helm: Helm, upstream_chart: Path) -> None:
    course = load_course("stat159")
    with staged_chart(upstream_chart) as staged:
        template = newest_helm.template_args(staged, course, Release.for_course(course), "1.33")
        upgrade = newest_helm.upgrade_command(staged, course, Release.for_course(course))
    layers = value_args(course)
    assert template[-len(layers) :] == layers and upgrade[-len(layers) :] == layers
    assert [a for a in layers if a != "--values"][:3] == [str(p) for p in course.files]
    assert upgrade[1:4] == ["upgrade", "--install", "stat159"]
    assert upgrade[upgrade.index("--namespace") + 1] == "stat159"


def test_render_chart_takes_inline_values_and_shows_only_the_named_templates() -> None:
    """The one rendering helper: the chart's defaults (no layer of values/), or a course's layers; inline values
    win over either; --show-only narrows the render."""
    received = hub_values(render_chart())
    assert received["custom"]["coursehub"]["rtc"] == "everyone"  # chart/values.yaml's
    assert "GenericOAuthenticator" not in received["hub"]["config"]  # values/common.yaml's: not layered
    (policy,) = render_chart({"archive.volumeClaim": "archives"}, show_only=["templates/archive-networkpolicy.yaml"])
    assert policy["kind"] == "NetworkPolicy"
    tag = {"jupyterhub.singleuser.image.tag": "2026.11.1"}
    assert hub_values(render_chart(tag))["singleuser"]["image"]["tag"] == "2026.11.1"
    objs = render_chart(tag, course="stat159")
    assert hub_values(objs)["singleuser"]["image"]["tag"] == "2026.11.1"  # the course file says 2023.03.1


def test_a_render_is_read_through_libyaml_as_pyyaml_alone_reads_it(newest_helm: Helm, upstream_chart: Path) -> None:
    """rendered.objects parses with libyaml (coursehub/fastyaml.py: ten times faster on a course's render); the
    objects are exactly what PyYAML's own safe loader gives, and the membership check's dump finds the same."""
    from coursehub import fastyaml

    assert yaml.__with_libyaml__ and fastyaml.LOADER is yaml.CSafeLoader and fastyaml.DUMPER is yaml.CSafeDumper
    course = load_course("stat159")
    with staged_chart(upstream_chart) as staged:
        manifests = newest_helm.template(staged, course, Release.for_course(course))
    objs = rendered.objects(manifests)
    assert objs == [doc for doc in yaml.safe_load_all(manifests) if isinstance(doc, dict)] and len(objs) > 20
    assert [yaml.safe_load(fastyaml.dump(o)) for o in objs] == objs
