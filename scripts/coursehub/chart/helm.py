"""Running Helm on the coursehub chart: one place that builds every Helm command line.

Render (`helm template`), lint and deploy (`helm upgrade --install`) share
`value_args`, so what ops deploy is exactly what was rendered and validated.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from coursehub.chart.upstream import NAME, require_chart
from coursehub.courses import Course
from coursehub.errors import CoursehubError, Problem
from coursehub.paths import CHART, HUB_PYTHON, display

DEFAULT_KUBE_VERSION = "1.33"
# A pod annotation on the hub: when coursehub's hub-side Python (any file) changes, the
# hub restarts (z2jh already restarts it when Secret/hub or its ConfigMap change).
HUB_PYTHON_ANNOTATION = r"jupyterhub.hub.annotations.coursehub\.jupyter\.org/hub-python-sha256"


def hub_python_sha256() -> str:
    """Of every file the ConfigMap ships to the hub (the hub-side config and the reconciler)."""
    digest = hashlib.sha256()
    for path in sorted(HUB_PYTHON.parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def value_args(course: Course) -> list[str]:
    """The course's value layers, in order, as Helm arguments."""
    args: list[str] = []
    for path in course.files:
        args += ["--values", str(path)]
    return [*args, "--set-string", f"{HUB_PYTHON_ANNOTATION}={hub_python_sha256()}"]


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str

    @classmethod
    def for_course(cls, course: Course, name: str | None = None, namespace: str | None = None) -> Release:
        return cls(name or course.name, namespace or course.name)


@contextmanager
def staged_chart(dependency: Path | None = None) -> Iterator[Path]:
    """A temporary copy of chart/ with the upstream chart as its dependency.

    chart/ itself is never written to, so UPSTREAM_CHART can point anywhere.
    """
    dependency = dependency or require_chart()
    with tempfile.TemporaryDirectory(prefix="coursehub-chart-") as tmp:
        staged = Path(tmp) / "coursehub"
        shutil.copytree(CHART, staged, ignore=shutil.ignore_patterns("charts", "__pycache__"))
        (staged / "charts").mkdir()
        target = staged / "charts" / (dependency.name if dependency.is_file() else NAME)
        if dependency.is_file():
            shutil.copyfile(dependency, target)
        else:
            target.symlink_to(dependency, target_is_directory=True)
        yield staged


class Helm:
    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def run(self, args: list[str], what: str) -> str:
        result = subprocess.run([str(self.binary), *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise CoursehubError(
                Problem(what, "", f"helm {args[0]} failed:\n{result.stderr.strip()}", "correct the values named above")
            )
        return result.stdout

    def template_args(self, chart: Path, course: Course, release: Release, kube_version: str) -> list[str]:
        return [
            "template",
            release.name,
            str(chart),
            "--namespace",
            release.namespace,
            "--kube-version",
            kube_version,
            *value_args(course),
        ]

    def template(
        self,
        chart: Path,
        course: Course,
        release: Release,
        kube_version: str = DEFAULT_KUBE_VERSION,
        extra: list[str] | None = None,
    ) -> str:
        return self.run(
            [*self.template_args(chart, course, release, kube_version), *(extra or [])], display(course.course_file)
        )

    def lint(self, chart: Path, course: Course, kube_version: str = DEFAULT_KUBE_VERSION) -> str:
        return self.run(
            ["lint", "--strict", str(chart), "--kube-version", kube_version, *value_args(course)],
            display(course.course_file),
        )

    def upgrade_command(self, chart: Path, course: Course, release: Release) -> list[str]:
        return [
            str(self.binary),
            "upgrade",
            "--install",
            release.name,
            str(chart),
            "--namespace",
            release.namespace,
            "--create-namespace",
            *value_args(course),
        ]


def job_command(helm: Path, course: Course, release: Release, template: str, settings: dict[str, str]) -> str:
    """The shell command that renders one of the chart's Job templates and starts it with kubectl.

    The Jobs are never part of a normal deploy: they render only with these settings.
    """
    sets: list[str] = []
    for key, value in settings.items():
        sets += ["--set-string" if value not in ("true", "false") else "--set", f"{key}={value}"]
    render = [
        str(helm),
        "template",
        release.name,
        str(CHART),
        "--namespace",
        release.namespace,
        *value_args(course),
        *sets,
        "--show-only",
        f"templates/{template}",
    ]
    return shlex.join(render) + " | " + shlex.join(["kubectl", "--namespace", release.namespace, "create", "-f", "-"])
