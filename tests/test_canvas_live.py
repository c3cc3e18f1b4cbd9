"""A term of Canvas changes through the in-hub reconciler on a live hub: groups pulled from the loopback Canvas
(coursehub.canvas_double, a test double: Canvas cannot run here) on a schedule, with no CSV and no deploy, and
access checked after each change through the real hub, proxy and servers."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from coursehub.canvas_double import CanvasCourse, CanvasDouble, Fault
from coursehub.chart.upstream import load_data
from coursehub.courses import load_course
from coursehub.hub.local import LocalHub, classify, make_plan
from coursehub.images.build import deployed, ensure_env
from coursehub_hub.config import LMS_INTERVAL_ENV, ledger_name
from coursehub_hub.reconcile import LMS_REFUSED
from helpers.browser import log_in
from helpers.commands import coursehub
from helpers.hubs import DENIED, HubClient, hub_groups, stat159_values, until

pytestmark = pytest.mark.live

INTERVAL = 2  # seconds between syncs here (lms.interval's floor is 60; the double answers in milliseconds)
TA = "ta-kim"


def _values(folder: Path, canvas: CanvasDouble) -> Path:
    folder.mkdir()
    stat159_values(folder, {"jupyterhub": {"custom": {"coursehub": {"lms": {"token": canvas.token}, "staff": [TA]}}}})
    course = yaml.safe_load((folder / "stat159.yaml").read_text())
    declaration = course["jupyterhub"]["custom"]["coursehub"]
    declaration.pop("sharedAccounts")
    declaration |= {
        "access": "shares",
        "lms": {"url": canvas.url, "courseId": canvas.course.course_id, "groupSet": "Project groups"},
    }
    (folder / "stat159.yaml").write_text(yaml.safe_dump(course))
    return folder


@pytest.fixture
def term(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalHub, CanvasDouble]]:
    monkeypatch.setenv(LMS_INTERVAL_ENV, str(INTERVAL))
    with CanvasDouble(CanvasCourse.generated(groups=4, per_group=3, unassigned=1)) as canvas:
        course = load_course("stat159", values_dir=_values(tmp_path / "values", canvas))
        env = ensure_env(deployed("stat159", course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
        plan = make_plan(
            course, load_data(), tmp_path / "hub", env, classify(course), admin_token=secrets.token_hex(16)
        )
        hub = LocalHub(plan)
        try:
            hub.start()
            yield hub, canvas
        finally:
            hub.stop()


def _members(hub: LocalHub) -> dict[str, list[str]]:
    return {n: sorted(g["users"]) for n, g in hub_groups(hub).items() if n.startswith("canvas-")}


def _home_page(hub: LocalHub, student: str) -> str:
    session, r = log_in(hub.plan.url, student, hub.plan.password)
    assert r.status_code == 302
    return session.get(f"{hub.plan.url}/hub/home").text


def _log_after(hub: LocalHub, offset: int) -> str:
    return Path(hub.log).read_bytes()[offset:].decode(errors="replace")


def test_a_term_of_canvas_changes_reaches_the_hub_without_a_csv_or_a_deploy(
    term: tuple[LocalHub, CanvasDouble],
) -> None:
    hub, canvas = term
    api = HubClient(hub)
    ana, bo, cy = "student-100000", "student-100001", "student-100003"  # ana, bo: Team 1; cy: Team 2

    # week 1: the group set is on the hub, as canvas-<id> groups with collab-canvas-<id> accounts
    members = _members(hub)
    assert members["canvas-5000"] == [ana, bo, "student-100002"] and len(members) == 4
    assert "student-900000" not in str(members)  # in no Canvas group: skipped, counted
    ledger = hub_groups(hub)[ledger_name("stat159")]
    assert sorted(ledger["users"]) == [f"collab-canvas-{5000 + g}" for g in range(4)]
    assert api.start(ana, "collab-canvas-5000") in {201, 202}
    api.wait("collab-canvas-5000", ready=True)
    assert api.use(ana, "collab-canvas-5000") == 200 and api.use(bo, "collab-canvas-5000") == 200
    assert api.use(cy, "collab-canvas-5000") in DENIED
    assert api.use(TA, "collab-canvas-5000") == 200  # the TA reaches every account through the ledger group

    # week 3: Team 1 is renamed and ana moves to Team 2 in Canvas: the next sync moves her, and nothing else changes.
    # Anyone who runs code in the account's server can read its own token: ana takes it with her...
    stolen, pid = api.server_token("collab-canvas-5000"), api.pid("collab-canvas-5000")
    assert api.whoami(stolen) == 200
    canvas.course.groups[5000] = "Team One"
    canvas.course.move(ana, 5001)
    until(lambda: ana in _members(hub)["canvas-5001"])
    # ...and the sync that moved her stopped the server, which revoked that token, and started it again
    until(lambda: api.pid("collab-canvas-5000") not in (None, pid), what="the server started again")
    assert api.whoami(stolen) == 403 and api.start(ana, "collab-canvas-5000") in DENIED
    api.wait("collab-canvas-5000", ready=True)
    assert api.use(bo, "collab-canvas-5000") == 200  # the group goes on, with nobody starting it
    assert api.start(ana, "collab-canvas-5001") in {201, 202}
    api.wait("collab-canvas-5001", ready=True)
    assert api.use(ana, "collab-canvas-5001") == 200
    home = _home_page(hub, ana)  # her group's row, from the ledger the reconciler keeps: no deploy needed
    assert "collab-canvas-5001" in home and "collab-canvas-5000" not in home and "canvas-5002" not in home

    # week 5: bo withdraws: kept through one sync, gone after the second
    offset, pid = Path(hub.log).stat().st_size, api.pid("collab-canvas-5000")
    canvas.course.withdraw(bo)
    until(lambda: bo not in _members(hub)["canvas-5000"])
    log = _log_after(hub, offset)
    assert "1 held until the next sync" in log and "1 let go after two syncs in no group" in log
    assert bo not in log  # membership stays out of the log
    until(  # the same sync restarted the group's server
        lambda: api.pid("collab-canvas-5000") not in (None, pid), what="the server started again"
    )
    api.wait("collab-canvas-5000", ready=True)
    assert api.start(bo, "collab-canvas-5000") in DENIED and api.use(bo, "collab-canvas-5000") in DENIED

    # answers that cannot be trusted change nothing, each said in one line
    for fault, check in (
        (Fault("404", path="groups", count=1), "not found"),
        (Fault("bad-json", path="enrollments", count=1), "bad JSON"),
    ):
        before = _members(hub)
        offset = Path(hub.log).stat().st_size
        canvas.course.withdraw("student-100002")  # would be a change, if the answer were trusted
        canvas.inject(fault)
        until(lambda: LMS_REFUSED in _log_after(hub, offset))  # noqa: B023
        assert _members(hub) == before and f"{LMS_REFUSED} {check}" in _log_after(hub, offset)
        canvas.course.students.append(canvas.course.students[0].__class__(100002, "student-100002", "sis100002"))
        canvas.course.membership[100002] = 5000

    # a restart (a deploy): the groups and the running servers stay; syncs go on
    hub.restart()
    assert api.server("collab-canvas-5001").get("ready") and api.use(ana, "collab-canvas-5001") == 200
    canvas.course.move(cy, 5002)
    until(lambda: cy in _members(hub)["canvas-5002"])


def test_a_sync_that_would_empty_many_groups_waits_for_an_operator(
    term: tuple[LocalHub, CanvasDouble], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, canvas = term
    before = _members(hub)
    offset = Path(hub.log).stat().st_size
    canvas.course.delete_group(5000)
    canvas.course.delete_group(5001)  # six students in no group: more than max(5, 10 % of 12)
    until(lambda: "mass removal" in _log_after(hub, offset))
    time.sleep(INTERVAL * 1.5)
    assert _members(hub) == before  # held, sync after sync

    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", str(hub.plan.admin_token))
    monkeypatch.setenv("CANVAS_API_TOKEN", canvas.token)
    values = tmp_path / "values"
    planned = coursehub("lms-plan", "--course", "stat159", "--hub-url", hub.plan.url, values=values)
    assert "held, nothing changed: this sync would take 6 of 12 members out of a group" in planned.stdout
    assert "ACCEPT_REMOVALS=6" in planned.stdout and _members(hub) == before
    assert "held: drop-group canvas-5000" in planned.stdout  # what it holds, change by change
    wrong = coursehub(
        "sync-groups", "--course", "stat159", "--hub-url", hub.plan.url, "--accept-removals", "5", values=values
    )
    assert wrong.returncode == 1 and "held, nothing changed" in wrong.stdout and _members(hub) == before
    accepted = coursehub(
        "sync-groups", "--course", "stat159", "--hub-url", hub.plan.url, "--accept-removals", "6", values=values
    )
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "drop-group canvas-5000" in accepted.stdout
    until(lambda: "canvas-5000" not in _members(hub) and "canvas-5001" not in _members(hub))
    assert sorted(_members(hub)) == ["canvas-5002", "canvas-5003"]
