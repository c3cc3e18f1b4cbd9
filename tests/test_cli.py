"""The entry point the Makefile calls (main(argv) in-process, and the installed command): exit codes, messages, files written."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from coursehub import cli
from coursehub.chart import upstream
from coursehub.courses import course_names
from helpers.commands import coursehub, installed_coursehub
from helpers.files import edit


def test_validate_runs_every_check_on_every_course_with_the_example_secrets(upstream_chart: Path) -> None:
    result = coursehub("validate", upstream=upstream_chart)
    assert result.returncode == 0, result.stderr
    for course in course_names():
        assert f"{course}: ok" in result.stdout
        assert f"{course}: note: using values/{course}.secret.example.yaml" in result.stdout
    assert "skipped helm lint" not in result.stdout
    # which groups the reconciler keeps to the values, and which it leaves to the admin page
    assert "stat159: note: groups whose members the values set: 4; groups whose members the admin page sets: none" in (
        result.stdout
    )


def test_render_writes_one_file_per_object_of_coursehub_and_z2jh(upstream_chart: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = coursehub("render", "--course", "data100", "--out", str(out), upstream=upstream_chart)
    assert result.returncode == 0, result.stderr
    objs = [yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))]
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    # coursehub's own objects, and z2jh's hub and proxy
    assert {("NetworkPolicy", "coursehub-archive"), ("Secret", "hub"), ("Deployment", "hub")} <= names
    assert {("Deployment", "proxy"), ("Service", "proxy-public")} <= names
    assert len(objs) == len(names) == int(result.stdout.split(" objects written")[0].rsplit(" ", 1)[-1])


def test_commands_that_need_the_upstream_chart_say_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkout with no chart in chart/charts/ and no UPSTREAM_CHART: one line, nothing written."""
    monkeypatch.delenv("UPSTREAM_CHART", raising=False)
    monkeypatch.setattr(upstream, "CHARTS_DIR", tmp_path / "charts")
    for args in (
        ["render", "--course", "stat159", "--out", str(tmp_path / "out")],
        ["deploy", "--course", "stat159"],
        ["validate", "--course", "stat159"],
    ):
        assert cli.main(args) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "make deps" in lines[0] and "UPSTREAM_CHART=" in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_deps_if_missing_uses_the_chart_in_place_and_fetches_nothing(
    upstream_chart: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UPSTREAM_CHART", str(upstream_chart))
    monkeypatch.setattr(upstream, "CHARTS_DIR", tmp_path / "charts")
    assert cli.main(["deps", "--if-missing"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"chart: {upstream_chart}")
    assert not (tmp_path / "charts").exists()


def test_an_unknown_course_lists_the_courses() -> None:
    result = coursehub("validate", "--course", "stat195")
    assert result.returncode == 1 and "there is no course 'stat195'" in result.stderr and "stat159" in result.stderr


BAD_INPUT = {
    "managed_groups typo": (
        "stat159.yaml",
        {"jupyterhub.hub.config.Authenticator.managed_groups": False},
        "jupyterhub.hub.config.Authenticator.managed_groups",
        "manage_groups",
    ),
    "wrong type": (
        "stat159.yaml",
        {"jupyterhub.custom.coursehub.course": ["stat159"]},
        "jupyterhub.custom.coursehub.course",
        "is not of type 'string'",
    ),
    "unknown key": (
        "stat159.yaml",
        {"jupyterhub.custom.coursehub.shared_accounts": []},
        "jupyterhub.custom.coursehub.shared_accounts",
        "not a known key",
    ),
    "duplicate group": (
        "stat159.yaml",
        {
            "jupyterhub.custom.coursehub.sharedAccounts": [
                {"group": "shared-1", "account": "collab-shared-1"},
                {"group": "shared-1", "account": "collab-shared-2"},
            ]
        },
        "jupyterhub.custom.coursehub.sharedAccounts[1].group",
        "declared twice",
    ),
    "invalid account name": (
        "stat159.yaml",
        {"jupyterhub.custom.coursehub.sharedAccounts": [{"group": "shared-1", "account": "Collab Shared"}]},
        "jupyterhub.custom.coursehub.sharedAccounts[0].account",
        "does not match",
    ),
    "member of a missing group": (
        "stat159.secret.example.yaml",
        {"jupyterhub.custom.coursehub.members.shared-7": ["s"]},
        "jupyterhub.custom.coursehub.members.shared-7",
        "not declared",
    ),
    "missing image tag": (
        "stat159.yaml",
        {"jupyterhub.singleuser.image.tag": None},
        "jupyterhub.singleuser.image.tag",
        "non-empty",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_exits_non_zero_names_file_and_key_and_writes_nothing(
    case: str,
    values_dir: Path,
    upstream_chart: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In-process, through the entry point's main(argv): the matrix costs no interpreter start-ups."""
    file, change, key, words = BAD_INPUT[case]
    edit(values_dir / file, change)
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.yaml").write_text("kept: true\n")
    monkeypatch.setenv("COURSEHUB_VALUES", str(values_dir))
    monkeypatch.setenv("UPSTREAM_CHART", str(upstream_chart))
    for args in (
        ["validate", "--course", "stat159"],
        ["render", "--course", "stat159", "--out", str(out)],
        ["deploy", "--course", "stat159", "--dry-run"],
    ):
        code = cli.main(args)
        printed = capsys.readouterr()
        assert code == 1, (args, printed.out)
        errors = [line for line in printed.err.splitlines() if key in line]
        assert errors and file in errors[0] and words in errors[0], (args, printed.err)
        assert "would run" not in printed.out
    assert [p.name for p in out.iterdir()] == ["previous.yaml"]


def test_bad_input_through_the_installed_command_is_the_same_one_line(values_dir: Path, upstream_chart: Path) -> None:
    """The one subprocess of the matrix: the console script exits 1 with the same line on stderr."""
    file, change, key, words = BAD_INPUT["invalid account name"]
    edit(values_dir / file, change)
    result = installed_coursehub("validate", "--course", "stat159", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if key in line]
    assert file in line and words in line and "Traceback" not in result.stderr


def test_deploy_dry_run_shows_helm_upgrade_with_the_render_layers(upstream_chart: Path, values_dir: Path) -> None:
    (values_dir / "stat159.secret.yaml").write_text((values_dir / "stat159.secret.example.yaml").read_text())
    result = coursehub(
        "deploy",
        "--course",
        "stat159",
        "--dry-run",
        "--namespace",
        "stat159-prod",
        values=values_dir,
        upstream=upstream_chart,
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    # without deploy.kubeContext the printed command refuses first (tests/test_deploy.py runs it)
    assert "deploy.kubeContext: is not set" in line.split("exit 1;")[0]
    words = shlex.split(line)
    argv = words[next(i for i, w in enumerate(words) if w.endswith("/helm") and words[i + 1] == "upgrade") :]
    assert argv[1:4] == ["upgrade", "--install", "stat159"]
    assert argv[argv.index("--namespace") + 1] == "stat159-prod"
    files = [Path(argv[i + 1]).name for i, a in enumerate(argv) if a == "--values"]
    assert files == ["common.yaml", "stat159.yaml", "stat159.secret.yaml"]


def test_the_demo_guide_names_the_example_ta_but_only_counts_a_real_staff_list(values_dir: Path) -> None:
    from coursehub.courses import load_course
    from coursehub.hub import demo

    example = demo.guide(load_course("stat159", values_dir=values_dir), "http://hub", "pw", "instructor")
    assert "  example-ta: TA, every shared account and the course's groups in the admin page" in example
    (values_dir / "stat159.secret.yaml").write_text(
        yaml.safe_dump({"jupyterhub": {"custom": {"coursehub": {"members": {}, "staff": ["real-ta", "other-ta"]}}}})
    )
    real = demo.guide(load_course("stat159", values_dir=values_dir), "http://hub", "pw", "instructor")
    assert "  2 TAs of the private staff list: TA" in real and "real-ta" not in real


AFTER_VALIDATE = """
import gc, json, sys
from coursehub import cli
code = cli.main(["validate", "--course", "stat159"])
from jupyterhub import orm, scopes
from jupyterhub.app import JupyterHub
from coursehub.groups import hubpython
p = hubpython.patches()
marks = {p.GROUP_SHARES_MARK, p.ROLES_BY_NAME_MARK, p.GROUPS_HELD_MARK, p.COLLECT_AFTER_LOAD_MARK}
wrapped = [
    name for owner, name in ((scopes, "get_scopes_for"), (JupyterHub, "init_role_creation"),
    (JupyterHub, "init_role_assignment"), (JupyterHub, "init_db"), (JupyterHub, "init_spawners"))
    if any(getattr(getattr(owner, name), mark, False) for mark in marks)
]
print(json.dumps({"code": code, "gc": gc.isenabled(), "wrapped": wrapped}))
"""


def test_validate_leaves_the_collector_on_and_jupyterhub_unwrapped(upstream_chart: Path) -> None:
    """`make validate` runs z2jh's real config, and with it coursehub's hub-side file, to build the pods: in the
    command's own process that file builds settings and nothing else (issue 24: gc was left off, JupyterHub
    wrapped). A process of its own, since other tests in this worker install the wrappers on purpose."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "UPSTREAM_CHART": str(upstream_chart)}
    result = subprocess.run([sys.executable, "-c", AFTER_VALIDATE], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state == {"code": 0, "gc": True, "wrapped": []}
