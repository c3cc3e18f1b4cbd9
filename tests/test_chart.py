"""The coursehub chart rendered by real Helm 3 and Helm 4 with the real z2jh 4.4.0 chart as its dependency.

What the hub will run is read back from z2jh's own Secret/hub, as the hub reads it.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

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
from helpers.chart import find, render_chart
from helpers.files import edit

hub_python = hubpython.load()


def hub_values(objs: list[dict]) -> dict:
    secret = find(objs, "Secret", "hub")
    return yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"]))


@pytest.mark.parametrize("course", course_names())
def test_the_hub_receives_exactly_what_the_course_declares(helm: Helm, upstream_chart: Path, course: str) -> None:
    loaded = load_course(course)
    objs = render_chart(course=loaded, helm=helm)
    assert list(rendered.hub_receives_course(loaded, effective(loaded, load_data(upstream_chart)), objs)) == []
    received = hub_values(objs)
    declared = loaded.values()["jupyterhub"]
    assert received["custom"]["coursehub"] == declared["custom"]["coursehub"]
    assert received["singleuser"]["image"]["name"] == declared["singleuser"]["image"]["name"]
    assert received["hub"]["config"]["Authenticator"]["manage_groups"] is False


def test_stat159_reproduces_the_seed(helm: Helm, upstream_chart: Path) -> None:
    received = hub_values(render_chart(course="stat159", helm=helm))
    accounts = received["custom"]["coursehub"]["sharedAccounts"]
    assert [a["group"] for a in accounts] == [f"shared-{i}" for i in range(1, len(accounts) + 1)]
    assert all(a["account"] == f"collab-{a['group']}" for a in accounts)
    cmd = received["singleuser"]["cmd"]
    assert cmd[0] == "jupyterhub-singleuser" and "--LabApp.collaborative=true" in cmd
    assert "--SQLiteYStore.db_path=/tmp/ystore.db" in cmd
    assert not any("tmpystore" in arg for arg in cmd)


def test_every_course_gets_rtc_with_stores_off_home(helm: Helm, upstream_chart: Path) -> None:
    received = hub_values(render_chart(course="data100", helm=helm))
    cmd = received["singleuser"]["cmd"]
    assert "--SQLiteYStore.db_path=/tmp/jupyter_ystore.db" in cmd
    assert "--BaseFileIdManager.db_path=/tmp/jupyter_file_id.db" in cmd
    history = received["singleuser"]["extraFiles"]["coursehub-ipython-history"]
    assert history["data"]["HistoryManager"]["hist_file"] == ":memory:"


def test_the_hub_runs_coursehubs_hub_image_which_carries_the_hub_side(helm: Helm, upstream_chart: Path) -> None:
    objs = render_chart(course="stat159", helm=helm)
    (container,) = find(objs, "Deployment", "hub")["spec"]["template"]["spec"]["containers"]
    image = load_course("stat159").values()["jupyterhub"]["hub"]["image"]
    assert container["image"] == f"quay.io/coursehub/hub:{image['tag']}"
    # nothing of coursehub's code travels in the chart any more: no ConfigMap, no volume for it
    assert not [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("coursehub-hub")]
    assert "coursehub-hub-python" not in str(find(objs, "Deployment", "hub"))
    # the reconciler service runs from the package the image installs
    assert hub_python.reconciler_service()["command"][1:] == ["-m", "coursehub_hub.reconcile", "--in-hub"]


def test_plain_helm_with_the_values_files_gives_what_make_render_gives(
    helm: Helm, upstream_chart: Path, tmp_path: Path
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
        by_make = helm.template(staged, course, release, extra=["--values", str(pinned)])
        plain = helm.run(
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


def test_membership_is_in_a_secret_and_in_no_configmap(helm: Helm, upstream_chart: Path) -> None:
    course = load_course("stat159")
    declaration = course.values()["jupyterhub"]["custom"]["coursehub"]
    members = {m for g in declaration["members"].values() for m in g} | set(declaration["staff"])  # TAs too
    assert members and declaration["staff"]
    objs = render_chart(course=course, helm=helm)
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
def test_every_rendered_object_passes_strict_kubernetes_schemas(
    newest_helm: Helm, upstream_chart: Path, version: str
) -> None:
    objs = render_chart(course="stat159")
    assert {"Deployment", "Service", "ConfigMap", "Secret", "NetworkPolicy"} <= {o["kind"] for o in objs}
    for obj in objs:
        assert kube.problems(obj, version) == []
    broken = {**objs[0], "metadata": {**objs[0]["metadata"], "nmae": "x"}}
    assert kube.problems(broken, version)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"jupyterhub.custom.coursehub.sharedAcounts": []}, "sharedAcounts"),
        ({"jupyterhub.custom.coursehub.course": 159}, "course"),
        ({"jupyterhub.singleuser.image.tag": None}, "tag"),
        ({"jupyterhub.singleuser.image.tag": 2023}, "tag"),  # z2jh's own schema, applied by Helm
        ({"jupyterhub.custom.coursehub.sharedAccounts": [{"group": "Bad Name", "account": "a"}]}, "group"),
    ],
)
def test_helm_itself_rejects_bad_values_naming_the_key(
    helm: Helm, upstream_chart: Path, values_dir: Path, change: dict, words: str
) -> None:
    edit(values_dir / "stat159.yaml", change)
    with pytest.raises(CoursehubError) as caught:
        render_chart(course=load_course("stat159", values_dir=values_dir), helm=helm)
    message = str(caught.value)
    assert "schema" in message.lower() and words in message


def test_helm_lint_strict_passes(helm: Helm, upstream_chart: Path) -> None:
    course = load_course("stat159")
    with staged_chart(upstream_chart) as staged:
        out = helm.lint(staged, course)
    assert "0 chart(s) failed" in out


def test_chart_lock_is_in_sync_with_chart_yaml(helm: Helm, tmp_path: Path) -> None:
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
        [str(helm.binary), "dependency", "build", str(chart)], capture_output=True, text=True, env=env
    )
    assert "out of sync" not in result.stderr, result.stderr
    lock = yaml.safe_load((CHART / "Chart.lock").read_text())
    assert lock["dependencies"] == yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    # and it would notice a lock that is out of sync
    (chart / "Chart.lock").write_text((CHART / "Chart.lock").read_text().replace("4.4.0", "4.3.0"))
    result = subprocess.run(
        [str(helm.binary), "dependency", "build", str(chart)], capture_output=True, text=True, env=env
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


def test_render_chart_takes_inline_values_and_shows_only_the_named_templates(helm: Helm, upstream_chart: Path) -> None:
    """The one rendering helper: inline overrides win over the course's layers; --show-only narrows the render."""
    (policy,) = render_chart(show_only=["templates/archive-networkpolicy.yaml"], course="stat159", helm=helm)
    assert policy["kind"] == "NetworkPolicy"
    objs = render_chart({"jupyterhub.singleuser.image.tag": "2026.11.1"}, course="stat159", helm=helm)
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
