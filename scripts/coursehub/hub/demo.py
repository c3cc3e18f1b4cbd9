"""`make demo`: a course's hub, for real, on this machine, until Ctrl-C."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from coursehub.chart.checks import check_values
from coursehub.chart.upstream import find_chart, load_data
from coursehub.courses import Course, get
from coursehub.errors import CoursehubError, Problem
from coursehub.hub.local import APPLIED, LocalHub, classify, describe_mapping, make_plan
from coursehub.images.build import deployed, ensure_env, variants


def demo(course: Course, tag: str | None = None) -> None:
    """Run the course's hub until Ctrl-C; `tag` picks another variant of its image than the values deploy."""
    upstream = load_data(find_chart())
    problems = check_values(course, upstream)
    if problems:
        raise CoursehubError(problems)
    report = classify(course)
    image = get(course.values(), ("jupyterhub", "singleuser", "image"))
    known = [v.tag for v in variants(course.name)]
    if tag and tag not in known:
        raise CoursehubError(
            Problem(
                f"image/{course.name}", "TAG", f"there is no image variant {tag!r}", f"use one of: {', '.join(known)}"
            )
        )
    variant = deployed(course.name, tag or image["tag"])
    env = ensure_env(variant)
    workdir = Path(tempfile.mkdtemp(prefix=f"coursehub-demo-{course.name}-"))
    plan = make_plan(course, upstream, workdir, env, report)
    kept_log = kept_log_path(course.name)
    print(
        f"coursehub demo of {course.name}: a real JupyterHub {_version()} with configurable-http-proxy; "
        f"servers from {variant.ref}'s environment"
        + (f" (TAG={tag}; the values deploy {image['tag']})" if tag and tag != image["tag"] else "")
    )
    print("applied from the course values: " + ", ".join(f"{k} ({APPLIED[k]})" for k in report.applied))
    print("not applied locally (Kubernetes only): " + ", ".join(report.kubernetes_only))
    if report.replaced:
        print("replaced by the demo's own log-in and local spawner: " + ", ".join(report.replaced))
    print("each server's pod paths are mapped: " + "; ".join(describe_mapping(plan)))
    log = workdir / "hub.log"
    try:
        print("starting the hub and the proxy ...", flush=True)
        with LocalHub(plan) as hub:
            print(guide(course, plan.public_url, plan.password, plan.instructor))
            print(f"hub log: {hub.log} (kept as {kept_log} when the demo stops)")
            print("Ctrl-C stops the hub, its servers and the proxy.", flush=True)
            _wait_for_interrupt()
    except CoursehubError as error:  # a failed start names the log: name the copy that outlives the workdir
        raise CoursehubError(
            [replace(p, file=str(kept_log)) if p.file == str(log) else p for p in error.problems]
        ) from error
    finally:
        if log.is_file():  # the workdir goes, the log stays: it is what explains a failed start
            shutil.move(log, kept_log)
            kept_log.chmod(0o600)  # it names the users who logged in
        shutil.rmtree(workdir, ignore_errors=True)
        print("stopped; nothing left running." + (f" The hub log is kept in {kept_log}" if kept_log.exists() else ""))


def kept_log_path(course: str) -> Path:
    """Where the hub log goes when the demo stops: the temp folder, named by course and start time."""
    return Path(tempfile.gettempdir()) / f"coursehub-demo-{course}-{time.strftime('%Y%m%dT%H%M%S')}.log"


def guide(course: Course, url: str, password: str, instructor: str) -> str:
    """What a newcomer needs to try the course's shared accounts: who logs in, and where each account opens."""
    declaration = get(course.values(), ("jupyterhub", "custom", "coursehub")) or {}
    accounts = declaration.get("sharedAccounts") or []
    lines = [
        "",
        f"open {url}/hub/login  (password for every demo log-in: {password})",
        f"  {instructor}: instructor, full admin page at {url}/hub/admin",
    ]
    staff = declaration.get("staff") or []
    if staff:  # who the TAs are is private: named only from the example secrets
        who = ", ".join(staff) if course.uses_example_secrets else f"{len(staff)} TAs of the private staff list"
        lines.append(f"  {who}: TA, every shared account and the course's groups in the admin page at {url}/hub/admin")
    for entry in accounts:
        members = (declaration.get("members") or {}).get(entry["group"]) or []
        if not course.uses_example_secrets:  # real membership is private: not even on the terminal
            members = [f"{len(members)} students of the private roster"] if members else []
        lines.append(
            f"  {', '.join(members) or '(no members)'}: group {entry['group']}; "
            f"its shared account opens at {url}/hub/spawn/{entry['account']}"
        )
    if accounts:
        example = accounts[0]["account"]
        lines += [
            "",
            f"A group member opens the account at {url}/hub/spawn/<account> (e.g. {url}/hub/spawn/{example}):",
            "the hub starts its server (or joins the running one) and opens its JupyterLab, where the group",
            "edits the same notebooks together.",
        ]
        if str(declaration.get("access") or "roles") == "roles":
            lines.append(
                f"Or from the admin page ({url}/hub/admin): it lists only the student's own group's accounts; "
                f'click "Start Server" on the account\'s row, then "Access Server".'
            )
        lines += [
            "The first visit to an account's server shows JupyterHub's \"Authorize access\" page: the server is the",
            'account\'s, not yours, so the hub asks before telling it who you are. Click "Authorize"; that is expected.',
            "Nobody can log in as a shared account (collab-...) itself.",
        ]
    return "\n".join([*lines, ""])


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
