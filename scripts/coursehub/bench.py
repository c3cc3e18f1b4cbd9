"""`make bench`: what a check costs against the work it checks, as ratios measured in one run."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coursehub import kube
from coursehub.courses import Course
from coursehub.helm import DEFAULT_KUBE_VERSION, Helm, Release, staged_chart
from coursehub.rendered import objects
from coursehub.upstream import require_chart


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
    from coursehub.images import deployed, ensure_env
    from coursehub.localhub import LocalHub, classify, make_plan, plain_hub_config
    from coursehub.upstream import load_data

    upstream, report = load_data(), classify(course)
    env = ensure_env(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    with tempfile.TemporaryDirectory() as tmp:

        def fresh_hubs(rep: int) -> tuple[LocalHub, LocalHub]:  # first starts: new databases every time
            plan = make_plan(course, upstream, Path(tmp) / f"plain-{rep}", env, report)
            (Path(tmp) / f"plain-{rep}").mkdir()
            config = plain_hub_config(Path(tmp) / f"plain-{rep}", plan.port, plan.hub_port, plan.proxy_api_port)
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


def _scaled_course(course: Course, folder: Path, groups: int, students: int) -> Course:
    """`course` with access "shares" and a generated roster of `groups` groups sharing `students` students."""
    from coursehub.courses import Layer

    per_group = max(1, students // groups)
    accounts = [{"group": f"g-{i:04d}", "account": f"collab-g-{i:04d}"} for i in range(groups)]
    members = {a["group"]: [f"s-{i * per_group + j:05d}" for j in range(per_group)] for i, a in enumerate(accounts)}
    declaration = {"access": "shares", "sharedAccounts": accounts, "members": members}
    layer = Layer(folder / f"{course.name}.secret.yaml", {"jupyterhub": {"custom": {"coursehub": declaration}}})
    committed = tuple(x for x in course.layers if not x.private)
    return Course(course.name, course.course_file, (*committed, layer), course.chart_defaults)


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


def scale_restart(course: Course, groups: int, students: int, repetitions: int) -> str:
    """Hub restart with a course-sized roster kept the coursehub way (access "shares"), against an empty hub."""
    import secrets

    from coursehub import sync
    from coursehub.images import deployed, ensure_env
    from coursehub.localhub import LocalHub, classify, make_plan, plain_hub_config
    from coursehub.upstream import load_data

    upstream = load_data()
    env = ensure_env(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scaled = _scaled_course(course, root, groups, students)
        report = classify(scaled)
        plain_plan = make_plan(course, upstream, root / "plain", env, report)
        (root / "plain").mkdir()
        plain_config = plain_hub_config(root / "plain", plain_plan.port, plain_plan.hub_port, plain_plan.proxy_api_port)
        plan = make_plan(scaled, upstream, root / "course", env, report, admin_token=secrets.token_hex(16))
        hub = LocalHub(plan)
        hub.start()
        populate = time.perf_counter()
        api = sync.Hub(plan.url, str(plan.admin_token))
        for change in sync.plan(scaled, api).changes:
            api.apply(change, course.name)
        populated = time.perf_counter() - populate
        hub.stop()
        first = LocalHub(plain_plan, config=plain_config)  # the first start creates its database
        first.start()
        first.stop()
        p, c = _alternate(lambda rep: (LocalHub(plain_plan, config=plain_config), LocalHub(plan)), repetitions)
        # a roster change: one student moves from the first group to the second
        h = LocalHub(plan)
        h.start()
        try:
            moved = scaled.values()["jupyterhub"]["custom"]["coursehub"]["members"]["g-0000"][0]
            changed = _move(scaled, moved)
            session, xsrf = _login(plan.url, moved, plan.password)
            began = time.perf_counter()
            for change in sync.plan(changed, api).changes:
                api.apply(change, course.name)
            refused = session.post(f"{plan.url}/hub/api/users/collab-g-0000/server", headers=xsrf).status_code
            enforced = time.perf_counter() - began
        finally:
            h.stop()
    return (
        f"scale: {groups} groups, {students} students, access shares: populated by sync in {populated:.1f} s; "
        f"restart median {c:.2f} s against an empty hub's {p:.2f} s ({repetitions} repetitions each)\n"
        f"hub restart ratio at {groups} groups (coursehub/empty): {c / p:.2f}\n"
        f"roster change to enforcement (sync of one move, then the student's next start request: "
        f"HTTP {refused}): {enforced:.2f} s"
    )


def _move(course: Course, student: str) -> Course:
    from coursehub.courses import Layer

    private = course.layers[-1]
    declaration = private.data["jupyterhub"]["custom"]["coursehub"]
    members = {g: [m for m in ms if m != student] for g, ms in declaration["members"].items()}
    members["g-0001"] = [*members["g-0001"], student]
    data = {"jupyterhub": {"custom": {"coursehub": {**declaration, "members": members}}}}
    return Course(
        course.name, course.course_file, (*course.layers[:-1], Layer(private.path, data)), course.chart_defaults
    )
