"""`make demo`: a course's hub, for real, on this machine, until Ctrl-C."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path

from coursehub.checks import check_values
from coursehub.courses import Course, get
from coursehub.errors import CoursehubError
from coursehub.images import deployed, ensure_env
from coursehub.localhub import APPLIED, LocalHub, classify, describe_mapping, make_plan
from coursehub.upstream import find_chart, load_data


def demo(course: Course) -> None:
    upstream = load_data(find_chart())
    problems = check_values(course, upstream)
    if problems:
        raise CoursehubError(problems)
    report = classify(course)
    image = get(course.values(), ("jupyterhub", "singleuser", "image"))
    variant = deployed(course.name, image["tag"])
    env = ensure_env(variant)
    workdir = Path(tempfile.mkdtemp(prefix=f"coursehub-demo-{course.name}-"))
    plan = make_plan(course, upstream, workdir, env, report)
    print(
        f"coursehub demo of {course.name}: a real JupyterHub {_version()} with configurable-http-proxy; "
        f"servers from {variant.ref}'s environment"
    )
    print("applied from the course values: " + ", ".join(f"{k} ({APPLIED[k]})" for k in report.applied))
    print("not applied locally (Kubernetes only): " + ", ".join(report.kubernetes_only))
    if report.replaced:
        print("replaced by the demo's own log-in and local spawner: " + ", ".join(report.replaced))
    print("each server's pod paths are mapped: " + "; ".join(describe_mapping(plan)))
    try:
        with LocalHub(plan) as hub:
            _print_logins(course, plan.url, plan.password, plan.instructor)
            print(f"hub log: {hub.log}\nCtrl-C stops the hub, its servers and the proxy.")
            _wait_for_interrupt()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        print("stopped; nothing left running.")


def _print_logins(course: Course, url: str, password: str, instructor: str) -> None:
    declaration = get(course.values(), ("jupyterhub", "custom", "coursehub")) or {}
    print(f"\nopen {url}/hub/login  (password for every demo log-in: {password})")
    print(f"  {instructor}: instructor, full admin page")
    for entry in declaration.get("sharedAccounts") or []:
        members = (declaration.get("members") or {}).get(entry["group"]) or []
        if not course.uses_example_secrets:  # real membership is private: not even on the terminal
            members = [f"{len(members)} students of the private roster"] if members else []
        print(f"  {', '.join(members) or '(no members)'}: group {entry['group']}, may start and use {entry['account']}")
    print("  shared accounts (collab-...): blocked, nobody can log in as them\n")


def _wait_for_interrupt() -> None:
    stop = False

    def handler(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop:
        time.sleep(0.2)


def _version() -> str:
    import jupyterhub

    return jupyterhub.__version__
