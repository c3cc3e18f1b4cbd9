"""`make bench`: what a check costs against the work it checks, as ratios measured in one run."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from coursehub import kube
from coursehub.courses import Course
from coursehub.helm import DEFAULT_KUBE_VERSION, Helm, Release, staged_chart
from coursehub.rendered import objects
from coursehub.standin import write_stand_in
from coursehub.upstream import find_chart


def _median_seconds(action: Callable[[], object], repetitions: int) -> float:
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def validate_vs_render(course: Course, helm: Helm, repetitions: int) -> str:
    """Strict Kubernetes validation of one rendered course at one version, against the `helm template` that rendered it."""
    chart = find_chart()
    with tempfile.TemporaryDirectory() as tmp:
        label = "upstream chart"
        if chart is None:  # no z2jh here: measure coursehub's own objects with the stand-in (a test double)
            chart, label = write_stand_in(Path(tmp)), "STAND-IN for the upstream chart: coursehub's own objects only"
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
        f"{repetitions} repetitions; {label}\n"
        f"validate/render ratio: {validate_s / render_s:.2f}"
    )


def hub_startup(course: Course, repetitions: int) -> str:
    """Live hub start-up with the course's config and roster, against a plain JupyterHub, alternating in one run."""
    from coursehub.images import deployed, ensure_env
    from coursehub.localhub import LocalHub, classify, make_plan, plain_hub_config
    from coursehub.upstream import load_data

    upstream, report = load_data(find_chart()), classify(course)
    env = ensure_env(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    plain, configured = [], []
    for _ in range(repetitions):
        with tempfile.TemporaryDirectory() as tmp:
            plan = make_plan(course, upstream, Path(tmp) / "plain", env, report)
            (Path(tmp) / "plain").mkdir()
            config = plain_hub_config(Path(tmp) / "plain", plan.port, plan.hub_port, plan.proxy_api_port)
            hub = LocalHub(plan, config=config)
            plain.append(hub.start())
            hub.stop()
            hub = LocalHub(make_plan(course, upstream, Path(tmp) / "course", env, report))
            configured.append(hub.start())
            hub.stop()
    p, c = statistics.median(plain), statistics.median(configured)
    return (
        f"hub start-up: plain JupyterHub median {p:.2f} s; {course.name} config and example roster median "
        f"{c:.2f} s; {repetitions} repetitions each, alternating\n"
        f"hub start-up ratio ({course.name}/plain): {c / p:.2f}"
    )
