"""Course images: each course's singleuser command really works on every variant of its image.

The environments are real venvs built from image/<course>/<tag>/requirements.txt
(cached by their hash); the command runs under a real hub. The broken cases
are the ones that reach students when nothing checks: each must fail with its
one-line verdict naming the flag and the package versions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from coursehub.chart.checks import check_values
from coursehub.chart.helm import Helm
from coursehub.chart.upstream import load_data
from coursehub.chart.validate import validate
from coursehub.courses import course_names, load_course
from coursehub.images import check
from coursehub.images.build import IMAGES, Variant, variants
from coursehub.images.check import check_command, passed_before
from helpers.commands import coursehub
from helpers.files import edit

BROKEN_IMAGE = Variant(
    "test",
    "test/jupyterlab4-without-collaboration",
    "broken",
    Path(__file__).with_name("images") / "jupyterlab4-without-collaboration",
)
STORES = ["--SQLiteYStore.db_path=/tmp/ystore.db", "--BaseFileIdManager.db_path=/tmp/file_id.db"]
SEED_COMMAND = [
    "jupyterhub-singleuser",
    "--LabApp.collaborative=true",
    "--YDocExtension.ystore_class=tmpystore.TmpYStore",
]


def variant(course: str, tag: str) -> Variant:
    (found,) = [v for v in variants(course) if v.tag == tag]
    return found


COURSE_VARIANTS = [(c, v.tag) for c in course_names() for v in variants(c)]


@pytest.mark.live  # runs the command under a real hub
@pytest.mark.parametrize(("course", "tag"), COURSE_VARIANTS, ids=[f"{c}-{t}" for c, t in COURSE_VARIANTS])
def test_the_course_command_works_on_every_variant_of_its_image(course: str, tag: str) -> None:
    cmd = load_course(course).values()["jupyterhub"]["singleuser"]["cmd"]
    assert [str(v) for v in check_command(variant(course, tag), cmd)] == []
    # the pass is remembered for exactly this command on exactly these pins
    assert passed_before(variant(course, tag), cmd)
    assert not passed_before(variant(course, tag), [*cmd, "--ServerApp.shutdown_no_activity_timeout=60"])


@pytest.mark.live  # runs the command under a real hub
def test_validate_reuses_a_passed_check_and_runs_a_changed_command(
    newest_helm: Helm, upstream_chart: Path, values_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helm = newest_helm
    course = load_course("stat159", values_dir=values_dir)
    cmd = course.values()["jupyterhub"]["singleuser"]["cmd"]
    deployed = variant("stat159", course.values()["jupyterhub"]["singleuser"]["image"]["tag"])
    if not passed_before(deployed, cmd):
        assert check_command(deployed, cmd) == []
    # from here a live run fails: validate must not start a server for the command that passed...
    monkeypatch.setattr(check, "run_server", lambda env, cmd: [("command", "a live run happened")])
    report = validate(course, helm, upstream_chart, ("1.35",))
    assert report.problems == []
    assert any(n.startswith("image check: the command passed on ") for n in report.notes), report.notes
    # ...and must run it for a command that did not
    edit(
        values_dir / "stat159.yaml",
        {"jupyterhub.singleuser.cmd": [*cmd, "--ServerApp.shutdown_no_activity_timeout=60"]},
    )
    report = validate(load_course("stat159", values_dir=values_dir), helm, upstream_chart, ("1.35",))
    assert any("a live run happened" in p.message for p in report.problems), report.problems


def test_stat159_has_the_seed_stack_and_the_current_stack() -> None:
    pins = {v.tag: v.pins() for v in variants("stat159")}
    old, new = pins["2023.03.1"], pins["2026.11.1"]
    assert old["jupyterlab"] == "3.6.1" and old["jupyter-server"] == "2.2.1" and old["bokeh"] == "2.4.3"
    assert new["jupyterlab"].startswith("4.") and new["jupyter-collaboration"].startswith("5.")
    for package in ("altair", "bokeh", "dask", "jupyter-server", "jupyterlab", "jupyterlab-server", "tornado"):
        assert package in old and package in new
    assert load_course("stat159").values()["jupyterhub"]["singleuser"]["image"]["tag"] == "2023.03.1"


@pytest.mark.live  # runs the command under a real hub
def test_the_seeds_command_fails_on_jupyterlab_4_without_collaboration() -> None:
    verdicts = [str(v) for v in check_command(BROKEN_IMAGE, SEED_COMMAND)]
    assert any(
        v.startswith("--LabApp.collaborative=true: the server did not start")
        and "jupyter_collaboration" in v
        and "jupyterlab 4.6.6" in v
        and "no jupyter-collaboration" in v
        for v in verdicts
    ), verdicts


@pytest.mark.live  # runs the command under a real hub
def test_tmpystores_ypy_store_fails_on_jupyter_collaboration_5() -> None:
    data100 = variants("data100")[0]
    verdicts = [
        str(v)
        for v in check_command(
            data100, ["jupyterhub-singleuser", "--YDocExtension.ystore_class=tmpystore.TmpYStore", *STORES]
        )
    ]
    assert any(
        v.startswith("--YDocExtension.ystore_class=tmpystore.TmpYStore: cannot import tmpystore")
        and "jupyter-collaboration 5.0.4" in v
        for v in verdicts
    ), verdicts
    # and the server falls back to a store in the home directory: the live check sees it
    assert any("written in the home directory" in v for v in verdicts), verdicts


@pytest.mark.live  # runs the command under a real hub
def test_a_misspelled_trait_is_named_with_the_right_spelling() -> None:
    verdicts = [
        str(v)
        for v in check_command(
            variant("stat159", "2023.03.1"), ["jupyterhub-singleuser", "--LabApp.colaborative=true", *STORES]
        )
    ]
    assert any(
        v.startswith("--LabApp.colaborative=true: LabApp has no trait colaborative (did you mean collaborative?)")
        and "jupyterlab 3.6.1" in v
        for v in verdicts
    ), verdicts
    assert any("RTC is off" in v for v in verdicts), verdicts  # Jupyter only warned; RTC really is off


@pytest.mark.live  # runs the command under a real hub
def test_a_store_path_in_the_home_directory_fails() -> None:
    verdicts = [
        str(v)
        for v in check_command(
            variants("data100")[0],
            ["jupyterhub-singleuser", "--SQLiteYStore.db_path=/home/jovyan/.ystore.db", STORES[1]],
        )
    ]
    assert [v.split(" [")[0] for v in verdicts] == [
        "--SQLiteYStore.db_path=/home/jovyan/.ystore.db: puts the Y store in the home directory, which is on NFS"
    ]


def test_every_image_installs_exactly_its_file_without_the_iri_checker() -> None:
    """The images leave out rfc3987-syntax and lark (2.7 s of CPU at every server start, for a format check
    nothing uses), and install their file with --no-deps so that pip does not bring them back; pip check (and
    `uv pip check` here) still fails a build on any dependency a file forgets."""
    images = [v for c in course_names() for v in variants(c)] + [BROKEN_IMAGE]
    for image in images:
        pins = image.pins()
        assert "rfc3987-syntax" not in pins and "lark" not in pins, image.requirements
        assert "jsonschema" in pins and "jupyter-events" in pins, image.requirements  # what asked for them
    for dockerfile in IMAGES.glob("*/*/Dockerfile"):
        text = dockerfile.read_text()
        assert "pip install --no-cache-dir --disable-pip-version-check --no-deps -r" in text, dockerfile
        assert "&& pip check &&" in text, dockerfile


def test_changing_a_pin_rebuilds_that_environment_and_nothing_else(tmp_path: Path) -> None:
    images = tmp_path / "image"
    shutil.copytree(IMAGES, images)
    before = {(v.course, v.tag): v.env for c in course_names() for v in variants(c, images)}
    requirements = images / "stat159" / "2023.03.1" / "requirements.txt"
    requirements.write_text(requirements.read_text().replace("dask==2023.1.1", "dask==2023.2.0"))
    after = {(v.course, v.tag): v.env for c in course_names() for v in variants(c, images)}
    assert [k for k in before if before[k] != after[k]] == [("stat159", "2023.03.1")]


def test_a_course_must_deploy_its_own_image(values_dir: Path) -> None:
    upstream = load_data()
    edit(values_dir / "data100.yaml", {"jupyterhub.singleuser.image.name": "quay.io/coursehub/stat159-image"})
    found = check_values(load_course("data100", values_dir=values_dir), upstream)
    assert [p.key for p in found] == ["jupyterhub.singleuser.image.name"] and "own image" in found[0].fix
    edit(values_dir / "stat159.yaml", {"jupyterhub.singleuser.image.tag": "2099.01.1"})
    found = check_values(load_course("stat159", values_dir=values_dir), upstream)
    assert [p.key for p in found] == ["jupyterhub.singleuser.image.tag"] and "no image variant" in found[0].message


def test_diff_shows_images_and_values_but_no_secrets() -> None:
    result = coursehub("diff", "stat159", "data100")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "image: quay.io/coursehub/stat159-image:2023.03.1 vs quay.io/coursehub/data100-image:2026.08.1" in out
    assert "~ package jupyterlab: 3.6.1 -> 4.6.6" in out and "+ package jupyter-collaboration==5.0.4" in out
    assert "~ jupyterhub.singleuser.image.tag: '2023.03.1' -> '2026.08.1'" in out
    assert "client_secret" not in out and "example-student" not in out
