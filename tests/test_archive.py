"""Archive and restore of shared accounts' homes: the module on real folders, the Jobs rendered by Helm."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import tarfile
from pathlib import Path

import pytest
import yaml

from conftest import coursehub, render_chart
from coursehub import kube
from coursehub.courses import Course, Layer, load_course
from coursehub.helm import Helm
from coursehub.paths import CHART

_spec = importlib.util.spec_from_file_location(
    "coursehub_archive", CHART / "files" / "archive" / "coursehub_archive.py"
)
assert _spec and _spec.loader
archiving = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(archiving)


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    home = tmp_path / "homes" / "collab-shared-1"
    (home / "project" / "data").mkdir(parents=True)
    (home / "project" / "analysis.ipynb").write_text('{"cells": []}\n')
    (home / "project" / "data" / "big.bin").write_bytes(os.urandom(300_000))
    (home / ".hidden").write_text("dotfile\n")
    (home / "project" / "run.sh").write_text("#!/bin/sh\n")
    (home / "project" / "run.sh").chmod(0o755)
    return tmp_path / "homes"


def snapshot(home: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(home)): (p.read_bytes(), p.stat().st_mode & 0o777) for p in home.rglob("*") if p.is_file()
    }


def test_an_archive_restored_into_an_empty_home_is_byte_identical(homes: Path, tmp_path: Path) -> None:
    before = snapshot(homes / "collab-shared-1")
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive", stamp="20261125T000000Z")
    assert archive.name == "collab-shared-1-20261125T000000Z.tar.gz"
    manifest = yaml.safe_load(archiving.manifest_path(archive).read_text())
    assert {f["path"] for f in manifest["files"]} == set(before)
    restored = tmp_path / "restored"
    archiving.restore_account(archive, restored, account="collab-shared-1")
    assert snapshot(restored / "collab-shared-1") == before


def test_restore_refuses_a_home_that_is_not_empty_unless_forced(homes: Path, tmp_path: Path) -> None:
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive")
    (homes / "collab-shared-1" / "new-work.txt").write_text("since the archive\n")
    with pytest.raises(archiving.ArchiveError, match="is not empty"):
        archiving.restore_account(archive, homes)
    assert (homes / "collab-shared-1" / "new-work.txt").exists()
    archiving.restore_account(archive, homes, force=True)


def test_restore_refuses_a_damaged_or_foreign_archive(homes: Path, tmp_path: Path) -> None:
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive")
    with pytest.raises(archiving.ArchiveError, match="not collab-shared-2's"):
        archiving.restore_account(archive, tmp_path / "x", account="collab-shared-2")
    with open(archive, "ab") as f:
        f.write(b"garbage")
    with pytest.raises(archiving.ArchiveError, match="does not match its manifest"):
        archiving.restore_account(archive, tmp_path / "y")


def test_restore_refuses_entries_outside_the_manifest(homes: Path, tmp_path: Path) -> None:
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive")
    evil = tmp_path / "evil.txt"
    evil.write_text("x")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(evil, arcname="../escape.txt")
    manifest = archiving.manifest_path(archive)
    data = json.loads(manifest.read_text())
    data["archive_sha256"] = archiving._sha256(archive)  # a consistent manifest: the entry check must catch it
    manifest.write_text(json.dumps(data))
    with pytest.raises(archiving.ArchiveError, match="unexpected entry"):
        archiving.restore_account(archive, tmp_path / "z")
    assert not (tmp_path / "escape.txt").exists()


def with_settings(folder: Path, **settings: object) -> Course:
    """stat159 with one more values file on top, as `make archive`'s --set flags would give."""
    course = load_course("stat159")
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump({"archive": settings}))
    return Course(
        course.name, course.course_file, (*course.layers, Layer(path, {"archive": settings})), course.chart_defaults
    )


def test_normal_renders_hold_the_archive_code_but_no_job(helm: Helm, upstream_chart: Path) -> None:
    kinds = {(o["kind"], o["metadata"].get("name")) for o in render_chart(helm, upstream_chart, "stat159")}
    assert ("ConfigMap", "coursehub-archive") in kinds
    assert not {k for k, _ in kinds} & {"Job", "CronJob"}


@pytest.mark.parametrize("version", kube.SUPPORTED)
def test_archive_and_restore_jobs_render_and_pass_kubernetes_schemas(
    helm: Helm, upstream_chart: Path, version: str, tmp_path: Path
) -> None:
    course = with_settings(
        tmp_path,
        run=True,
        schedule="0 3 * * 0",
        restore={"account": "collab-shared-2", "archive": "collab-shared-2-x.tar.gz"},
    )
    objs = [o for o in render_chart(helm, upstream_chart, course) if o["kind"] in ("Job", "CronJob")]
    assert sorted(o["kind"] for o in objs) == ["CronJob", "Job", "Job"]
    for obj in objs:
        assert kube.problems(obj, version) == []
    archive_job = next(o for o in objs if o["kind"] == "Job" and "archive" in o["metadata"]["generateName"])
    args = archive_job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:5] == ["archive", "--homes", "/homes", "--dest", "/archive"]
    assert args[5:] == [f"collab-shared-{i}" for i in range(1, 5)]
    restore = next(o for o in objs if o["kind"] == "Job" and "restore" in o["metadata"]["generateName"])
    assert restore["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "restore",
        "--homes",
        "/homes",
        "--archive",
        "/archive/collab-shared-2-x.tar.gz",
        "--account",
        "collab-shared-2",
    ]


def test_make_archive_and_restore_print_the_commands_that_start_them() -> None:
    result = coursehub("archive", "--course", "stat159")
    assert result.returncode == 0, result.stderr
    command = result.stdout.strip().splitlines()[-1]
    render, _, start = command.partition(" | ")
    assert shlex.split(start) == ["kubectl", "--namespace", "stat159", "create", "-f", "-"]
    assert "--set archive.run=true" in render and "--show-only templates/archive-job.yaml" in render
    result = coursehub(
        "restore", "--course", "stat159", "--account", "collab-shared-2", "--archive", "a.tar.gz", "--force"
    )
    assert result.returncode == 0 and "archive.restore.account=collab-shared-2" in result.stdout
    assert "--set archive.restore.force=true" in result.stdout
    result = coursehub("restore", "--course", "stat159", "--account", "collab-nobody", "--archive", "a.tar.gz")
    assert result.returncode == 1 and "has no account 'collab-nobody'" in result.stderr
