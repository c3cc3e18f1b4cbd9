"""coursehub's one entry point: the `coursehub` command (`python -m coursehub`; the Makefile's targets call it).

Each sub-command is one function below, and imports what it needs when it runs:
`coursehub courses` does not pay for JupyterHub's classes or Helm.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from coursehub import tools
from coursehub.courses import course_names, load_course
from coursehub.errors import CoursehubError, Problem
from coursehub.paths import CHART, ROOT, display

if TYPE_CHECKING:
    from coursehub.chart.helm import Helm

Command = Callable[[argparse.Namespace], int]


def _helm(args: argparse.Namespace) -> Helm:
    from coursehub.chart.helm import Helm

    return Helm(tools.helm_path(args.helm))


def cmd_tools(args: argparse.Namespace) -> int:
    from coursehub.ops import sops

    majors = sorted(tools.HELM_PINS) if args.all else [args.helm]
    with ThreadPoolExecutor() as pool:  # each pin's npm download at once: a clean clone waits for the slower only
        installed = list(pool.map(tools.install_helm, majors))
    for major, path in zip(majors, installed, strict=True):
        print(f"helm {tools.HELM_PINS[major].version}: {display(path)}")
    print(f"sops {sops.VERSION}: {display(sops.binary())} (sha256 checked)")
    return 0


def cmd_courses(args: argparse.Namespace) -> int:
    print("\n".join(course_names()))
    return 0


def cmd_deps(args: argparse.Namespace) -> int:
    from coursehub.chart import upstream

    helm_binary = tools.helm_path(args.helm)
    chart, fetched = upstream.ensure_chart(helm_binary) if args.if_missing else (upstream.fetch(helm_binary), True)
    print(
        f"upstream {upstream.NAME} {upstream.VERSION} chart: {display(chart)}" + (" (fetched now)" if fetched else "")
    )
    return 0


def cmd_check_image(args: argparse.Namespace) -> int:
    return _check_images([args.course] if args.course else course_names(), args.tag)


def cmd_check_hub_image(args: argparse.Namespace) -> int:
    from coursehub.images import hub

    image = hub.deployed()
    problems = hub.check(image)
    if problems:
        raise CoursehubError(problems)
    pins = image.image_pins()
    print(f"{image.ref}: ok (jupyterhub {pins['jupyterhub']}, {len(image.pins())} packages pinned for the local hub)")
    return 0


def cmd_groups(args: argparse.Namespace) -> int:
    from coursehub.groups import roster

    course = load_course(args.course)
    groups = roster.read(args.roster, *roster.settings(course))
    written = roster.write_membership(course, groups)
    members = sum(len(g.members) for g in groups)
    groups_file, private = written
    print(
        f"{course.name}: {len(groups)} groups and their accounts written to {display(groups_file)} (commit it), "
        f"{members} memberships to {display(private)}; {groups.in_no_group} students in no group (skipped)"
    )
    return 0


def cmd_edit_secrets(args: argparse.Namespace) -> int:
    from coursehub.ops.editsecrets import edit_secrets

    print("\n".join(edit_secrets(args.course)))
    return 0


def cmd_private_diff(args: argparse.Namespace) -> int:
    from coursehub.ops.privatediff import private_diff

    print("\n".join(private_diff(args.course, args.base)))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from coursehub.ops.health import health

    problems = health(load_course(args.course), args.hub_url, args.timeout)
    if problems:
        raise CoursehubError(problems)
    print(f"{args.course}: healthy")
    return 0


def cmd_sync_groups(args: argparse.Namespace) -> int:
    from coursehub.groups.sync import sync

    return sync(
        load_course(args.course),
        args.hub_url,
        args.dry_run,
        sys.stdout,
        recheck=args.recheck,
        accept_removals=args.accept_removals,
    )


def cmd_lms_plan(args: argparse.Namespace) -> int:
    from coursehub.groups.sync import sync

    return sync(load_course(args.course), args.hub_url, True, sys.stdout, lms_only=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from coursehub.hub.demo import demo

    demo(load_course(args.course), args.tag)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from coursehub.chart.diff import diff

    print("\n".join(diff(load_course(args.a), load_course(args.b))))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from coursehub.chart.checks import check_values
    from coursehub.chart.helm import Release
    from coursehub.chart.render import render
    from coursehub.chart.upstream import load_data

    course = load_course(args.course)
    problems = check_values(course, load_data())  # bad values stop before Helm runs
    if problems:
        raise CoursehubError(problems)
    out = args.out or ROOT / "rendered" / course.name
    release = Release.for_course(course, args.release, args.namespace)
    written = render(course, _helm(args), out, args.kube_version, release)
    print(f"{course.name}: {len(written)} objects written to {display(out)}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    return _validate(_helm(args), [args.course] if args.course else course_names())


def cmd_deploy(args: argparse.Namespace) -> int:
    from coursehub.chart.helm import Release
    from coursehub.ops.deploy import deploy

    course = load_course(args.course)
    release = Release.for_course(course, args.release, args.namespace)
    command = deploy(course, _helm(args), release, args.dry_run, hub_url=args.hub_url)
    print(("would run:\n" if args.dry_run else "ran:\n") + command)
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    return _archive_commands(args, _helm(args))


# make bench's runs, in the order it prints them (`coursehub bench --only NAME` runs one)
BENCHES = (
    "render",
    "env-build",
    "hub-env-build",
    "iri-import",
    "startup",
    "visitor-cache",
    "token-check",
    "scale",
    "wrappers",
    "canvas",
)


def cmd_bench(args: argparse.Namespace) -> int:
    from coursehub import bench

    course = load_course(args.course)
    runs: dict[str, Callable[[], str]] = {
        "render": lambda: bench.validate_vs_render(course, _helm(args), args.repetitions),
        "env-build": lambda: bench.env_build(course),
        "hub-env-build": bench.hub_env_build,
        "iri-import": lambda: bench.iri_checker_import(course, args.hub_repetitions),
        "startup": lambda: bench.hub_startup(course, args.hub_repetitions),
        "visitor-cache": lambda: bench.visitor_cache(course),
        "token-check": lambda: bench.token_check(args.repetitions),
        "scale": lambda: bench.scale(course, args.groups, args.students, args.hub_repetitions),
        "wrappers": lambda: bench.wrappers(course, args.groups, args.students, args.hub_repetitions),
        "canvas": lambda: bench.canvas_sync(course, args.groups, max(1, args.students // args.groups)),
    }
    assert tuple(runs) == BENCHES
    for name in args.only or BENCHES:
        print(runs[name](), flush=True)
    return 0


def cmd_bench_surge(args: argparse.Namespace) -> int:
    from coursehub.surge import RUNS, report

    course = load_course(args.course)
    size = report.Size(args.groups, args.per_group, args.ramp, args.rhythm, args.max_requests)
    lab = report.Size(args.lab_groups, args.per_group, args.ramp, args.rhythm, args.max_requests)
    cache = args.cache if args.cache is not None else True
    for line in report.bench_surge(course, size, lab if args.lab_groups else None, tuple(args.only or RUNS), cache):
        print(line, flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    from coursehub.chart.helm import DEFAULT_KUBE_VERSION

    parser = argparse.ArgumentParser(prog="coursehub", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--helm",
        type=int,
        choices=sorted(tools.HELM_PINS),
        default=int(os.environ.get("HELM_MAJOR") or tools.DEFAULT_HELM),
        help="Helm major version to use (default: $HELM_MAJOR or %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    install = command("tools", cmd_tools, "install the pinned Helm versions into .tools/")
    install.add_argument("--all", action="store_true", help="every pinned major version, not only --helm")

    command("courses", cmd_courses, "list the courses in values/")

    render = command("render", cmd_render, "write a course's rendered manifests")
    render.add_argument("--course", required=True)
    render.add_argument("--out", type=Path, help="folder for the manifests (default: rendered/<course>)")
    render.add_argument("--kube-version", default=DEFAULT_KUBE_VERSION)

    validate = command("validate", cmd_validate, "check one course, or every course")
    validate.add_argument("--course", help="default: every course in values/")

    deploy = command("deploy", cmd_deploy, "validate, then helm upgrade --install a course")
    deploy.add_argument("--course", required=True)
    deploy.add_argument("--dry-run", action="store_true", help="print the plan and the helm command, run nothing")
    deploy.add_argument(
        "--hub-url", help="the hub's URL: the plan counts running servers (token: $JUPYTERHUB_API_TOKEN)"
    )

    for sub in (render, deploy):
        sub.add_argument("--release", help="Helm release name (default: the course name)")
        sub.add_argument("--namespace", help="Kubernetes namespace (default: the course name)")

    check_image = command(
        "check-image", cmd_check_image, "check each course's singleuser command against its image variants"
    )
    check_image.add_argument("--course", help="default: every course in values/")
    check_image.add_argument("--tag", help="one variant only (default: every variant in image/<course>/)")

    command(
        "check-hub-image",
        cmd_check_hub_image,
        "check the hub image chart/values.yaml names: its content hash, its pins, the local hub's environment",
    )

    differ = command("diff", cmd_diff, "what differs between two courses' images and values")
    differ.add_argument("a")
    differ.add_argument("b")

    groups = command(
        "groups", cmd_groups, "a group roster (Canvas CSV or group,student) into the private membership file"
    )
    groups.add_argument("--course", required=True)
    groups.add_argument("--roster", required=True, type=Path)

    sync_groups = command(
        "sync-groups", cmd_sync_groups, "bring a running hub to the course's declaration (the hub's reconciler)"
    )
    sync_groups.add_argument("--course", required=True)
    sync_groups.add_argument(
        "--hub-url", required=True, help="the hub's public URL; the token comes from $JUPYTERHUB_API_TOKEN"
    )
    sync_groups.add_argument("--dry-run", action="store_true", help="print the exact changes, change nothing")
    sync_groups.add_argument(
        "--recheck",
        action="store_true",
        help="access shares: read every account's shares instead of trusting the ledger (one request per group)",
    )
    sync_groups.add_argument(
        "--accept-removals",
        type=int,
        metavar="N",
        help="groups from Canvas: apply a sync held for taking N members out of their groups (more than max(5, "
        "10%%) of them in a day), N as `lms-plan` printed it; any other N changes nothing",
    )

    lms_plan = command(
        "lms-plan", cmd_lms_plan, "what the next Canvas sync would add, remove and leave unmatched; changes nothing"
    )
    lms_plan.add_argument("--course", required=True)
    lms_plan.add_argument("--hub-url", required=True, help="the hub's public URL; its token in $JUPYTERHUB_API_TOKEN")

    edit = command(
        "edit-secrets", cmd_edit_secrets, "open the course's sops-encrypted secrets in $EDITOR, re-encrypt, check"
    )
    edit.add_argument("--course", required=True)

    private = command(
        "private-diff",
        cmd_private_diff,
        "the key paths that changed in a course's private layer since a git commit (values redacted)",
    )
    private.add_argument("--course", required=True)
    private.add_argument("--base", required=True, help="the commit to compare with, e.g. the last deployed one")

    health = command("health", cmd_health, "check a deployed hub: a server starts, runs code, has RTC; then clean up")
    health.add_argument("--course", required=True)
    health.add_argument(
        "--hub-url", required=True, help="the hub's public URL; the token comes from $JUPYTERHUB_API_TOKEN"
    )
    health.add_argument("--timeout", type=float, default=300, help="seconds the server may take to start")

    archive = command("archive", cmd_archive, "print the commands that archive homes (shared accounts by default)")
    archive.add_argument("--course", required=True)
    archive.add_argument("--all", action="store_true", help="every home folder of the course")
    archive.add_argument("--accounts", help="only these home folders, comma-separated")
    archive.add_argument(
        "--running", help="accounts whose servers are running, comma-separated (archive.runningServers)"
    )
    restore = command(
        "restore", cmd_archive, "print the commands that restore an archive into a new folder in its home"
    )
    restore.add_argument("--course", required=True)
    restore.add_argument("--account", required=True)
    restore.add_argument("--archive", required=True, help="the archive's file name in the archive volume")
    restore.add_argument("--path", help="only this folder or file of the archive")

    demo = command("demo", cmd_demo, "run the course's hub for real on 127.0.0.1 until Ctrl-C")
    demo.add_argument("--course", required=True)
    demo.add_argument(
        "--tag", help="another variant of the course's image (image/<course>/<tag>/) than its values deploy"
    )

    deps = command("deps", cmd_deps, "helm dependency build: fetch the upstream chart into chart/charts/ (network)")
    deps.add_argument(
        "--if-missing", action="store_true", help="only when there is no chart yet (chart/charts/ or $UPSTREAM_CHART)"
    )

    bench = command("bench", cmd_bench, "benchmarks, printed as ratios")
    bench.add_argument("--course", default="stat159")
    bench.add_argument("--repetitions", type=int, default=30)
    bench.add_argument("--hub-repetitions", type=int, default=5)
    bench.add_argument("--groups", type=int, default=1000)
    bench.add_argument("--students", type=int, default=4000)
    bench.add_argument(
        "--only",
        action="append",
        choices=BENCHES,
        help="run this benchmark alone (repeat for more; default: all, in this order: %(choices)s)",
    )

    from coursehub.surge import RUNS

    surge = command(
        "bench-surge",
        cmd_bench_surge,
        "the first minutes of a lab section (locust, 127.0.0.1 only) against the course's hub and a plain JupyterHub, "
        "then each fault in a surge of its own",
    )
    surge.add_argument("--course", default="stat159")
    surge.add_argument("--groups", type=int, default=75, help="groups in the surge (default: %(default)s)")
    surge.add_argument("--per-group", type=int, default=4, help="students per group (default: %(default)s)")
    surge.add_argument("--ramp", type=float, default=120, help="seconds over which every student arrives")
    surge.add_argument("--rhythm", type=float, default=180, help="seconds each student works once in")
    surge.add_argument("--lab-groups", type=int, default=8, help="groups of the run with JupyterLab servers (0: none)")
    surge.add_argument("--max-requests", type=int, default=200_000, help="locust stops at this many requests")
    surge.add_argument(
        "--cache", type=int, help="the surge line's servers: this visitor cache (seconds) instead of the course's"
    )
    surge.add_argument(
        "--only",
        action="append",
        choices=RUNS,
        help="run this one alone (repeat for more; default: all, in this order: %(choices)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CoursehubError as e:
        for problem in e.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1


def _validate(helm: Helm, names: list[str]) -> int:
    from coursehub.chart.upstream import require_chart
    from coursehub.chart.validate import validate

    chart = require_chart()
    failed = 0
    for name in names:
        report = validate(load_course(name), helm, chart)
        for note in report.notes:
            print(f"{name}: note: {note}")
        for warning in report.warnings:
            print(f"{name}: warning: {warning}")
        for problem in report.problems:
            print(f"{name}: error: {problem}", file=sys.stderr)
        print(f"{name}: {'FAILED' if report.problems else 'ok'}")
        failed += bool(report.problems)
    return 1 if failed else 0


def _archive_commands(args: argparse.Namespace, helm: Helm) -> int:
    from coursehub.chart.helm import Release, job_command

    course = load_course(args.course)
    values = course.values()
    if not values.get("archive", {}).get("volumeClaim"):
        raise CoursehubError(
            Problem(
                display(course.course_file),
                "archive.volumeClaim",
                "is not set, so the chart renders no archive objects",
                "name the claim archives are written to",
            )
        )
    release = Release.for_course(course)
    if args.command == "archive":
        if args.all and args.accounts:
            raise CoursehubError(
                Problem(
                    "make archive", "ALL, ACCOUNTS", "are both given", "give either ALL=1 or ACCOUNTS=a,b, not both"
                )
            )
        settings = {"archive.run": "true"}
        if args.all:
            settings["archive.all"] = "true"
        for key, names in (("archive.accounts", args.accounts), ("archive.running", args.running)):
            if names:  # a Helm list: --set-string key={a,b}
                settings[key] = "{" + ",".join(n.strip() for n in names.split(",") if n.strip()) + "}"
        command = job_command(helm.binary, course, release, "archive-job.yaml", settings)
    else:
        # an archive is named by the hub user, or (ALL=1) by the home folder KubeSpawner gave that user
        folder = _archive_module().home_folder(args.account)
        if not args.archive.startswith((args.account + "-", folder + "-")):
            raise CoursehubError(
                Problem(
                    "make restore",
                    "ARCHIVE",
                    f"{args.archive} is not {args.account}'s archive",
                    f"name one of {args.account}-<time>.tar.gz or {folder}-<time>.tar.gz in the archive volume",
                )
            )
        settings = {"archive.restore.account": args.account, "archive.restore.archive": args.archive}
        if args.path:
            settings["archive.restore.path"] = args.path.replace(",", "\\,")  # helm --set splits at commas
        command = job_command(helm.binary, course, release, "restore-job.yaml", settings)
    print(f"# needs the upstream chart in chart/charts/ (make deps); then:\n{command}")
    return 0


def _archive_module() -> ModuleType:
    """The archive Jobs' own module (standard library only), for its one rule of home folder names."""
    import importlib.util

    if "coursehub_archive" in sys.modules:
        return sys.modules["coursehub_archive"]
    spec = importlib.util.spec_from_file_location(
        "coursehub_archive", CHART / "files" / "archive" / "coursehub_archive.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["coursehub_archive"] = module
    spec.loader.exec_module(module)
    return module


def _check_images(names: list[str], tag: str | None) -> int:
    from coursehub.images.build import variants
    from coursehub.images.check import check_command

    failed = 0
    for name in names:
        cmd = load_course(name).values()["jupyterhub"]["singleuser"]["cmd"]
        for variant in variants(name):
            if tag and variant.tag != tag:
                continue
            verdicts = check_command(variant, cmd)
            for verdict in verdicts:
                print(f"{name}: {verdict}", file=sys.stderr)
            print(f"{name}: {variant.ref}: {'FAILED' if verdicts else 'ok'}", flush=True)
            failed += bool(verdicts)
    return 1 if failed else 0
