"""`make sync-groups` (the hub's reconciler, from outside) against a real hub, access "roles".

Every test starts its own hub from its own roster, so each passes alone and in
any order. The hub's own reconciler has already run when the hub is up.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from coursehub.errors import CoursehubError
from coursehub.groups import hubpython
from coursehub.hub.local import LocalHub
from helpers.commands import COMMAND
from helpers.hubs import DENIED, HubClient, hub_groups, live_hub, stat159_values, sync_groups, write_roster

pytestmark = pytest.mark.live

START = {"shared-1": ["s-ana", "s-bo"], "shared-2": ["s-cy"]}
LEDGER = "coursehub:stat159"


@pytest.fixture
def values(tmp_path: Path) -> Path:
    (tmp_path / "values").mkdir()
    target = stat159_values(tmp_path / "values", {})
    write_roster(target, START)
    return target


@pytest.fixture
def hub(values: Path, tmp_path: Path) -> Iterator[LocalHub]:
    with live_hub(values, tmp_path / "hub") as local:
        yield local


def members(hub: LocalHub) -> dict[str, list[str]]:
    return {name: sorted(g["users"]) for name, g in hub_groups(hub).items() if name != LEDGER}


def test_the_hub_reconciles_itself_at_start_and_sync_then_has_nothing_to_do(hub: LocalHub, values: Path) -> None:
    assert members(hub) == START
    ledger = hub_groups(hub)[LEDGER]["properties"]
    assert ledger["groups"] == {"shared-1": "collab-shared-1", "shared-2": "collab-shared-2"}
    code, out = sync_groups(hub, values)
    assert code == 0, out
    assert out.strip() == "stat159: the hub already matches the declaration; nothing to change"


def test_dry_run_prints_the_exact_changes_and_changes_nothing(hub: LocalHub, values: Path) -> None:
    write_roster(values, {"shared-1": ["s-ana", "s-cy"], "shared-2": [], "shared-new": ["s-dee"]})
    before = hub_groups(hub)
    code, out = sync_groups(hub, values, dry_run=True)
    assert code == 0, out
    assert out.splitlines() == [
        "would create-accounts (1 accounts): collab-shared-new",
        "would create-users (1 students): s-dee",
        "would add-members shared-1: s-cy",
        "would remove-members shared-1: s-bo",
        "would remove-members shared-2: s-cy",
        "would create-group shared-new: s-dee",
        # a group that loses a member: its account's server stops, and with it the server's own token, which the
        # member who leaves could have read while they were in
        "would stop-server collab-shared-1",
        "would stop-server collab-shared-2",
    ]
    assert hub_groups(hub) == before


def test_additions_and_removals_apply_at_once_and_a_second_run_changes_nothing(hub: LocalHub, values: Path) -> None:
    write_roster(values, {"shared-1": ["s-ana", "s-cy"], "shared-new": ["s-dee"]})  # shared-2 is dropped
    code, out = sync_groups(hub, values)
    assert code == 0, out
    assert members(hub) == {"shared-1": ["s-ana", "s-cy"], "shared-new": ["s-dee"]}
    assert "done: drop-group shared-2" in out
    assert "groups shared-new: members are in, but their role" in out and "make deploy" in out
    ledger = hub_groups(hub)[LEDGER]["properties"]
    assert ledger["groups"] == {"shared-1": "collab-shared-1", "shared-new": "collab-shared-new"}
    assert {"collab-shared-2", "collab-shared-new"} <= set(ledger["accounts"])  # accounts stay coursehub's
    code, out = sync_groups(hub, values)
    assert code == 0 and "nothing to change" in out, out


def test_a_removal_restarts_the_groups_running_server_once_and_its_other_member_keeps_it(
    hub: LocalHub, values: Path
) -> None:
    """The run stops the server (its token, which s-bo could have read, dies with it) and starts it again for s-ana;
    the in-hub membership watch, which restarts servers after removals made outside a run, leaves this one alone."""
    api = HubClient(hub)
    assert api.start("s-ana", "collab-shared-1") in {201, 202}
    api.wait("collab-shared-1", ready=True)
    pid, token = api.pid("collab-shared-1"), api.server_token("collab-shared-1")
    write_roster(values, {"shared-1": ["s-ana"], "shared-2": ["s-cy"]})
    offset = Path(hub.log).stat().st_size
    code, out = sync_groups(hub, values)
    assert code == 0, out
    assert "done: stop-server collab-shared-1" in out and "done: start-server collab-shared-1" in out
    assert "collab-shared-2" not in out  # a group that lost nobody keeps its server as it is
    api.wait("collab-shared-1", ready=True)
    restarted = api.pid("collab-shared-1")
    assert restarted not in (None, pid) and api.whoami(token) == 403
    assert api.use("s-ana", "collab-shared-1") == 200 and api.use("s-bo", "collab-shared-1") in DENIED
    time.sleep(hubpython.reconciler().WATCH_SECONDS + 3)  # a look of the watch, and some
    assert api.pid("collab-shared-1") == restarted
    assert "outside a run" not in Path(hub.log).read_text()[offset:]
    assert api.stop("s-ana", "collab-shared-1") in {202, 204}
    api.wait("collab-shared-1", ready=False)


def test_a_group_the_values_leave_to_the_admin_page_keeps_its_members(hub: LocalHub, values: Path) -> None:
    admin = {"Authorization": f"token {hub.plan.admin_token}"}
    requests.post(f"{hub.plan.url}/hub/api/users/s-eve", headers=admin).raise_for_status()
    r = requests.post(f"{hub.plan.url}/hub/api/groups/shared-2/users", headers=admin, json={"users": ["s-eve"]})
    r.raise_for_status()
    write_roster(values, {"shared-1": ["s-ana", "s-bo"]}, admin_page=("shared-2",))
    code, out = sync_groups(hub, values)
    assert code == 0 and "nothing to change" in out, out
    assert members(hub)["shared-2"] == ["s-cy", "s-eve"]


@pytest.mark.parametrize("collision", ["foreign group", "real user as account"])
def test_collisions_are_refused_with_the_name_and_the_fix_and_nothing_changes(
    hub: LocalHub, values: Path, collision: str
) -> None:
    admin = {"Authorization": f"token {hub.plan.admin_token}"}
    api = f"{hub.plan.url}/hub/api"
    if collision == "foreign group":
        requests.post(f"{api}/users/prof", headers=admin).raise_for_status()
        requests.post(f"{api}/groups/teaching-staff", headers=admin, json={"users": ["prof"]}).raise_for_status()
        roster, name = {**START, "teaching-staff": ["s-eve"]}, "group teaching-staff already exists"
    else:
        requests.post(f"{api}/users/collab-lab", headers=admin).raise_for_status()  # (an admin is a user too)
        roster, name = {**START, "lab": ["s-eve"]}, "account collab-lab of group lab is an existing hub user"
    roster["shared-1"] = ["s-ana"]  # a change that would otherwise be applied
    write_roster(values, roster)
    before = hub_groups(hub)
    code, out = sync_groups(hub, values)
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("conflict: ")]
    assert name in line and "rename it in the values" in line
    assert "collisions: nothing was changed" in out
    assert hub_groups(hub) == before


def test_an_account_without_the_course_prefix_is_refused_before_the_hub_is_asked(hub: LocalHub, values: Path) -> None:
    write_roster(values, START)
    secret = (values / "stat159.secret.yaml").read_text().replace("account: collab-shared-2", "account: s-cy")
    (values / "stat159.secret.yaml").write_text(secret)
    before = hub_groups(hub)
    with pytest.raises(CoursehubError) as caught:
        sync_groups(hub, values)
    assert "does not start with the course's account prefix 'collab-'" in str(caught.value)
    assert hub_groups(hub) == before


def test_a_failure_part_way_says_what_was_applied_and_a_rerun_finishes(hub: LocalHub, values: Path) -> None:
    admin = {"Authorization": f"token {hub.plan.admin_token}"}
    # a token that may do everything the roster needs except create groups: it fails part-way
    scopes = ["admin:users", "list:users", "list:groups", "read:groups", "read:roles:groups", "groups"]
    r = requests.post(f"{hub.plan.url}/hub/api/users/instructor/tokens", headers=admin, json={"scopes": scopes})
    assert r.status_code == 201, r.text
    write_roster(values, {"shared-1": ["s-ana"], "shared-2": ["s-cy"], "late": ["s-fay"]})
    code, out = sync_groups(hub, values, token=r.json()["token"])
    assert code == 1, out
    assert "done: remove-members shared-1: s-bo" in out
    assert "error: POST /groups/late: HTTP 403" in out
    assert "not applied: create-group late: s-fay; stop-server collab-shared-1. Run the same command again" in out
    assert members(hub)["shared-1"] == ["s-ana"] and "late" not in hub_groups(hub)
    ledger = hub_groups(hub)[LEDGER]["properties"]
    assert "late" in ledger["groups"]  # recorded as coursehub's before creation
    assert ledger["stops"] == ["collab-shared-1"]  # and the stop s-bo's removal needs, though s-bo is out already
    code, out = sync_groups(hub, values)
    assert code == 0, out
    assert [line for line in out.splitlines() if not line.startswith(("done:", "groups "))] == [
        "create-group late: s-fay",  # only what was not applied yet
        "stop-server collab-shared-1",
    ]
    assert "stops" not in hub_groups(hub)[LEDGER]["properties"]
    assert members(hub)["late"] == ["s-fay"]


class _Scripted(http.server.BaseHTTPRequestHandler):
    """A real HTTP server that answers with the statuses it is given, in order (the last one repeats)."""

    statuses: ClassVar[list[int]] = []
    seen = 0

    def do_GET(self) -> None:
        status = self.statuses[min(type(self).seen, len(self.statuses) - 1)]
        type(self).seen += 1
        body = b'{"items": [], "_pagination": {"next": null}}' if status == 200 else b'{"message": "busy"}'
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        ([500, 502, 200], "ok after 3 requests"),
        ([503], "HTTP 503 busy; gave up after 3 tries"),
        ([302], "redirect (302 to /elsewhere): give the hub's own URL"),
        ([404], "HTTP 404 busy"),
    ],
)
def test_requests_retry_5xx_with_backoff_and_every_error_is_one_line(statuses: list[int], outcome: str) -> None:
    handler = type("Handler", (_Scripted,), {"statuses": statuses, "seen": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        reconciler = hubpython.reconciler()
        api = reconciler.HubAPI(f"http://127.0.0.1:{server.server_port}/hub/api", "t", retries=2, backoff=0.01)
        try:
            list(api.pages("/groups"))
            result = f"ok after {api.requests} requests"
        except reconciler.HubError as e:
            result = str(e)
    finally:
        server.shutdown()
        server.server_close()
    assert outcome in result and "\n" not in result


def test_the_token_never_comes_from_the_command_line(tmp_path: Path) -> None:
    """The entry point the Makefile calls, as a subprocess."""
    env = {k: v for k, v in os.environ.items() if k != "JUPYTERHUB_API_TOKEN"}
    result = subprocess.run(
        [COMMAND, "sync-groups", "--course", "stat159", "--hub-url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1 and "JUPYTERHUB_API_TOKEN: is not set" in result.stderr
