"""`make render`: write a course's rendered manifests, one file per object.

Secret/hub carries every chart value, the course's decrypted private layer among them (OAuth client secret,
members, staff), so the folder is the user's alone (0700) and each file is created 0600, whatever the umask.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from coursehub.chart.helm import Helm, Release, staged_chart
from coursehub.chart.rendered import objects
from coursehub.courses import Course
from coursehub.errors import CoursehubError, Problem
from coursehub.files import replace_file
from coursehub.paths import display

# Written into every render folder: a later render may replace only a folder that carries it.
MARKER = ".coursehub-render"


def check_out(out: Path) -> None:
    """`out` must be absent, empty, or an earlier render: anything else may hold files nobody can get back."""
    if out.exists() and not out.is_dir():
        raise CoursehubError(Problem(display(out), "OUT", "is a file, not a folder", "name a new or empty folder"))
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise CoursehubError(
            Problem(
                display(out),
                "OUT",
                "is not empty and not an earlier render, so rendering into it could delete files",
                "name a new or empty folder (the default is rendered/<course>)",
            )
        )


def render(
    course: Course, helm: Helm, out: Path, kube_version: str, release: Release, chart: Path | None = None
) -> list[Path]:
    """Render with real Helm, then replace `out` with the result (nothing is written if Helm fails)."""
    check_out(out)
    with staged_chart(chart) as staged:
        manifests = helm.template(staged, course, release, kube_version)
    objs = objects(manifests)
    out.mkdir(parents=True, exist_ok=True)
    try:
        out.chmod(0o700)  # also an earlier render's folder, and before any file is written
    except PermissionError:
        raise CoursehubError(
            Problem(display(out), "OUT", "is another user's folder, so it cannot be made private", "name your own")
        ) from None
    replace_file(
        out / MARKER, f"rendered by coursehub for {course.name}: `make render` replaces this folder's *.yaml\n", 0o600
    )
    for old in out.glob("*.yaml"):
        old.unlink()
    written = []
    for i, obj in enumerate(objs):
        name = re.sub(r"[^a-z0-9.-]+", "-", f"{obj['kind']}-{obj['metadata']['name']}".lower())
        path = out / f"{i:03d}-{name}.yaml"
        replace_file(path, yaml.safe_dump(obj, sort_keys=False), 0o600)
        written.append(path)
    return written
