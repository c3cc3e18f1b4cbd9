"""scripts/suite-time.sh: two commits' clean-clone CI runs back to back, their times as a ratio.

The runs here are stand-in `.ci/run` scripts (test doubles: a real run takes minutes) in a
throw-away repository holding a copy of the script; what is checked is what the script
reports and what it leaves behind, never how long anything took.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from coursehub.paths import ROOT

SCRIPT = ROOT / "scripts" / "suite-time.sh"


class Repo:
    """A throw-away repository beside a `shared/` folder (as CI has it), holding a copy of the script."""

    def __init__(self, base: Path) -> None:
        self.base, self.path = base, base / "main"
        (self.path / "scripts").mkdir(parents=True)
        script = self.path / "scripts" / "suite-time.sh"
        script.write_bytes(SCRIPT.read_bytes())
        script.chmod(0o755)
        (base / "shared").mkdir()
        (base / "shared" / "marker").write_text("")
        self.clones = base / "clones"  # the script's TMPDIR: its clones, and the logs it keeps
        self.clones.mkdir()
        self.git("init", "-q")
        self.commit(None, "the script alone")

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def commit(self, ci_run: str | None, message: str) -> str:
        """A commit whose .ci/run is `ci_run` (None: no .ci/run at all)."""
        run = self.path / ".ci" / "run"
        if ci_run is None:
            run.unlink(missing_ok=True)
        else:
            run.parent.mkdir(exist_ok=True)
            run.write_text("#!/usr/bin/env bash\n" + ci_run)
            run.chmod(0o755)
        self.git("add", "-A")
        self.git("-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "--short", "HEAD")

    def suite_time(self, *commits: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.path / "scripts" / "suite-time.sh"), *commits],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"], "TMPDIR": str(self.clones), "HOME": str(self.base)},
            timeout=60,
        )


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


def test_each_run_is_reported_with_its_summary_and_a_failed_one_fails_the_whole(repo: Repo) -> None:
    base = repo.commit('[ -f ../shared/marker ] || exit 3\necho "==== 3 passed in 0.40s ===="\n', "the old suite")
    head = repo.commit('echo "==== 1 failed, 2 passed in 0.10s ===="\nexit 1\n', "the new suite")

    done = repo.suite_time(base, head)

    assert done.returncode == 1, done.stderr  # the ratio is printed, but a failed run is not a measurement
    report = done.stderr.splitlines()
    assert report[0] == f"base: {base} the old suite"
    assert re.fullmatch(r"  \d+:\d\d 3 passed in 0\.40s", report[1]), report[1]  # ran with ../shared beside it
    assert report[2] == f"head: {head} the new suite"
    assert re.fullmatch(r"  \d+:\d\d \(failed\) 1 failed, 2 passed in 0\.10s", report[3]), report[3]
    assert report[4] == f"  its log: {repo.clones}/suite-time-head-{head}.log"
    assert re.fullmatch(r"suite time head/base: \d+\.\d\d", done.stdout.strip()), done.stdout
    # the clones are gone; the failed run's log is kept
    assert [p.name for p in repo.clones.iterdir()] == [f"suite-time-head-{head}.log"]
    assert "1 failed, 2 passed" in (repo.clones / f"suite-time-head-{head}.log").read_text()


def test_two_passing_runs_exit_0_and_head_defaults_to_head(repo: Repo) -> None:
    base = repo.commit('echo "== 1 passed in 0.01s =="\n', "one")
    head = repo.commit('echo "== 2 passed in 0.01s =="\n', "two")

    done = repo.suite_time(base)

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[2] == f"head: {head} two"
    assert list(repo.clones.iterdir()) == []


@pytest.mark.parametrize("bad", ["base", "head"])
def test_a_commit_that_does_not_exist_stops_it_before_anything_runs(repo: Repo, bad: str) -> None:
    ran = repo.base / "ran"
    good = repo.commit(f"touch {ran}\n", "a suite")
    (repo.path / "tests").mkdir()  # a path, which `git checkout` would take without complaint
    (repo.path / "tests" / "x").write_text("")
    repo.commit(f"touch {ran}\n", "a folder named like a commit")
    commits = ["tests", good] if bad == "base" else [good, "tests"]

    done = repo.suite_time(*commits)

    assert done.returncode == 2
    assert done.stderr.strip() == "suite-time: not a commit here: tests" and done.stdout == ""
    assert not ran.exists()  # neither run started: no time lost, and no other commit timed in its place
    assert list(repo.clones.iterdir()) == []


def test_a_commit_without_ci_run_stops_it_before_anything_runs(repo: Repo) -> None:
    ran = repo.base / "ran"
    good = repo.commit(f"touch {ran}\n", "a suite")
    bare = repo.git("rev-list", "--max-parents=0", "--abbrev-commit", "HEAD")  # the script alone

    done = repo.suite_time(good, bare)

    assert done.returncode == 2
    assert done.stderr.strip() == f"suite-time: {bare} has no executable .ci/run" and done.stdout == ""
    assert not ran.exists()
    assert list(repo.clones.iterdir()) == []


def test_without_a_commit_it_prints_its_usage_and_runs_nothing() -> None:
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "scripts/suite-time.sh BASE [HEAD]" in done.stderr and done.stdout == ""
