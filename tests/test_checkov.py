"""checkov (pinned, in its own environment: `make checkov`) on the real render, offline.

coursehub's own objects (the archive ConfigMaps, NetworkPolicy, Jobs and CronJob)
must pass every Kubernetes check but the ones their templates justify with a
`checkov.io/skip` annotation. The whole stat159 render and plain z2jh 4.4.0 are
counted (with the pods KubeSpawner builds for a student and a shared account) and printed:
the course-hardening goal of issue 10 is at most half of plain z2jh.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from coursehub.chart import pods
from coursehub.chart.helm import Helm
from coursehub.chart.rendered import objects
from coursehub.paths import ROOT
from helpers.chart import ARCHIVE_JOBS, is_coursehubs, render_chart

# Keep in step with CHECKOV_VERSION in the Makefile.
CHECKOV_VERSION = "3.3.30"
CHECKOV = ROOT / ".tools" / f"checkov-{CHECKOV_VERSION}" / "bin" / "checkov"
# Every object of a Helm render lands in the namespace `helm install` names: the
# "default namespace" check says nothing about a chart.
NOISE = "CKV_K8S_21"


@pytest.fixture(scope="module")
def checkov() -> Path:
    if not CHECKOV.exists():
        pytest.skip(f"needs checkov {CHECKOV_VERSION} in {CHECKOV.parent.parent}: run `make checkov`")
    return CHECKOV


def run_checkov(checkov: Path, sets: dict[str, list[dict[str, Any]]], folder: Path) -> dict[str, dict[str, Any]]:
    """checkov's Kubernetes checks on each set of objects (a folder each, one file per object), in one run (a
    start of checkov costs 5 s of CPU). Returns per set its objects' kinds and its passed, failed and skipped
    checks."""
    for name, objs in sets.items():
        (folder / name).mkdir(parents=True)
        for i, obj in enumerate(objs):
            (folder / name / f"{i:03d}-{obj['kind']}.yaml").write_text(yaml.safe_dump(obj))
    result = subprocess.run(
        [str(checkov), "-d", str(folder), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(folder), "LOG_LEVEL": "ERROR"},
    )
    assert result.returncode in (0, 1), result.stderr  # 1: some check failed
    report = json.loads(result.stdout)
    results = (report[0] if isinstance(report, list) else report)["results"]
    reports: dict[str, dict[str, Any]] = {
        name: {"kinds": [o["kind"] for o in objs], "passed": [], "failed": [], "skipped": []}
        for name, objs in sets.items()
    }
    for outcome in ("passed", "failed", "skipped"):
        for check in results.get(f"{outcome}_checks", []):
            reports[Path(check["file_path"]).parts[1]][outcome].append(check)
    return reports


def failed(report: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((c["check_id"], c["resource"]) for c in report["failed"] if c["check_id"] != NOISE)


def skipped(report: dict[str, Any]) -> list[str]:
    return sorted({c["check_id"] for c in report["skipped"]})


@pytest.fixture(scope="module")
def reports(
    checkov: Path, newest_helm: Helm, upstream_chart: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """checkov on every set the tests below read: coursehub's own objects (`own`; `pinned`: with the archive
    image's digest set), the whole course (`whole`: the render and the pods KubeSpawner builds for a student
    and a shared account), plain z2jh 4.4.0 (`z2jh`), and an archive Job without its hardening (`weak`)."""
    rendered = render_chart(ARCHIVE_JOBS, course="stat159")
    built = [
        {**pod, "metadata": {**pod["metadata"], "name": who.replace(" ", "-")}}
        for who, pod in pods.course_pods(rendered, "stat159").items()
        if who in ("student", "shared account")  # the pods students get (a TA's differs only in a mount's mode)
    ]
    pinned = render_chart({**ARCHIVE_JOBS, "archive.image.digest": "sha256:" + "ab" * 32}, course="stat159")
    z2jh = newest_helm.run(["template", "stat159", str(upstream_chart), "--namespace", "stat159"], str(upstream_chart))
    weak = copy.deepcopy(next(o for o in rendered if o["kind"] == "Job" and is_coursehubs(o)))
    pod = weak["spec"]["template"]["spec"]
    del pod["containers"][0]["securityContext"], pod["automountServiceAccountToken"]
    sets = {
        "own": [o for o in rendered if is_coursehubs(o)],
        "whole": rendered + built,
        "z2jh": objects(z2jh),
        "pinned": [o for o in pinned if is_coursehubs(o)],
        "weak": [weak],
    }
    # Two runs, not one: checkov's graph checks join every NetworkPolicy of a run to every pod its selector
    # matches, namespaces aside (CKV2_K8S_6), so z2jh's pods must not meet coursehub's policies. Each set's
    # results are then exactly those of a run of its own.
    reports = run_checkov(checkov, {k: sets[k] for k in ("own", "whole", "pinned")}, tmp_path_factory.mktemp("ck"))
    return reports | run_checkov(checkov, {k: sets[k] for k in ("z2jh", "weak")}, tmp_path_factory.mktemp("ck"))


def test_coursehubs_own_objects_fail_no_checkov_check(reports: dict[str, dict[str, Any]]) -> None:
    own, whole, upstream = reports["own"], failed(reports["whole"]), failed(reports["z2jh"])
    assert sorted(own["kinds"]) == ["ConfigMap", "CronJob", "Job", "Job"] + ["NetworkPolicy"] * 6  # no hub code
    print(
        f"checkov failed (without {NOISE}): coursehub {len(whole)}, z2jh {len(upstream)}; "
        f"coursehub's own objects {len(failed(own))} (skipped with a reason in the template: {', '.join(skipped(own))})"
    )
    assert failed(own) == []
    assert len(own["passed"]) > 100  # checkov really looked at the Jobs
    assert {resource.split(".")[2] for _, resource in whole} >= {"student", "shared-account"}  # the pods counted
    assert len(whole) <= len(upstream) // 2  # issue 10: at most half of plain z2jh's failures
    # Every skip is one the templates justify, and the digest skip goes once a digest is set.
    assert skipped(own) == ["CKV_K8S_40", "CKV_K8S_43"]
    assert failed(reports["pinned"]) == [] and skipped(reports["pinned"]) == ["CKV_K8S_40"]


def test_checkov_fails_the_jobs_without_their_hardening(reports: dict[str, dict[str, Any]]) -> None:
    """The check above can fail: the same Job with its security context taken away fails checkov."""
    ids = {check for check, _ in failed(reports["weak"])}
    assert {"CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_38"} <= ids
