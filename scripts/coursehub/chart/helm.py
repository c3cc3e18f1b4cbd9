"""Running Helm on the coursehub chart: one place that builds every Helm command line.

Render (`helm template`), lint and deploy (`helm upgrade --install`) share
`value_args`, so what ops deploy is exactly what was rendered and validated.
A course's encrypted layer reaches Helm through its standard input
(`--values -`), in its place among the layers: never as a file.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from coursehub.chart.upstream import NAME, require_chart
from coursehub.courses import STDIN, Course
from coursehub.errors import CoursehubError, Problem
from coursehub.ops import sops
from coursehub.paths import CHART, display

DEFAULT_KUBE_VERSION = "1.33"


def value_args(course: Course) -> list[str]:
    """The course's value layers, in order, as Helm arguments (`--values -` for an encrypted layer: Helm reads it
    from its standard input at that place in the order; give it course.helm_input())."""
    args: list[str] = []
    for value in course.helm_values:
        args += ["--values", value]
    return args


def reads_stdin(args: list[str]) -> bool:
    return any(a in ("--values", "-f") and b == STDIN for a, b in pairwise(args))


def helm_stdin(args: list[str], text: str | None) -> str:
    """What Helm's standard input gets: `text` when an argument says `--values -`, else nothing. Helm would read
    a missing text as an empty layer and go on without the course's secrets: refuse that instead."""
    if not reads_stdin(args):
        return ""
    if not text:
        raise ValueError("helm reads a values layer from standard input (--values -), but it was given none")
    return text


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

    def run(self, args: list[str], what: str, stdin: str | None = None) -> str:
        """Helm's output; `stdin` is what a `--values -` reads (course.helm_input())."""
        result = subprocess.run(
            [str(self.binary), *args], input=helm_stdin(args, stdin), capture_output=True, text=True
        )
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
            [*self.template_args(chart, course, release, kube_version), *(extra or [])],
            display(course.course_file),
            course.helm_input(),
        )

    def lint(self, chart: Path, course: Course, kube_version: str = DEFAULT_KUBE_VERSION) -> str:
        return self.run(
            ["lint", "--strict", str(chart), "--kube-version", kube_version, *value_args(course)],
            display(course.course_file),
            course.helm_input(),
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
    return shell_command(render, course, shlex.join(["kubectl", "--namespace", release.namespace, "create", "-f", "-"]))


def shell_command(helm_args: list[str], course: Course, then: str = "", first: Sequence[str] = ()) -> str:
    """A Helm command as one line for bash that works from any folder and later (its values files absolute), piped
    into `then` when given, after the bash steps `first` (each stops the command with `exit 1` when it must). An
    encrypted layer is decrypted again first, into a shell variable, and Helm reads it from a pipe (`--values -`):
    when sops cannot decrypt, one line says so and Helm is never started. (A bash here-string would not do: bash
    writes one longer than a pipe's buffer, 64 KiB, to a temporary file.) With steps or a decryption, the command is
    a subshell that first turns off bash's xtrace and verbose modes: a shell running it under `bash -x` or `set -x`
    would otherwise print the decrypted values into its trace."""
    args = [
        str(Path(arg).absolute()) if prev in ("--values", "-f") and arg != STDIN else arg
        for prev, arg in pairwise(["", *helm_args])
    ]
    line = shlex.join(args) + (f" | {then}" if then else "")
    steps = list(first)
    encrypted = course.encrypted_file
    if encrypted is not None and reads_stdin(args):
        steps.append(sops.shell_decrypt(encrypted, "secrets"))
        line = f"printf '%s\\n' \"$secrets\" | {line}"
    if not steps:
        return line
    return f"( set +xv; set -euo pipefail; {'; '.join(steps)}; {line} )"
