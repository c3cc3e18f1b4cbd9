"""`make deploy`: validate a course fully, then `helm upgrade --install` it with the same value layers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from coursehub.courses import Course
from coursehub.errors import CoursehubError
from coursehub.helm import Helm, Release, staged_chart
from coursehub.upstream import require_chart
from coursehub.validate import validate


def deploy(course: Course, helm: Helm, release: Release, dry_run: bool, chart: Path | None = None) -> list[str]:
    """Returns the helm command line; runs it unless dry_run. Refuses a course that fails validation."""
    chart = chart or require_chart()
    report = validate(course, helm, chart)
    if report.problems:
        raise CoursehubError(report.problems)
    with staged_chart(chart) as staged:
        command = helm.upgrade_command(staged, course, release)
        if not dry_run:
            subprocess.run(command, check=True)
    return command
