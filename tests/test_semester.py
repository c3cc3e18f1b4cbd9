"""A semester on one live hub, in the order it happens.

The course declares its groups; two members start and use their account; then
deploys come (each restarts the hub with changed values, as z2jh does when
Secret/hub changes): a new group, a student removed, a group removed, and names
that collide with what is already on the hub. Through the restarts the running
shared server stays up and usable, until its group loses a member (then it is
restarted: its token dies with the old server); each change takes
effect at the next start without anyone touching the admin page.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from helpers.files import edit
from helpers.hubs import DENIED, HubClient, hub_groups, live_hub, redeploy, stat159_values, write_roster

pytestmark = pytest.mark.live

ACCOUNT = "collab-shared-1"
START = {"shared-1": ["s-ana", "s-bo"], "shared-2": ["s-cy"]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is gone, but for its exit status


def wait_until(check: object, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.25)
    return False


def test_a_semester_of_deploys_keeps_servers_running_and_applies_every_change(tmp_path: Path) -> None:
    (tmp_path / "values").mkdir()
    values = stat159_values(tmp_path / "values", {})
    # the servers report their activity every 2 s instead of every 5 min, so that the test sees the reports
    edit(values / "stat159.yaml", {"jupyterhub.singleuser.extraEnv": {"JUPYTERHUB_ACTIVITY_INTERVAL": "2"}})
    write_roster(values, START)

    with live_hub(values, tmp_path / "hub") as hub:
        api = HubClient(hub)
        log = Path(hub.log)

        # week 1: the declaration is on the hub, and two members start and use their account
        groups = hub_groups(hub)
        assert sorted(groups["shared-1"]["users"]) == ["s-ana", "s-bo"] and groups["shared-2"]["users"] == ["s-cy"]
        assert api.start("s-ana", ACCOUNT) in {201, 202}
        api.wait(ACCOUNT, ready=True)
        assert api.use("s-ana", ACCOUNT) == 200 and api.use("s-bo", ACCOUNT) == 200
        pid = requests.get(f"{api.url}/hub/api/users/{ACCOUNT}", headers=api.admin).json()["servers"][""]["state"][
            "pid"
        ]

        # week 3: a deploy adds a group; the hub restarts with the new values
        write_roster(values, {**START, "shared-3": ["s-dee"]})
        offset = log.stat().st_size
        redeploy(hub, values)
        os.kill(pid, 0)  # the same server process is still running...
        assert api.server(ACCOUNT)["ready"] is True
        assert api.use("s-ana", ACCOUNT) == 200 and api.use("s-bo", ACCOUNT) == 200  # ...and usable through the proxy
        # its own activity reports go on being accepted (a blocked account's got 403 after every restart)
        reported = f"200 POST /hub/api/users/{ACCOUNT}/activity ({ACCOUNT}@"
        assert wait_until(lambda: reported in log.read_text()[offset:]), "no activity report since the restart"
        assert f"403 POST /hub/api/users/{ACCOUNT}/activity" not in log.read_text()
        assert api.start("s-dee", "collab-shared-3") in {201, 202}  # the new group's role came with the restart
        api.wait("collab-shared-3", ready=True)
        assert api.use("s-ana", "collab-shared-3") in DENIED
        assert api.stop("s-dee", "collab-shared-3") in {202, 204}
        api.wait("collab-shared-3", ready=False)

        # week 6: a student leaves the group in the values; the next start takes the access away, and restarts the
        # group's server: s-bo could have read its own token while in the group, and it dies with the old server
        write_roster(values, {"shared-1": ["s-ana"], "shared-2": ["s-cy"], "shared-3": ["s-dee"]})
        redeploy(hub, values)
        assert wait_until(lambda: not _alive(pid)), "the server of a group that lost a member still runs"
        assert wait_until(lambda: api.pid(ACCOUNT) not in (None, pid)), "the group's server was not started again"
        api.wait(ACCOUNT, ready=True)
        restarted = api.pid(ACCOUNT)
        assert restarted is not None
        assert api.start("s-bo", ACCOUNT) in DENIED and api.stop("s-bo", ACCOUNT) in DENIED
        assert api.use("s-ana", ACCOUNT) == 200 and api.use("s-bo", ACCOUNT) in DENIED  # nobody had to start it

        # week 9: a group is dropped from the roster: its members, its role and its group go
        write_roster(values, {"shared-1": ["s-ana"], "shared-3": ["s-dee"]})
        redeploy(hub, values)
        assert api.start("s-cy", "collab-shared-2") in DENIED
        groups = hub_groups(hub)
        assert "shared-2" not in groups
        roles = requests.get(f"{api.url}/hub/api/users/s-cy", headers=api.admin).json()["roles"]
        assert roles == ["user"]

        # week 10: names that are already on the hub and not coursehub's are refused, and nothing changes
        requests.post(f"{api.url}/hub/api/users/prof", headers=api.admin).raise_for_status()
        r = requests.post(f"{api.url}/hub/api/groups/teaching-staff", headers=api.admin, json={"users": ["prof"]})
        r.raise_for_status()
        requests.post(f"{api.url}/hub/api/users/collab-lab", headers=api.admin).raise_for_status()  # a real person
        write_roster(
            values, {"shared-1": ["s-ana"], "shared-3": ["s-dee"], "teaching-staff": ["s-eve"], "lab": ["s-fay"]}
        )
        offset = log.stat().st_size
        redeploy(hub, values)
        groups = hub_groups(hub)
        assert groups["teaching-staff"]["users"] == ["prof"] and groups["teaching-staff"]["roles"] == []
        assert "lab" not in groups
        assert requests.get(f"{api.url}/hub/api/users/collab-teaching-staff", headers=api.admin).status_code == 404
        assert api.start("s-fay", "collab-lab") in DENIED and api.start("prof", "collab-shared-1") in DENIED
        since = log.read_text()[offset:]
        assert "group 'teaching-staff' already exists on the hub and is not coursehub's" in since
        assert "account 'collab-lab' is an existing hub user that coursehub did not create" in since

        # end of term: the shared server s-ana started again in week 6 ran through the restarts since
        os.kill(restarted, 0)
        assert api.use("s-ana", ACCOUNT) == 200
        assert api.stop("s-ana", ACCOUNT) in {202, 204}
        api.wait(ACCOUNT, ready=False)
