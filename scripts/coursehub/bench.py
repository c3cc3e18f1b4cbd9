"""`make bench`: what a check costs against the work it checks, as ratios measured in one run."""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursehub.chart import kube
from coursehub.chart.helm import DEFAULT_KUBE_VERSION, Helm, Release, staged_chart
from coursehub.chart.rendered import objects
from coursehub.chart.upstream import require_chart
from coursehub.courses import Course


def _median_seconds(action: Callable[[], object], repetitions: int) -> float:
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def validate_vs_render(course: Course, helm: Helm, repetitions: int) -> str:
    """Strict Kubernetes validation of one rendered course at one version, against the `helm template` that rendered it."""
    chart = require_chart()
    release = Release.for_course(course)
    with staged_chart(chart) as staged:
        render = lambda: helm.template(staged, course, release, DEFAULT_KUBE_VERSION)  # noqa: E731
        objs = objects(render())
        validate = lambda: [kube.problems(o, DEFAULT_KUBE_VERSION) for o in objs]  # noqa: E731
        validate()  # schemas and validators are built once per process: build them before timing
        render_s = _median_seconds(render, repetitions)
        validate_s = _median_seconds(validate, repetitions)
    return (
        f"render: helm template {course.name} median {render_s * 1000:.1f} ms; validate {len(objs)} objects "
        f"(Kubernetes {DEFAULT_KUBE_VERSION}, strict) median {validate_s * 1000:.2f} ms; "
        f"{repetitions} repetitions; z2jh chart {chart.name}\n"
        f"validate/render ratio: {validate_s / render_s:.2f}"
    )


def hub_startup(course: Course, repetitions: int) -> str:
    """Live hub start-up with the course's config and roster, against a plain JupyterHub, alternating in one run."""
    from coursehub.chart.upstream import load_data
    from coursehub.hub.local import LocalHub, classify, make_plan, plain_hub_config
    from coursehub.images.build import deployed, ensure_env

    upstream, report = load_data(), classify(course)
    env = ensure_env(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    with tempfile.TemporaryDirectory() as tmp:

        def fresh_hubs(rep: int) -> tuple[LocalHub, LocalHub]:  # first starts: new databases every time
            plan = make_plan(course, upstream, Path(tmp) / f"plain-{rep}", env, report)
            config = plain_hub_config(plan)
            return LocalHub(plan, config=config), LocalHub(
                make_plan(course, upstream, Path(tmp) / f"c-{rep}", env, report)
            )

        p, c = _alternate(fresh_hubs, repetitions)
    return (
        f"hub start-up: plain JupyterHub median {p:.2f} s; {course.name} config and example roster median "
        f"{c:.2f} s; {repetitions} repetitions each, alternating\n"
        f"hub start-up ratio ({course.name}/plain): {c / p:.2f}"
    )


def _alternate(hubs: Callable[[int], tuple[Any, Any]], repetitions: int) -> tuple[float, float]:
    """Median start-up seconds of a baseline hub and a course hub, started alternately in one run."""
    times: tuple[list[float], list[float]] = ([], [])
    for rep in range(repetitions):
        for seconds, hub in zip(times, hubs(rep), strict=True):
            seconds.append(hub.start())
            hub.stop()
    return statistics.median(times[0]), statistics.median(times[1])


def _scaled_course(course: Course, folder: Path, groups: int, students: int, access: str) -> Course:
    """`course` with `access` and a generated roster of `groups` groups sharing `students` students."""
    per_group = max(1, students // groups)
    accounts = [{"group": f"g-{i:04d}", "account": f"collab-g-{i:04d}"} for i in range(groups)]
    members = {a["group"]: [f"s-{i * per_group + j:05d}" for j in range(per_group)] for i, a in enumerate(accounts)}
    return _with_declaration(course, folder, {"access": access, "sharedAccounts": accounts, "members": members})


def _with_declaration(
    course: Course, folder: Path, declaration: dict[str, Any], singleuser: dict[str, Any] | None = None
) -> Course:
    """`course` with its private layer replaced by this declaration (and these singleuser values), its servers on
    the hub's own origin: the benchmarks drive the hub and the servers by path on 127.0.0.1 (what they measure,
    auth and sync, does not depend on the origin; tests/test_subdomains.py covers the subdomains)."""
    from coursehub.courses import Layer

    data: dict[str, Any] = {"jupyterhub": {"custom": {"coursehub": declaration}}}
    if singleuser:
        data["jupyterhub"]["singleuser"] = singleuser
    by_path = Layer(
        folder / f"{course.name}.bench.yaml",
        {"jupyterhub": {"hub": {"config": {"JupyterHub": {"subdomain_host": ""}}}}},
    )
    layer = Layer(folder / f"{course.name}.secret.yaml", data)
    committed = tuple(x for x in course.layers if not x.private and x.path != by_path.path)
    return Course(course.name, course.course_file, (*committed, by_path, layer), course.chart_defaults)


def _moved(course: Course, student: str, to: str) -> Course:
    declaration = dict(course.layers[-1].data["jupyterhub"]["custom"]["coursehub"])
    members = {g: [m for m in ms if m != student] for g, ms in declaration["members"].items()}
    members[to] = [*members[to], student]
    return _with_declaration(course, course.layers[-1].path.parent, {**declaration, "members": members})


def _login(url: str, user: str, password: str) -> tuple[Any, dict[str, str]]:
    import requests

    session = requests.Session()
    session.get(f"{url}/hub/login")
    session.post(
        f"{url}/hub/login",
        data={"username": user, "password": password, "_xsrf": session.cookies.get("_xsrf")},
        allow_redirects=False,
    )
    return session, {"X-XSRFToken": session.cookies.get("_xsrf") or ""}


def _sync(course: Course, api: Any) -> tuple[int, float]:
    """One reconciliation from outside (make sync-groups' code): (HTTP requests made, seconds)."""
    from coursehub.courses import get
    from coursehub.groups import hubpython

    reconciler = hubpython.reconciler()
    declaration = get(course.values(), ("jupyterhub", "custom", "coursehub"))
    api.requests = 0
    began = time.perf_counter()
    result = reconciler.plan(declaration, api)
    assert not result.conflicts, result.conflicts
    reconciler.apply(result, api)
    return api.requests, time.perf_counter() - began


@contextlib.contextmanager
def _hub_at_scale(course: Course, root: Path, groups: int, students: int, access: str) -> Iterator[_AtScale]:
    """A course hub deployed before its roster, then `groups` groups of `students` synced into it and deployed with
    them (the hub restarted, reconciled); stopped with everything it started on the way out."""
    import secrets

    from coursehub.chart.upstream import load_data
    from coursehub.groups import sync
    from coursehub.hub.local import LocalHub, classify, make_plan
    from coursehub.images.build import deployed, ensure_env

    upstream = load_data()
    env = ensure_env(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    small = _with_declaration(course, root, {"access": access})  # deployed before the roster arrives
    scaled = _scaled_course(course, root, groups, students, access)
    report = classify(scaled)
    plan = make_plan(small, upstream, root / "course", env, report, admin_token=secrets.token_hex(16))
    hub = LocalHub(plan)
    hub.start()
    try:
        api = sync.hub_api(plan.url, str(plan.admin_token))
        initial, populated = _sync(scaled, api)
        steady, _ = _sync(scaled, api)
        plan.values = make_plan(scaled, upstream, root / "course", env, report).values  # a deploy
        hub.restart(timeout=600)
        baseline_plan = make_plan(course, upstream, root / "plain", env, report)
        yield _AtScale(hub, api, scaled, baseline_plan, initial, steady, populated)
    finally:
        hub.stop()


@dataclass
class _AtScale:
    hub: Any  # LocalHub
    api: Any  # the reconciler's client of the hub's REST API, counting requests
    course: Course  # with the roster
    plain_plan: Any  # a plain JupyterHub's Plan on the same machine (the baseline)
    initial_requests: int
    steady_requests: int
    first_sync_seconds: float


def scale(course: Course, groups: int, students: int, repetitions: int) -> str:
    """A course of `groups` groups over a semester, each access mode: the reconciler's requests (first sync,
    a sync with nothing to do, one student moved), roster change to enforcement beside a plain API round trip,
    and hub restarts with a shared server running against an empty hub's start, alternating in one run."""
    import requests

    from coursehub.groups import hubpython
    from coursehub.hub.local import LocalHub, plain_hub_config

    lines = []
    for access in ("roles", "shares"):
        with tempfile.TemporaryDirectory() as tmp, _hub_at_scale(course, Path(tmp), groups, students, access) as at:
            hub, api, scaled, plan = at.hub, at.api, at.course, at.hub.plan
            plain_config = plain_hub_config(at.plain_plan)
            # one student moves between groups: from the sync starting to the student being refused
            moved = scaled.values()["jupyterhub"]["custom"]["coursehub"]["members"]["g-0000"][0]
            session, xsrf = _login(plan.url, moved, plan.password)
            root_url = f"{plan.url}/hub/api/"
            round_trip = _median_seconds(lambda: requests.get(root_url), 20)  # noqa: B023
            began = time.perf_counter()
            one_move, _ = _sync(_moved(scaled, moved, "g-0001"), api)
            while session.post(f"{plan.url}/hub/api/users/collab-g-0000/server", headers=xsrf).status_code < 400:
                time.sleep(0.01)
            enforced = time.perf_counter() - began
            # restarts with a shared server running, against an empty hub's start
            admin = {"Authorization": f"token {plan.admin_token}"}
            requests.post(f"{plan.url}/hub/api/users/collab-g-0002/server", headers=admin).raise_for_status()
            for _ in range(600):
                server = requests.get(f"{plan.url}/hub/api/users/collab-g-0002", headers=admin).json()
                if server["servers"].get("", {}).get("ready"):
                    break
                time.sleep(0.2)
            pid = server["servers"][""]["state"]["pid"]
            plain, restarts, in_step = [], [], []
            for _ in range(repetitions):
                baseline = LocalHub(at.plain_plan, config=plain_config)
                plain.append(baseline.start())
                baseline.stop()
                began = time.perf_counter()
                restarts.append(hub.restart(timeout=600, reconciled=False))  # serving again
                hub.wait_for_log(hubpython.reconciler().IN_STEP, hub.started_at, timeout=600)
                in_step.append(time.perf_counter() - began)
            kept = _alive(pid) and requests.get(f"{plan.url}/user/collab-g-0002/api/status").status_code != 503
        p, c = statistics.median(plain), statistics.median(restarts)
        lines += [
            f"scale ({access}): {groups} groups, {students} students: first sync {at.first_sync_seconds:.1f} s; "
            f"restart median {c:.2f} s to serving again (reconciled: {statistics.median(in_step):.2f} s) against an "
            f"empty hub's start {p:.2f} s ({repetitions} each); "
            f"a running shared server kept through every restart: {'yes' if kept else 'NO'}",
            f"sync requests at {groups} groups ({access}): initial {at.initial_requests}, steady "
            f"{at.steady_requests}, one move {one_move}",
            f"roster change to enforcement ({access}): {enforced:.2f} s (sync of one move, then the student's start "
            f"request refused); plain API round trip {round_trip * 1000:.1f} ms",
            f"hub restart ratio at {groups} groups ({access}, coursehub/empty): {c / p:.2f}",
        ]
    return "\n".join(lines)


# What each wrapper of JupyterHub's start-up and session (coursehub_hub.patches) is for: the access mode where it
# acts, and what it makes cheaper.
WRAPPER_MEASURES = (
    ("find_roles_by_name_at_start", "roles", "restart"),
    ("collect_after_load", "roles", "restart"),
    ("keep_groups_in_memory", "shares", "sync after a restart"),
)


def wrappers(course: Course, groups: int, students: int, repetitions: int) -> str:
    """What each optional wrapper buys at course scale, on one hub, alternating in one run: restarts with all of
    them, and with the one measured left out ($COURSEHUB_HUB_WRAPPERS_OFF, as an operator would), to serving
    again; for keep_groups_in_memory, the reconciler's sync with nothing to do, after the in-hub run that followed
    the restart (the second read of every group since the restart: what JupyterHub alone loads again)."""
    from coursehub.groups import hubpython
    from coursehub_hub.patches import WRAPPERS_OFF_ENV

    lines = []
    for access in ("roles", "shares"):
        measured = [(name, what) for name, mode, what in WRAPPER_MEASURES if mode == access]
        with tempfile.TemporaryDirectory() as tmp, _hub_at_scale(course, Path(tmp), groups, students, access) as at:
            for name, what in measured:
                times: dict[bool, list[float]] = {True: [], False: []}
                for _ in range(repetitions):
                    for on in (True, False):
                        at.hub.plan.hub_env = {} if on else {WRAPPERS_OFF_ENV: name}
                        seconds = at.hub.restart(timeout=600, reconciled=False)
                        at.hub.wait_for_log(hubpython.reconciler().IN_STEP, at.hub.started_at, timeout=600)
                        if what != "restart":
                            _, seconds = _sync(at.course, at.api)
                        times[on].append(seconds)
                with_, without = statistics.median(times[True]), statistics.median(times[False])
                lines.append(
                    f"wrapper {name} at {groups} groups ({access}): {what} with/without {with_ / without:.2f} "
                    f"(median {with_:.2f} s / {without:.2f} s, {repetitions} each, alternating)"
                )
            at.hub.plan.hub_env = {}
    return "\n".join(lines)


def canvas_sync(course: Course, groups: int, per_group: int = 4, interval: int = 15) -> str:
    """Groups from Canvas at course scale, against the loopback Canvas test double (coursehub.canvas_double):
    the requests and seconds of a full read and sync (the in-hub reconciler's code, from outside, against a live
    hub already in step), and a moved student's old access refused after the change in Canvas, with the hub's
    reconciler syncing every `interval` seconds (goal: within one interval plus 2 s)."""
    import requests

    from coursehub.canvas_double import CanvasCourse, CanvasDouble
    from coursehub.chart.upstream import load_data
    from coursehub.courses import get
    from coursehub.groups import hubpython, sync
    from coursehub.hub.local import LocalHub, classify, make_plan
    from coursehub.images.build import deployed, ensure_env
    from coursehub_hub import canvas
    from coursehub_hub.config import LMS_INTERVAL_ENV

    reconciler = hubpython.reconciler()
    env = ensure_env(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    with CanvasDouble(CanvasCourse.generated(groups, per_group)) as double, tempfile.TemporaryDirectory() as tmp:
        block = {"url": double.url, "courseId": double.course.course_id, "groupSet": "Project groups"}
        lms_course = _with_declaration(course, Path(tmp), {"access": "shares", "lms": {**block, "token": double.token}})
        values = lms_course.values()
        values["jupyterhub"]["custom"]["coursehub"].pop("sharedAccounts", None)
        plan = make_plan(lms_course, load_data(), Path(tmp) / "hub", env, classify(lms_course))
        plan.admin_token = secrets_token()
        plan.values["custom"]["coursehub"].pop("sharedAccounts", None)
        plan.values["custom"]["coursehub"].pop("members", None)
        plan.hub_env = {LMS_INTERVAL_ENV: str(interval)}
        os.environ[LMS_INTERVAL_ENV] = str(interval)  # the hub passes it on to its reconciler service
        hub = LocalHub(plan)
        try:
            first = hub.start(timeout=900)  # the first sync makes every group, account, student and share
            declaration = get(values, ("jupyterhub", "custom", "coursehub"))
            api = sync.hub_api(plan.url, str(plan.admin_token))
            client = canvas.CanvasAPI(double.url, double.token)
            began = time.perf_counter()
            run = reconciler.plan_from_lms(declaration, api, client)
            reconciler.apply(run.plan, api)
            seconds = time.perf_counter() - began
            # one student moves in Canvas: from the change to the student's start of the old account refused
            moved = double.course.students[0].login_id
            session, xsrf = _login(plan.url, moved, plan.password)
            old = f"{plan.url}/hub/api/users/collab-canvas-5000/server"
            assert session.post(old, headers=xsrf).status_code < 400
            requests.delete(old, headers={"Authorization": f"token {plan.admin_token}"})
            began = time.perf_counter()
            double.course.move(moved, 5001)
            while session.post(old, headers=xsrf).status_code < 400:
                requests.delete(old, headers={"Authorization": f"token {plan.admin_token}"})
                time.sleep(0.2)
            enforced = time.perf_counter() - began
        finally:
            hub.stop()
            os.environ.pop(LMS_INTERVAL_ENV, None)
    return (
        f"canvas sync at {groups} groups: requests {run.canvas_requests}, seconds {seconds:.2f} (a full read of "
        f"{groups} groups and {groups * per_group} students from the loopback Canvas, planned against the hub, "
        f"nothing to change; goal: requests at most 60); first sync into an empty hub {first:.0f} s\n"
        f"canvas move to enforcement: {enforced:.1f} s (sync interval {interval} s; goal: at most interval + 2 s)"
    )


def secrets_token() -> str:
    import secrets

    return secrets.token_hex(16)


def token_check(repetitions: int, calls: int = 200) -> str:
    """What access "shares" adds to the hub's hot path: JupyterHub's scopes for a member's server token, with
    coursehub's group-share wrapper (count_group_shares_in_tokens) against JupyterHub alone, alternating in one
    run, on JupyterHub's own in-memory database: a student in three groups, each group's account shared with it."""
    from jupyterhub import scopes

    from coursehub.groups import hubpython
    from coursehub.groups.sharing_db import SharingDB, server_scopes

    lab = SharingDB()
    student = lab.student("s-ana")
    for i in range(3):
        lab.share(f"collab-g-{i}", f"g-{i}", [student])
    token = lab.token(student, [], lab.client("collab-g-0"))
    alone = scopes.get_scopes_for
    hubpython.patches().count_group_shares_in_tokens()
    wrapped = scopes.get_scopes_for
    scopes.get_scopes_for = alone  # this process keeps JupyterHub's own
    times: dict[Any, list[float]] = {alone: [], wrapped: []}
    # JupyterHub warns at each call that it discards the share's scope (the hub's membership filter hides that
    # line): kept out of the terminal here, its cost (building the message) stays in both
    quiet = logging.getLogger("tornado.application")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        access = server_scopes("collab-g-0")[0]
        if access in alone(token) or access not in wrapped(token):
            raise AssertionError("the wrapper does not do what it is measured for")
        for _ in range(repetitions):
            for check in (alone, wrapped):
                began = time.perf_counter()
                for _ in range(calls):
                    check(token)
                times[check].append((time.perf_counter() - began) / calls)
    finally:
        quiet.level = level
    a, w = statistics.median(times[alone]), statistics.median(times[wrapped])
    return (
        f"token scopes of a member of 3 shared groups: JupyterHub alone median {a * 1e6:.0f} us, with coursehub's "
        f"group-share wrapper {w * 1e6:.0f} us, {(w - a) * 1e6:.0f} us more per token check "
        f"({repetitions} x {calls} calls each, alternating)\n"
        f"token check with group shares/JupyterHub alone: {w / a:.2f}"
    )


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def visitor_cache(course: Course, caches: tuple[int, ...] = (1, 10, 300), seconds: float = 30, cap: float = 20) -> str:
    """What the servers' cache of the hub's answer about a visitor costs and buys: the hub's auth requests per
    active user per minute (a JupyterLab polling its server twice a second), and the seconds from a student's
    removal from the group to the group's server refusing them, at each HubAuth.cache_max_age (JupyterHub's
    default is 300 s; coursehub's singleuser command sets 10 s)."""
    import secrets

    import requests

    from coursehub.chart.upstream import load_data
    from coursehub.hub.local import LocalHub, classify, make_plan
    from coursehub.images.build import deployed, ensure_env

    upstream = load_data()
    cmd = course.values()["jupyterhub"]["singleuser"]["cmd"]
    env = ensure_env(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    found = []
    for cache in caches:
        with tempfile.TemporaryDirectory() as tmp:
            command = [a for a in cmd if not a.startswith("--HubAuth.cache_max_age=")]
            declaration = {"sharedAccounts": [{"group": "g", "account": "collab-g"}], "members": {"g": ["s-a"]}}
            one = _with_declaration(
                course, Path(tmp), declaration, {"cmd": [*command, f"--HubAuth.cache_max_age={cache}"]}
            )
            plan = make_plan(one, upstream, Path(tmp) / "hub", env, classify(one), admin_token=secrets.token_hex(16))
            admin = {"Authorization": f"token {plan.admin_token}"}
            with LocalHub(plan) as hub:
                session, xsrf = _login(plan.url, "s-a", plan.password)
                token = session.post(f"{plan.url}/hub/api/users/s-a/tokens", headers=xsrf, json={}).json()["token"]
                student = {"Authorization": f"token {token}"}
                requests.post(f"{plan.url}/hub/api/users/collab-g/server", headers=admin).raise_for_status()
                for _ in range(600):
                    if (
                        requests.get(f"{plan.url}/hub/api/users/collab-g", headers=admin)
                        .json()["servers"]
                        .get("", {})
                        .get("ready")
                    ):
                        break
                    time.sleep(0.2)
                contents = f"{plan.url}/user/collab-g/api/contents"
                requests.get(contents, headers=student).raise_for_status()
                offset = hub.log.stat().st_size
                began = time.perf_counter()
                while time.perf_counter() - began < seconds:
                    requests.get(contents, headers=student)
                    time.sleep(0.5)
                asked = hub.log.read_text()[offset:].count("GET /hub/api/user (s-a@")
                per_minute = asked * 60 / (time.perf_counter() - began)
                requests.delete(f"{plan.url}/hub/api/groups/g/users", headers=admin, json={"users": ["s-a"]})
                removed = time.perf_counter()
                while time.perf_counter() - removed < cap:
                    if requests.get(contents, headers=student).status_code in (403, 404):
                        break
                    time.sleep(0.1)
                refused = time.perf_counter() - removed
            found.append(
                f"cache {cache} s: {per_minute:.1f} (removal to refusal "
                + (f"{refused:.1f} s, at most {cache} s)" if refused < cap else f"over {cap:.0f} s, at most {cache} s)")
            )
    return "hub auth requests per active user per minute: " + "; ".join(found)


# What the course images leave out (image/*/*/requirements.txt), at the versions they pinned before.
IRI_CHECKER = ("rfc3987-syntax==1.1.0", "lark==1.3.1")


def iri_checker_import(course: Course, repetitions: int) -> str:
    """What rfc3987-syntax costs every server start: the images and the tooling venv leave it out, and jsonschema
    imports it when it is there, building its grammars. Alternating in one run, in the course's image environment:
    `import jupyterhub.singleuser` as the image has it, and with the package and lark put back (a uv --target
    folder on PYTHONPATH)."""
    from coursehub.images.build import deployed, ensure_env, uv_bin

    env = ensure_env(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    with tempfile.TemporaryDirectory(prefix="coursehub-bench-iri-") as back:
        # compiled, as pip compiles in an image: else, where PYTHONDONTWRITEBYTECODE is set, each run compiles lark
        install = [str(uv_bin()), "pip", "install", "--quiet", "--no-deps", "--compile-bytecode", "--target", back]
        subprocess.run(
            [*install, *IRI_CHECKER], check=True, env={**os.environ, "UV_PYTHON": str(env / "bin" / "python")}
        )
        code = "import sys, jupyterhub.singleuser; assert ('rfc3987_syntax' in sys.modules) == (sys.argv[1] == 'with')"
        times: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(repetitions):
            for name in times:
                environ = {**os.environ, "PYTHONPATH": back} if name == "with" else dict(os.environ)
                began = time.perf_counter()
                subprocess.run([str(env / "bin" / "python"), "-c", code, name], check=True, env=environ)
                times[name].append(time.perf_counter() - began)
    left_out, kept = statistics.median(times["without"]), statistics.median(times["with"])
    return (
        f"server import without/with rfc3987-syntax: {left_out / kept:.2f} ({left_out:.2f} s against {kept:.2f} s, "
        f"medians of {repetitions}; {course.name}'s image environment, which leaves it out as the image does)"
    )


def env_build(course: Course) -> str:
    """A first run's build of the course's deployed image environment: uv (what `ensure_env` runs) against pip.

    Both start from an empty temporary cache and fetch the same pinned files from
    PyPI (this machine's pip and uv configuration, such as a local mirror, is off
    for both), so the ratio is what a newcomer's first run sees, not a warm cache's.
    """
    from coursehub.images.build import deployed

    return _env_build(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))


def hub_env_build() -> str:
    """The same for the hub image's local environment (image/hub/<tag>/local-requirements.txt), which every local
    hub, `make demo` and each live test's, runs from."""
    from coursehub.images import hub

    return "hub " + _env_build(hub.deployed())


def _env_build(variant: Any) -> str:
    from coursehub.images.build import build_env

    with tempfile.TemporaryDirectory(prefix="coursehub-bench-env-") as tmp:
        root = Path(tmp)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
        start = time.perf_counter()
        build_env(variant, root / "uv", {**clean, "UV_NO_CONFIG": "1", "UV_CACHE_DIR": str(root / "uv-cache")})
        uv_s = time.perf_counter() - start
        pip_env = {**clean, "PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": str(root / "pip-cache")}
        start = time.perf_counter()
        pip_version = _pip_build(variant.requirements, root / "pip", pip_env)
        pip_s = time.perf_counter() - start
    return (
        f"first-run env build uv/pip: {uv_s / pip_s:.2f} (uv {uv_s:.1f} s, pip {pip_s:.1f} s; {variant.ref}, "
        f"{len(variant.pins())} pins; caches cold: empty temporary caches for both, both from PyPI; "
        f"python -m venv + pip {pip_version} --no-deps, as the Dockerfile; goal <= 0.3)"
    )


def _pip_build(requirements: Path, env: Path, environ: dict[str, str]) -> str:
    """The build without uv: `python -m venv`, then pip from the requirements as the Dockerfile runs it. Returns
    pip's version."""
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, env=environ)
    pip = [str(env / "bin" / "python"), "-m", "pip"]
    result = subprocess.run(
        [*pip, "install", "--disable-pip-version-check", "--no-deps", "-r", str(requirements)],  # as the Dockerfile
        capture_output=True,
        text=True,
        env=environ,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip could not build {requirements} for the benchmark:\n{result.stdout[-1500:]}")
    return subprocess.run([*pip, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
