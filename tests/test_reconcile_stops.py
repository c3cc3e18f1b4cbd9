"""When the reconciler stops a group account's server, and in what order (coursehub_hub.reconcile.plan), on the
hub as plan() reads it (a recorded GET /groups: plan reads, never writes). The live runs of the same are
test_semester.py, test_sync_groups.py, test_sync_shares.py and test_canvas_live.py."""

from __future__ import annotations

from typing import Any

from coursehub.groups import hubpython
from helpers.hubs import GroupsRead

reconciler = hubpython.reconciler()
LEDGER = "coursehub:stat159"


_Hub = GroupsRead


def _canvas_hub(**ledger: Any) -> _Hub:
    """A Canvas course's hub: canvas-1 and canvas-2 with their accounts, both in the ledger group and shared."""
    properties = {
        "coursehub.course": "stat159",
        "groups": {"canvas-1": "collab-canvas-1", "canvas-2": "collab-canvas-2"},
        "accounts": ["collab-canvas-1", "collab-canvas-2"],
        "shared": {"collab-canvas-1": "group:canvas-1", "collab-canvas-2": "group:canvas-2"},
        **ledger,
    }
    return _Hub(
        {
            LEDGER: {"users": ["collab-canvas-1", "collab-canvas-2"], "properties": properties},
            "canvas-1": {"users": ["s-ana", "s-bo"]},
            "canvas-2": {"users": ["s-cy"]},
        }
    )


def _canvas_declaration(members: dict[str, list[str]], **extra: Any) -> dict[str, Any]:
    """What a Canvas sync hands plan() (lms.desired)."""
    return {
        "course": "stat159",
        "access": "shares",
        "lms": {"url": "https://canvas.example.edu", "courseId": 1, "groupSet": 7},
        "sharedAccounts": [{"group": g, "account": f"collab-{g}"} for g in members],
        "members": members,
        **extra,
    }


def _steps(result: Any) -> list[tuple[str, str]]:
    return [(c.action, c.target) for c in result.changes]


def test_a_group_that_loses_a_member_has_its_server_stopped_after_the_member_leaves() -> None:
    result = reconciler.plan(_canvas_declaration({"canvas-1": ["s-ana"], "canvas-2": ["s-cy"]}), _canvas_hub())
    steps = _steps(result)
    assert ("stop-server", "collab-canvas-1") in steps and ("stop-server", "collab-canvas-2") not in steps
    assert steps.index(("remove-members", "canvas-1")) < steps.index(("stop-server", "collab-canvas-1"))
    assert result.intent.stops == {"collab-canvas-1"}  # written before anything changes
    assert result.after.stops == set()  # and cleared by the run's last write


def test_a_dropped_canvas_groups_account_is_stopped_and_unshared_while_still_reachable_and_leaves_later() -> None:
    """The reconciler of a Canvas course reaches servers only through the ledger group: the dropped group's account
    is stopped and unshared while in it, and leaves it in the next run (once the stop is done)."""
    result = reconciler.plan(_canvas_declaration({"canvas-1": ["s-ana", "s-bo"]}), _canvas_hub())
    steps = _steps(result)
    assert steps.index(("drop-group", "canvas-2")) < steps.index(("stop-server", "collab-canvas-2"))
    assert steps.index(("stop-server", "collab-canvas-2")) < steps.index(("unshare-all", "collab-canvas-2"))
    assert ("remove-members", LEDGER) not in steps
    later = _canvas_hub(groups={"canvas-1": "collab-canvas-1"}, shared={"collab-canvas-1": "group:canvas-1"})
    later.groups = [g for g in later.groups if g["name"] != "canvas-2"]
    next_run = reconciler.plan(_canvas_declaration({"canvas-1": ["s-ana", "s-bo"]}), later)
    assert [(c.action, c.target, c.users) for c in next_run.changes] == [
        ("remove-members", LEDGER, ("collab-canvas-2",))
    ]


def test_a_stop_left_by_a_run_that_failed_is_made_by_the_next() -> None:
    members = {"canvas-1": ["s-ana", "s-bo"], "canvas-2": ["s-cy"]}  # nothing changes now...
    result = reconciler.plan(_canvas_declaration(members), _canvas_hub(stops=["collab-canvas-1"]))  # ...but this
    assert _steps(result) == [("stop-server", "collab-canvas-1")]


def _staffed_hub(staff: list[str], digests: list[str]) -> _Hub:
    staff_group = "coursehub-staff:stat159"
    shared = {f"collab-canvas-{n}": f"group:canvas-{n},{staff_group}" for n in (1, 2)}
    hub = _canvas_hub(staff=digests, shared=shared)
    hub.groups.append({"name": staff_group, "users": staff})
    return hub


def test_a_ta_taken_off_the_staff_has_every_accounts_server_stopped() -> None:
    members = {"canvas-1": ["s-ana", "s-bo"], "canvas-2": ["s-cy"]}
    staffed = reconciler.plan(_canvas_declaration(members, staff=["ta-1", "ta-2"]), _staffed_hub(["ta-1", "ta-2"], []))
    digests = sorted(staffed.after.staff)
    assert len(digests) == 2 and not any("ta-" in d for d in digests)  # the ledger keeps no names
    hub = _staffed_hub(["ta-1", "ta-2"], digests)
    same = reconciler.plan(_canvas_declaration(members, staff=["ta-1", "ta-2"]), hub)
    assert _steps(same) == []
    fewer = reconciler.plan(_canvas_declaration(members, staff=["ta-2"]), _staffed_hub(["ta-1", "ta-2"], digests))
    assert {t for a, t in _steps(fewer) if a == "stop-server"} == {"collab-canvas-1", "collab-canvas-2"}
    assert ("remove-members", "coursehub-staff:stat159") in _steps(fewer)


def test_a_run_records_what_its_removals_leave_so_the_membership_watch_does_not_restart_those_servers_again() -> None:
    """The in-hub membership watch (MembershipWatch) restarts the server of a group that lost a member outside a
    run; the ledger's ``left`` tells a run's own removals (whose servers the run restarts itself) from those."""
    result = reconciler.plan(_canvas_declaration({"canvas-1": ["s-ana"], "canvas-2": ["s-cy"]}), _canvas_hub())
    left = result.after.left["canvas-1"]
    assert left.startswith(reconciler.members_digest("stat159", ["s-ana"]) + "/")  # and the run's id
    assert result.intent.left == result.after.left == {"canvas-1": left}  # written before the removal is made
    assert "s-ana" not in str(result.after.properties("stat159"))  # a digest, never a name
    assert left != reconciler.members_digest("stat159", ["s-ana", "s-bo"]) != reconciler.members_digest("x", ["s-ana"])
    # the next run, with nothing to take out, keeps the record (and changes nothing)
    after = _canvas_hub(left={"canvas-1": left})
    after.groups = [{**g, "users": ["s-ana"]} if g["name"] == "canvas-1" else g for g in after.groups]
    again = reconciler.plan(_canvas_declaration({"canvas-1": ["s-ana"], "canvas-2": ["s-cy"]}), after)
    assert again.empty and again.after.left == {"canvas-1": left}


class _ServersHub(GroupsRead):
    """GroupsRead plus the three server calls the membership watch makes (GET a user, DELETE and POST its
    server), on a dict of running servers: a TEST DOUBLE for the watch's decisions only. What the watch does on a
    real hub is test_live_hub.py's admin-API test and test_sync_groups.py's run test."""

    def __init__(self, groups: dict[str, dict[str, Any]], running: set[str]) -> None:
        super().__init__(groups)
        self.running = set(running)
        self.calls: list[tuple[str, str]] = []

    def members(self, group: str, users: list[str]) -> None:
        next(g for g in self.groups if g["name"] == group)["users"] = users

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()) -> Any:
        account = path.split("/")[2]
        if method != "GET":
            self.calls.append((method, account))
            (self.running.discard if method == "DELETE" else self.running.add)(account)
            return None
        return {"name": account, "servers": {"": {"ready": True}} if account in self.running else {}}


def test_the_membership_watch_restarts_after_removals_outside_a_run_and_never_twice_for_a_runs_own() -> None:
    ledger = {"coursehub.course": "stat159", "groups": {"shared-1": "collab-shared-1"}}
    hub = _ServersHub({LEDGER: {"properties": ledger}, "shared-1": {"users": ["s-ana", "s-bo"]}}, {"collab-shared-1"})
    watch = reconciler.MembershipWatch("stat159")
    assert watch.check(hub) == [] and hub.calls == []  # the first look only looks
    hub.members("shared-1", ["s-ana", "s-bo", "s-cy"])
    assert watch.check(hub) == []  # an addition is no one's loss
    hub.members("shared-1", ["s-ana", "s-cy"])  # a TA takes s-bo out in the admin page
    assert watch.check(hub) == ["collab-shared-1"]
    assert hub.calls == [("DELETE", "collab-shared-1"), ("POST", "collab-shared-1")]  # stopped, started again
    # a run takes s-cy out: it records what it leaves before it does (and restarts the server itself)
    hub.calls.clear()
    ledger["left"] = {"shared-1": reconciler.members_digest("stat159", ["s-ana"]) + "/run-1"}
    hub.members("shared-1", ["s-ana"])
    assert watch.check(hub) == [] and hub.calls == []
    # later, a TA adds s-dee and takes her out: the group is back to what the run left, but not by the run
    hub.members("shared-1", ["s-ana", "s-dee"])
    assert watch.check(hub) == []
    hub.members("shared-1", ["s-ana"])
    assert watch.check(hub) == ["collab-shared-1"]
    assert hub.calls == [("DELETE", "collab-shared-1"), ("POST", "collab-shared-1")]
    # a server that was not running is not started by the watch
    hub.calls.clear()
    hub.running.clear()
    hub.members("shared-1", ["s-ana", "s-eve"])
    watch.check(hub)
    hub.members("shared-1", ["s-eve"])
    assert watch.check(hub) == ["collab-shared-1"] and hub.calls == [("DELETE", "collab-shared-1")]


def test_the_watch_leaves_a_run_under_way_its_stop_but_does_it_itself_when_the_run_could_not() -> None:
    """A run records what it leaves before its removals, and its stops as pending: while the stop is pending the
    watch waits (RUN_PATIENCE looks); a run that failed at the stop (a token without `servers`, Ctrl-C) leaves it
    pending for good, and the watch stops and restarts the server itself."""
    ledger = {"coursehub.course": "stat159", "groups": {"shared-1": "collab-shared-1", "shared-2": "collab-shared-2"}}
    hub = _ServersHub(
        {LEDGER: {"properties": ledger}, "shared-1": {"users": ["s-ana", "s-bo"]}, "shared-2": {"users": ["s-cy"]}},
        {"collab-shared-1", "collab-shared-2"},
    )
    watch = reconciler.MembershipWatch("stat159")
    watch.check(hub)
    ledger["left"] = {"shared-1": reconciler.members_digest("stat159", ["s-ana"]) + "/run-2"}
    ledger["stops"] = ["collab-shared-1"]
    hub.members("shared-1", ["s-ana"])
    for _ in range(reconciler.RUN_PATIENCE):
        assert watch.check(hub) == [] and hub.calls == []
    assert watch.check(hub) == ["collab-shared-1"]  # the run never got to it
    assert hub.calls == [("DELETE", "collab-shared-1"), ("POST", "collab-shared-1")]


def test_one_account_the_watch_cannot_stop_holds_up_no_other_and_is_tried_again() -> None:
    ledger = {"coursehub.course": "stat159", "groups": {"shared-1": "collab-shared-1", "shared-2": "collab-shared-2"}}
    hub = _ServersHub(
        {
            LEDGER: {"properties": ledger},
            "shared-1": {"users": ["s-ana", "s-bo"]},
            "shared-2": {"users": ["s-cy", "s-dee"]},
        },
        {"collab-shared-1", "collab-shared-2"},
    )
    real_call = hub.call

    def refusing(method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()) -> Any:
        if method == "DELETE" and "collab-shared-1" in path and refused:
            raise reconciler.HubError(f"{method} {path}: HTTP 403 (no scope)")
        return real_call(method, path, body, ok)

    refused = True
    hub.call = refusing  # type: ignore[method-assign]
    watch = reconciler.MembershipWatch("stat159")
    watch.check(hub)
    hub.members("shared-1", ["s-ana"])
    hub.members("shared-2", ["s-cy"])
    assert watch.check(hub) == ["collab-shared-1", "collab-shared-2"]
    assert hub.calls == [("DELETE", "collab-shared-2"), ("POST", "collab-shared-2")]
    refused = False
    hub.calls.clear()
    assert watch.check(hub) == ["collab-shared-1"]  # no new loss: the failed stop, again
    assert hub.calls == [("DELETE", "collab-shared-1"), ("POST", "collab-shared-1")]


def test_anyone_taken_out_of_a_canvas_courses_staff_group_stops_every_account() -> None:
    """Every account's server is shared with the staff group: someone an admin had put in it by hand, and who
    leaves it, could have read any server's token."""
    members = {"canvas-1": ["s-ana", "s-bo"], "canvas-2": ["s-cy"]}
    digests = sorted(
        reconciler.plan(_canvas_declaration(members, staff=["ta-1"]), _staffed_hub(["ta-1"], [])).after.staff
    )
    result = reconciler.plan(_canvas_declaration(members, staff=["ta-1"]), _staffed_hub(["ta-1", "helper"], digests))
    assert {t for a, t in _steps(result) if a == "stop-server"} == {"collab-canvas-1", "collab-canvas-2"}


def test_a_runs_record_the_group_moved_on_from_hides_no_later_removal() -> None:
    """A run took s-bo out (and restarted the server); a TA put him back before the watch looked (he can read
    the new server's token), then took him out again: that removal is the TA's, not the run's."""
    ledger = {"coursehub.course": "stat159", "groups": {"shared-1": "collab-shared-1"}}
    hub = _ServersHub({LEDGER: {"properties": ledger}, "shared-1": {"users": ["s-ana", "s-bo"]}}, {"collab-shared-1"})
    watch = reconciler.MembershipWatch("stat159")
    watch.check(hub)
    ledger["left"] = {"shared-1": reconciler.members_digest("stat159", ["s-ana"]) + "/run-3"}  # the run, done
    assert watch.check(hub) == []  # s-bo is back already: no loss, and the record no longer describes the group
    hub.members("shared-1", ["s-ana"])
    assert watch.check(hub) == ["collab-shared-1"]
