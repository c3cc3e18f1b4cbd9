"""`make deploy`: validate a course fully, then `helm upgrade --install` it with the same value layers.

The dry run prints the command, to run later: it re-reads the values files then, so it first checks their sha256
against those it had when it was validated (and stops at once, saying so, when any differs), and it names the kube
context it was checked against (a course without `deploy.kubeContext` gets a command that only refuses).
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from coursehub.chart import rendered
from coursehub.chart.helm import Helm, Release, helm_stdin, shell_command, staged_chart
from coursehub.chart.upstream import NAME, require_chart
from coursehub.chart.validate import validate
from coursehub.courses import EXAMPLE_SUFFIX, SECRET_SUFFIX, Course, dotted
from coursehub.errors import CoursehubError, Problem
from coursehub.ops.preflight import CONTEXT, preflight, safety_flags, wanted_context
from coursehub.paths import CHART, display


def refuse_example(course: Course) -> None:
    """The example secrets file holds example credentials and example students: never deploy it."""
    if not course.uses_example_secrets:
        return
    example = course.course_file.with_name(course.name + EXAMPLE_SUFFIX)
    secret = course.course_file.with_name(course.name + SECRET_SUFFIX)
    raise CoursehubError(
        Problem(
            display(example),
            "",
            f"is the example secrets file (example OAuth client and students), and there is no {display(secret)}",
            f"create the real one: `make groups COURSE={course.name} ROSTER=<roster.csv>` for membership, "
            f"then `make edit-secrets COURSE={course.name}` for the OAuth client (or copy the example and edit it)",
        )
    )


def deploy(
    course: Course,
    helm: Helm,
    release: Release,
    dry_run: bool,
    chart: Path | None = None,
    hub_url: str | None = None,
    say: Callable[[str], None] = print,
) -> str:
    """Says the plan (pre-flight), then runs the helm command unless dry_run; returns it as a shell command.

    Refuses a course that fails validation, uses its example secrets, or (unless dry_run
    and no kube context is named) fails the pre-flight. Says every validation warning first.
    """
    chart = chart or require_chart()
    sums = checksums(course)  # before validation: what is validated is what these name
    report = validate(course, helm, chart)
    if report.problems:
        raise CoursehubError(report.problems)
    refuse_example(course)  # after validation, so that every other problem is named first
    for warning in report.warnings:
        say(f"warning: {warning}")
    with staged_chart(chart) as staged:
        if wanted_context(course) or not dry_run:
            plan = preflight(course, release, rendered.objects(helm.template(staged, course, release)), hub_url)
            lines, context = plan.lines(), plan.context
        else:
            lines, context = [f"pre-flight skipped: {dotted(CONTEXT)} is not set (a real deploy refuses that)"], None
        for line in lines:
            say(f"plan: {line}")
        command = [*helm.upgrade_command(staged, course, release), *safety_flags(helm, course)]
        command += ["--kube-context", context] if context else []
        if not dry_run:  # an encrypted layer's plaintext goes to Helm through a pipe (`--values -`)
            if checksums(course) != sums:
                raise CoursehubError(
                    Problem(
                        display(course.course_file),
                        "",
                        "its values files changed while it was validated, so Helm was not started",
                        "run make deploy again",
                    )
                )
            result = subprocess.run(command, input=helm_stdin(command, course.helm_input()), text=True)
            if result.returncode != 0:
                raise CoursehubError(
                    Problem(
                        display(course.course_file),
                        "",
                        f"helm upgrade failed (exit code {result.returncode}); Helm rolled the release back",
                        "read Helm's output above",
                    )
                )
        return shown_command(command, staged, chart, course, guards(course, sums, context))


def checksums(course: Course) -> list[tuple[Path, str]]:
    """Each values layer file (absolute) and the sha256 of its bytes: an encrypted layer's ciphertext too."""
    return [(path.absolute(), hashlib.sha256(path.read_bytes()).hexdigest()) for path in course.files]


CHANGED = "error: values changed since the dry run: run make deploy DRY_RUN=1 again"


def guards(course: Course, sums: list[tuple[Path, str]], context: str | None) -> list[str]:
    """The bash steps a printed command runs before anything else, each of which stops it with one line: without a
    kube context it refuses at once; then every values file must still have the sha256 it was validated with."""
    steps = []
    if not context:
        problem = Problem(
            course.origin(CONTEXT),
            dotted(CONTEXT),
            "is not set, so this command would deploy to whatever cluster is current when it runs",
            "set it to the course's kube context, then run make deploy DRY_RUN=1 again",
        )
        steps.append(f"echo {shlex.quote(f'error: {problem}')} >&2; exit 1")
    listed = " ".join(shlex.quote(_checksum_line(path, digest)) for path, digest in sums)
    check = f"printf '%s\\n' {listed} | sha256sum --check --status --strict - 2>/dev/null"
    steps.append(f"{check} || {{ echo {shlex.quote(CHANGED)} >&2; exit 1; }}")
    return steps


def _checksum_line(path: Path, digest: str) -> str:
    """A line of `sha256sum --check`'s input; a name holding a backslash or a newline is escaped as GNU's reads it."""
    name = str(path)
    if "\\" in name or "\n" in name:
        return "\\" + digest + "  " + name.replace("\\", "\\\\").replace("\n", "\\n")
    return f"{digest}  {name}"


def shown_command(command: list[str], staged: Path, dependency: Path, course: Course, first: list[str]) -> str:
    """The command as someone can run it again later, from any folder: the chart is chart/ (the staged copy is
    deleted when deploy returns), every path is absolute, and a line before it says what chart/charts/ must hold.
    It runs the steps `first` (guards) before anything else. An encrypted secrets layer is decrypted again by the
    command itself, which stops before Helm when it cannot."""
    args = [str(CHART.absolute()) if arg == str(staged) else arg for arg in command]  # helm itself: its full path
    bundled = CHART / "charts"
    if dependency.resolve().parent == bundled.resolve():
        needs = f"# {bundled.absolute()}/ holds the {NAME} dependency ({dependency.name})"
    else:
        needs = (
            f"# needs the {NAME} dependency in {bundled.absolute()}/: `make deps`, or copy {dependency} "
            f"there{'' if dependency.is_file() else ' as ' + NAME}"
        )
    return needs + "; bash, from any folder\n" + shell_command(args, course, first=first)
