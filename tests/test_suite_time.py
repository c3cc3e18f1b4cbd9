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

from coursehub.paths import ROOT

SCRIPT = ROOT / "scripts" / "suite-time.sh"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, ci_run: str, message: str) -> str:
    run = repo / ".ci" / "run"
    run.parent.mkdir(exist_ok=True)
    run.write_text("#!/usr/bin/env bash\n" + ci_run)
    run.chmod(0o755)
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "--short", "HEAD")


def test_each_run_is_reported_with_its_summary_and_the_ratio_is_printed(tmp_path: Path) -> None:
    repo = tmp_path / "main"
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "suite-time.sh").write_bytes(SCRIPT.read_bytes())
    (repo / "scripts" / "suite-time.sh").chmod(0o755)
    _git(repo, "init", "-q")
    (tmp_path / "shared").mkdir()  # CI's ../shared, which each clone must see beside it
    (tmp_path / "shared" / "marker").write_text("")
    base = _commit(repo, '[ -f ../shared/marker ] || exit 3\necho "==== 3 passed in 0.40s ===="\n', "the old suite")
    head = _commit(repo, 'echo "==== 1 failed, 2 passed in 0.10s ===="\nexit 1\n', "the new suite")
    clones = tmp_path / "clones"
    clones.mkdir()

    done = subprocess.run(
        [str(repo / "scripts" / "suite-time.sh"), base, head],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "TMPDIR": str(clones), "HOME": str(tmp_path)},
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    report = done.stderr.splitlines()
    assert report[0] == f"base: {base} the old suite"
    assert re.fullmatch(r"  \d+:\d\d 3 passed in 0\.40s", report[1]), report[1]  # ran with ../shared beside it
    assert report[2] == f"head: {head} the new suite"
    assert re.fullmatch(r"  \d+:\d\d \(failed\) 1 failed, 2 passed in 0\.10s", report[3]), report[3]
    assert report[4] == f"  its log: {clones}/suite-time-head-{head}.log"
    assert re.fullmatch(r"suite time head/base: \d+\.\d\d", done.stdout.strip()), done.stdout
    # the clones are gone; the failed run's log is kept
    assert [p.name for p in clones.iterdir()] == [f"suite-time-head-{head}.log"]
    assert "1 failed, 2 passed" in (clones / f"suite-time-head-{head}.log").read_text()


def test_without_a_commit_it_prints_its_usage_and_runs_nothing() -> None:
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "scripts/suite-time.sh BASE [HEAD]" in done.stdout


def test_a_commit_that_does_not_exist_stops_it_before_anything_runs(tmp_path: Path) -> None:
    repo = tmp_path / "main"
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "suite-time.sh").write_bytes(SCRIPT.read_bytes())
    (repo / "scripts" / "suite-time.sh").chmod(0o755)
    _git(repo, "init", "-q")
    ran = tmp_path / "ran"
    _commit(repo, f"touch {ran}\n", "a suite")
    clones = tmp_path / "clones"
    clones.mkdir()

    done = subprocess.run(
        [str(repo / "scripts" / "suite-time.sh"), "no-such-commit"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "TMPDIR": str(clones), "HOME": str(tmp_path)},
        timeout=60,
    )

    assert done.returncode != 0
    assert "no-such-commit" in done.stderr and done.stdout == ""
    assert not ran.exists()  # no .ci/run of another commit measured in its place
    assert list(clones.iterdir()) == []
