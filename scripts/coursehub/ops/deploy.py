"""`make deploy`: validate a course fully, then `helm upgrade --install` it with the same value layers."""

from __future__ import annotations

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
    report = validate(course, helm, chart)
    if report.problems:
        raise CoursehubError(report.problems)
    refuse_example(course)  # after validation, so that every other problem is named first
    for warning in report.warnings:
        say(f"warning: {warning}")
    with staged_chart(chart) as staged:
        if wanted_context(course) or not dry_run:
            plan = preflight(course, release, rendered.objects(helm.template(staged, course, release)), hub_url)
            lines, context = plan.lines(), ["--kube-context", plan.context]
        else:
            lines, context = [f"pre-flight skipped: {dotted(CONTEXT)} is not set (a real deploy refuses that)"], []
        for line in lines:
            say(f"plan: {line}")
        command = [*helm.upgrade_command(staged, course, release), *safety_flags(helm, course), *context]
        if not dry_run:  # an encrypted layer's plaintext goes to Helm through a pipe (`--values -`)
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
        return shown_command(command, staged, chart, course)


def shown_command(command: list[str], staged: Path, dependency: Path, course: Course) -> str:
    """The command as someone can run it again later, from any folder: the chart is chart/ (the staged copy is
    deleted when deploy returns), every path is absolute, and a line before it says what chart/charts/ must hold.
    An encrypted secrets layer is decrypted again by the command itself, which stops before Helm when it cannot."""
    args = [str(CHART.absolute()) if arg == str(staged) else arg for arg in command]  # helm itself: its full path
    bundled = CHART / "charts"
    if dependency.resolve().parent == bundled.resolve():
        needs = f"# {bundled.absolute()}/ holds the {NAME} dependency ({dependency.name})"
    else:
        needs = (
            f"# needs the {NAME} dependency in {bundled.absolute()}/: `make deps`, or copy {dependency} "
            f"there{'' if dependency.is_file() else ' as ' + NAME}"
        )
    return needs + "; bash, from any folder\n" + shell_command(args, course)
