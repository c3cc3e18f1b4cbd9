"""A small surge (make bench-surge's, 40 students in 10 groups, light servers) as a correctness test: everyone gets
in, a hub restart in the middle of it loses nothing, and nothing is left running. No timing is asserted."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from coursehub.courses import load_course
from coursehub.hub.local import LocalHub
from coursehub.surge import checks, faults, hubs, lightserver
from coursehub.surge.report import Size, checked_run

SMALL = Size(groups=10, per_group=4, ramp=10, rhythm=25, max_requests=20_000)


def test_the_roster_gives_every_student_one_group_and_each_group_its_account() -> None:
    roster = hubs.Roster.generated(10, 4)
    arrivals = roster.arrivals()
    assert sorted(a["name"] for a in arrivals) == sorted(roster.students) and len(set(roster.students)) == 40
    assert all(a["account"] == f"collab-{a['group']}" and a["name"] in roster.members[a["group"]] for a in arrivals)
    moved = roster.moved("s-0000", "lab-001")
    assert "s-0000" not in moved.members["lab-000"] and "s-0000" in moved.members["lab-001"]


def test_the_light_server_takes_the_singleuser_commands_hub_auth_options_only() -> None:
    config = lightserver.hub_auth_config(
        ["--HubAuth.cache_max_age=10", "--SQLiteYStore.db_path=/tmp/ystore.db", "--LabApp.collaborative=true"]
    )
    assert config.HubAuth.cache_max_age == 10
    assert set(config) == {"HubAuth"}


def test_the_plain_baseline_has_no_coursehub_code_and_the_datahub_roles(tmp_path: Path) -> None:
    course = load_course("stat159")
    built = hubs.build(course, tmp_path, hubs.Roster.generated(2, 2), "light")
    text = built.plain.config.read_text() if built.plain.config else ""
    assert "coursehub_hub" not in text and not re.search(r"(from|import) coursehub", text)
    assert "access:servers!user=collab-lab-001" in text and "admin:servers!user=collab-lab-001" in text
    # JupyterHub's own visitor cache on the plain hub, coursehub's 10 s on the course's
    assert hubs.CACHE_FLAG not in text
    assert any(a.startswith(hubs.CACHE_FLAG) for a in built.coursehub.plan.values["singleuser"]["cmd"])


@pytest.mark.live
def test_a_small_surge_with_a_hub_restart_in_the_middle_loses_nothing(tmp_path: Path) -> None:
    roster = SMALL.roster
    built = hubs.build(load_course("stat159"), tmp_path, roster, "light")
    hub = built.coursehub
    restart = faults.hub_restart(list(roster.accounts.values()), at=SMALL.ramp / 2)
    run = checked_run(hub, "coursehub", roster, SMALL, restart)
    found = run.surge

    assert not found.capped and found.requests > 0
    assert found.never_in == [], "every student gets into their group's server"
    assert run.lost == [], "every group's server runs, every notebook is as last saved, memberships as declared"
    assert run.left == [], "no server, service, proxy or locust left running after the stop"
    assert found.fault["kept"] == found.fault["running"] > 0, "the restart stopped no running server"
    # what failed, failed while the hub was away (or on a progress stream it left open), and everyone got in after
    settled = found.fault["serving"] + 30
    assert not [f for f in found.failures if f["t"] > settled]
    assert all(s["saved"] for s in found.students.values())


@pytest.mark.live
def test_the_light_server_lets_in_the_group_and_refuses_another_groups_student(tmp_path: Path) -> None:
    roster = hubs.Roster.generated(2, 2)
    built = hubs.build(load_course("stat159"), tmp_path, roster, "light")
    hub = built.coursehub
    try:
        hub.start(timeout=300)
        admin = checks.admin(hub)
        requests.post(f"{hub.plan.url}/hub/api/users/collab-lab-000/server", headers=admin).raise_for_status()
        assert _ready(hub, "collab-lab-000")
        member = faults.Witness(hub, "s-0000", "collab-lab-000")
        stranger = faults.Witness(hub, "s-0002", "collab-lab-000")  # lab-001's
        assert member.uses()
        assert stranger.use_refused() or stranger.start_refused()
        assert not stranger.uses()
    finally:
        hub.stop()
    assert checks.left_running(hub) == []


def _ready(hub: LocalHub, account: str) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if checks.running_servers(hub, [account]):
            return True
        time.sleep(0.1)
    return False
