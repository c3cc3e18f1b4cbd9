"""coursehub's one entry point: `python -m coursehub <command>` (the Makefile's targets call it)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from coursehub import bench, roster, tools, upstream
from coursehub.checks import check_values
from coursehub.courses import course_names, load_course
from coursehub.demo import demo
from coursehub.deploy import deploy
from coursehub.diff import diff
from coursehub.errors import CoursehubError, Problem
from coursehub.helm import DEFAULT_KUBE_VERSION, Helm, Release, job_command
from coursehub.imagecheck import check_command
from coursehub.images import variants
from coursehub.paths import ROOT, display
from coursehub.render import render
from coursehub.sync import sync
from coursehub.upstream import NAME, VERSION, ensure_chart, load_data
from coursehub.validate import validate


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coursehub", description=__doc__)
    p.add_argument(
        "--helm",
        type=int,
        choices=sorted(tools.HELM_PINS),
        default=int(os.environ.get("HELM_MAJOR") or tools.DEFAULT_HELM),
        help="Helm major version to use (default: $HELM_MAJOR or %(default)s)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("tools", help="install the pinned Helm versions into .tools/")
    t.add_argument("--all", action="store_true", help="every pinned major version, not only --helm")

    sub.add_parser("courses", help="list the courses in values/")

    r = sub.add_parser("render", help="write a course's rendered manifests")
    r.add_argument("--course", required=True)
    r.add_argument("--out", type=Path, help="folder for the manifests (default: rendered/<course>)")
    r.add_argument("--kube-version", default=DEFAULT_KUBE_VERSION)

    v = sub.add_parser("validate", help="check one course, or every course")
    v.add_argument("--course", help="default: every course in values/")

    d = sub.add_parser("deploy", help="validate, then helm upgrade --install a course")
    d.add_argument("--course", required=True)
    d.add_argument("--dry-run", action="store_true", help="print the helm command instead of running it")

    for cmd in (r, d):
        cmd.add_argument("--release", help="Helm release name (default: the course name)")
        cmd.add_argument("--namespace", help="Kubernetes namespace (default: the course name)")

    i = sub.add_parser("check-image", help="check each course's singleuser command against its image variants")
    i.add_argument("--course", help="default: every course in values/")
    i.add_argument("--tag", help="one variant only (default: every variant in image/<course>/)")

    f = sub.add_parser("diff", help="what differs between two courses' images and values")
    f.add_argument("a")
    f.add_argument("b")

    g = sub.add_parser("groups", help="a group roster (Canvas CSV or group,student) into the private membership file")
    g.add_argument("--course", required=True)
    g.add_argument("--roster", required=True, type=Path)

    y = sub.add_parser("sync-groups", help="bring a running hub's groups and memberships to the course's roster")
    y.add_argument("--course", required=True)
    y.add_argument("--hub-url", required=True, help="the hub's public URL; the token comes from $JUPYTERHUB_API_TOKEN")
    y.add_argument("--dry-run", action="store_true", help="print the exact changes, change nothing")

    a = sub.add_parser("archive", help="print the commands that archive homes (shared accounts by default)")
    a.add_argument("--course", required=True)
    a.add_argument("--all", action="store_true", help="every home folder of the course")
    a.add_argument("--accounts", help="only these home folders, comma-separated")
    a.add_argument("--running", help="accounts whose servers are running, comma-separated (archive.runningServers)")
    r2 = sub.add_parser("restore", help="print the commands that restore an archive into a new folder in its home")
    r2.add_argument("--course", required=True)
    r2.add_argument("--account", required=True)
    r2.add_argument("--archive", required=True, help="the archive's file name in the archive volume")
    r2.add_argument("--path", help="only this folder or file of the archive")

    m = sub.add_parser("demo", help="run the course's hub for real on 127.0.0.1 until Ctrl-C")
    m.add_argument("--course", required=True)
    m.add_argument("--tag", help="another variant of the course's image (image/<course>/<tag>/) than its values deploy")

    dp = sub.add_parser(
        "deps", help="helm dependency build: fetch the upstream chart into chart/charts/ (needs a network)"
    )
    dp.add_argument(
        "--if-missing", action="store_true", help="only when there is no chart yet (chart/charts/ or $UPSTREAM_CHART)"
    )

    b = sub.add_parser("bench", help="benchmarks, printed as ratios")
    b.add_argument("--course", default="stat159")
    b.add_argument("--repetitions", type=int, default=30)
    b.add_argument("--hub-repetitions", type=int, default=5)
    b.add_argument("--groups", type=int, default=1000)
    b.add_argument("--students", type=int, default=4000)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except CoursehubError as e:
        for problem in e.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "tools":
        for major in sorted(tools.HELM_PINS) if args.all else [args.helm]:
            print(f"helm {tools.HELM_PINS[major].version}: {display(tools.install_helm(major))}")
        return 0
    if args.command == "courses":
        print("\n".join(course_names()))
        return 0
    if args.command == "deps":
        helm_binary = tools.helm_path(args.helm)
        chart, fetched = ensure_chart(helm_binary) if args.if_missing else (upstream.fetch(helm_binary), True)
        print(f"upstream {NAME} {VERSION} chart: {display(chart)}" + (" (fetched now)" if fetched else ""))
        return 0
    if args.command == "check-image":
        return _check_images([args.course] if args.course else course_names(), args.tag)
    if args.command == "groups":
        course = load_course(args.course)
        groups = roster.read(args.roster, *roster.settings(course))
        written = roster.write_membership(course, groups)
        members = sum(len(g.members) for g in groups)
        print(f"{course.name}: {len(groups)} groups, {members} memberships written to {display(written)}")
        return 0
    if args.command == "sync-groups":
        return sync(load_course(args.course), args.hub_url, args.dry_run, sys.stdout)
    if args.command == "demo":
        demo(load_course(args.course), args.tag)
        return 0
    if args.command == "diff":
        print("\n".join(diff(load_course(args.a), load_course(args.b))))
        return 0

    helm = Helm(tools.helm_path(args.helm))
    if args.command == "render":
        course = load_course(args.course)
        problems = check_values(course, load_data())  # bad values stop before Helm runs
        if problems:
            raise CoursehubError(problems)
        out = args.out or ROOT / "rendered" / course.name
        written = render(course, helm, out, args.kube_version, Release.for_course(course, args.release, args.namespace))
        print(f"{course.name}: {len(written)} objects written to {display(out)}")
        return 0
    if args.command == "validate":
        return _validate(helm, [args.course] if args.course else course_names())
    if args.command == "deploy":
        course = load_course(args.course)
        command = deploy(course, helm, Release.for_course(course, args.release, args.namespace), args.dry_run)
        print(("would run: " if args.dry_run else "ran: ") + shlex.join(command))
        return 0
    if args.command in ("archive", "restore"):
        return _archive_commands(args, helm)
    if args.command == "bench":
        course = load_course(args.course)
        print(bench.validate_vs_render(course, helm, args.repetitions), flush=True)
        print(bench.env_build(course), flush=True)
        print(bench.hub_startup(course, args.hub_repetitions), flush=True)
        print(bench.visitor_cache(course), flush=True)
        print(bench.scale(course, args.groups, args.students, args.hub_repetitions), flush=True)
        return 0
    raise AssertionError(args.command)


def _validate(helm: Helm, names: list[str]) -> int:
    chart = upstream.require_chart()
    failed = 0
    for name in names:
        report = validate(load_course(name), helm, chart)
        for note in report.notes:
            print(f"{name}: note: {note}")
        for problem in report.problems:
            print(f"{name}: error: {problem}", file=sys.stderr)
        print(f"{name}: {'FAILED' if report.problems else 'ok'}")
        failed += bool(report.problems)
    return 1 if failed else 0


def _archive_commands(args: argparse.Namespace, helm: Helm) -> int:
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
        if not args.archive.startswith(args.account + "-"):
            raise CoursehubError(
                Problem(
                    "make restore",
                    "ARCHIVE",
                    f"{args.archive} is not {args.account}'s archive",
                    f"name one of {args.account}-<time>.tar.gz in the archive volume",
                )
            )
        settings = {"archive.restore.account": args.account, "archive.restore.archive": args.archive}
        if args.path:
            settings["archive.restore.path"] = args.path.replace(",", "\\,")  # helm --set splits at commas
        command = job_command(helm.binary, course, release, "restore-job.yaml", settings)
    print(f"# needs the upstream chart in chart/charts/ (make deps); then:\n{command}")
    return 0


def _check_images(names: list[str], tag: str | None) -> int:
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
