"""`make render`: write a course's rendered manifests, one file per object."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from coursehub.courses import Course
from coursehub.helm import Helm, Release, staged_chart
from coursehub.rendered import objects


def render(
    course: Course, helm: Helm, out: Path, kube_version: str, release: Release, chart: Path | None = None
) -> list[Path]:
    """Render with real Helm, then replace `out` with the result (nothing is written if Helm fails)."""
    with staged_chart(chart) as staged:
        manifests = helm.template(staged, course, release, kube_version)
    objs = objects(manifests)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    written = []
    for i, obj in enumerate(objs):
        name = re.sub(r"[^a-z0-9.-]+", "-", f"{obj['kind']}-{obj['metadata']['name']}".lower())
        path = out / f"{i:03d}-{name}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        written.append(path)
    return written
