"""`make validate`: every check on one course or all of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from coursehub.chart import pods, rendered, resolved
from coursehub.chart.checks import CMD, DECLARATION, check_values, effective, isolation_warnings
from coursehub.chart.helm import DEFAULT_KUBE_VERSION, Helm, Release, staged_chart
from coursehub.chart.kube import SUPPORTED
from coursehub.chart.upstream import load_data, require_chart
from coursehub.courses import Course, dotted, get
from coursehub.errors import Problem
from coursehub.groups import hubpython
from coursehub.images.build import deployed
from coursehub.images.check import check_command, one_check_at_a_time, passed_before
from coursehub.ops import sops


@dataclass
class Report:
    course: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # reported, but the course still passes
    notes: list[str] = field(default_factory=list)


def validate(
    course: Course, helm: Helm, chart: Path | None = None, kube_versions: tuple[str, ...] = SUPPORTED
) -> Report:
    """Values checks, then helm lint, render and the checks on the rendered objects, with the real upstream chart."""
    chart = chart or require_chart()
    report = Report(course.name)
    if course.uses_example_secrets:
        report.notes.append(f"using values/{course.name}.secret.example.yaml (no values/{course.name}.secret.yaml)")
    upstream = load_data(chart)
    values = effective(course, upstream)
    report.problems += check_values(course, upstream)
    if course.encrypted_file is not None:  # its recipients are .sops.yaml's, and no outsider's (never decrypts)
        recipients = sops.recipients_problem(course.encrypted_file)
        report.problems += [recipients] if recipients else []
    report.warnings += isolation_warnings(course, values)
    if report.problems:
        return report
    report.notes.append(_group_modes(course))
    report.problems += _image(course, report)
    release = Release.for_course(course)
    with staged_chart(chart) as staged:
        helm.lint(staged, course, DEFAULT_KUBE_VERSION)
        objs = rendered.objects(helm.template(staged, course, release, DEFAULT_KUBE_VERSION))
    report.problems += rendered.kubernetes(objs, kube_versions)
    report.problems += rendered.hub_receives_course(course, values, objs)
    report.problems += rendered.membership_only_in_secrets(course, values, objs)
    report.problems += rendered.hub_image(objs, values)
    if not report.problems:  # the hub's configuration is run (and pods built) only on a sound render
        config = pods.hub_config(objs, release.namespace)
        report.problems += resolved.login_refusal(course, config)
        users = pods.course_users(objs)
        built = {who: pods.pod_manifest(config, user) for who, user in users.items()}
        report.problems += pods.problems(built, users, kube_versions)
    return report


def _image(course: Course, report: Report) -> list[Problem]:
    """The singleuser command on the deployed image, when its environment is already built here."""
    values = course.values()
    variant = deployed(course.name, get(values, ("jupyterhub", "singleuser", "image", "tag")))
    if not variant.built:
        report.notes.append(
            f"skipped the image check: {variant.ref}'s environment is not built here "
            f"(`make check-image COURSE={course.name}` builds and checks it)"
        )
        return []
    cmd = get(values, CMD)
    with one_check_at_a_time(variant, cmd):
        if passed_before(variant, cmd):
            report.notes.append(
                f"image check: the command passed on {variant.ref} before, with these pins and this code "
                f"(`make check-image COURSE={course.name}` runs it again)"
            )
            return []
        return [
            Problem(course.origin(CMD), dotted(CMD), str(v), "correct the flag, or the image's pins")
            for v in check_command(variant, cmd)
        ]


def _group_modes(course: Course) -> str:
    """Which groups the reconciler keeps to the values and which it leaves to the admin page (names only)."""
    accounts = hubpython.load().parse(get(course.values(), DECLARATION) or {})
    kept = [a.group for a in accounts if a.managed]
    left = [a.group for a in accounts if not a.managed]
    return (
        f"groups whose members the values set: {len(kept)}; "
        f"groups whose members the admin page sets: {', '.join(left) if left else 'none'}"
    )
