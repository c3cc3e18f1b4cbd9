"""`make bench-surge`: the surge against coursehub's hub and a plain JupyterHub in one run, and each fault in a
run of its own, one printed line each.

Every hub is started fresh on 127.0.0.1 and stopped with everything it started, whatever happens; after each
run "nothing lost" is checked on the hub (``checks.nothing_lost``) and, once it is stopped, that no process is left.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from coursehub.courses import Course
from coursehub.hub.local import LocalHub
from coursehub.surge import FAULTS, RUNS, checks, faults
from coursehub.surge.hubs import Hubs, Roster, build, redeployed
from coursehub.surge.run import Surge, surge

ENFORCE_START = 2.0  # seconds: a moved student's start of the old account refused after the sync (make bench's goal)
# ... and their requests to the old account's server: the sync stops it, whatever the servers' visitor cache
ENFORCE_SERVER = 10.0
# After a fault, the seconds its effects may still show: a progress stream the restarting hub left open is given up
# after the students' 20 s read timeout (a browser's page would wait too), a server's cached answer lasts its cache.
SETTLE = 30.0


@dataclass(frozen=True)
class Size:
    groups: int = 75
    per_group: int = 4
    ramp: float = 120.0  # every student arrives within these seconds
    rhythm: float = 180.0  # then keeps JupyterLab's rhythm this long
    max_requests: int = 200_000

    @property
    def students(self) -> int:
        return self.groups * self.per_group

    @property
    def roster(self) -> Roster:
        return Roster.generated(self.groups, self.per_group)


@dataclass
class Checked:
    """A surge and what was checked after it."""

    surge: Surge
    lost: list[str]  # what was lost, one line each (checks.nothing_lost)
    left: list[int]  # processes left running after the hub's stop

    @property
    def summary(self) -> str:
        return checks.summary(self.lost, self.left)


def checked_run(
    hub: LocalHub,
    name: str,
    roster: Roster,
    size: Size,
    fault: faults.Fault | None = None,
    declared: Roster | None = None,
) -> Checked:
    """Start the hub, surge `roster` at it, check that nothing was lost (every surge group's server running, the
    memberships those `declared` at the end, by default the roster's), stop it and check that nothing is left."""
    try:
        hub.start(timeout=900)
        found = surge(hub, name, roster, size.ramp, size.rhythm, size.max_requests, fault)
        lost = checks.nothing_lost(hub, declared or roster, found, list(roster.accounts.values()))
    finally:
        hub.stop()
    return Checked(found, lost, checks.left_running(hub))


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def surge_line(course: Course, size: Size, servers: str, access: str = "roles", cache: bool | int = True) -> str:
    """The surge against coursehub's hub, then the same against the plain hub, in one run; the line. `cache`: the
    course's visitor cache (True) or another, in seconds, on the course hub's servers."""
    with tempfile.TemporaryDirectory(prefix="coursehub-surge-") as tmp:
        hubs = build(course, Path(tmp), size.roster, servers, access, cache)
        seconds = faults.cache_seconds(hubs.coursehub.plan.values)
        ours_run = checked_run(hubs.coursehub, "coursehub", hubs.roster, size)
        theirs_run = checked_run(hubs.plain, "plain", hubs.roster, size)
    ours, ours_lost, theirs, theirs_lost = ours_run.surge, ours_run.summary, theirs_run.surge, theirs_run.summary
    what = (
        "light servers (HubOAuthenticated)" if servers == "light" else f"{course.name}'s JupyterLab servers"
    ) + f", access {access}, visitor cache {seconds:.0f} s (plain: JupyterHub's 300 s)"
    capped = "; STOPPED AT THE REQUEST CAP" if ours.capped or theirs.capped else ""
    return (
        f"surge {size.students} students/{size.groups} groups: log-in to server p50 {ours.p(50):.2f} s, "
        f"p95 {ours.p(95):.2f} s (coursehub/plain {_ratio(ours.p(95), theirs.p(95))}); errors {ours.errors()}; "
        f"hub CPU {ours.hub_cpu:.1f} s (coursehub/plain {_ratio(ours.hub_cpu, theirs.hub_cpu)}); {what}; "
        f"plain JupyterHub p50 {theirs.p(50):.2f} s, p95 {theirs.p(95):.2f} s, errors {theirs.errors()}, hub CPU "
        f"{theirs.hub_cpu:.1f} s; requests {ours.requests} and {theirs.requests}; coursehub {ours_lost}, plain "
        f"{theirs_lost}{capped}"
    )


def _gap(logins: list[float], around: float) -> float:
    """The longest time without a successful log-in that contains the moment `around`."""
    before = max((t for t in logins if t <= around), default=around)
    after = min((t for t in logins if t > around), default=around)
    return after - before


def _window_requests(found: Surge, start: float, end: float) -> tuple[int, int]:
    """(server requests answered, failed) between two moments."""
    ok = failed = 0
    for second, counts in found.timeline.items():
        if start <= float(second) <= end:
            ok, failed = ok + counts[0], failed + counts[1]
    return ok, failed


def fault_line(course: Course, size: Size, name: str, servers: str = "light", access: str = "roles") -> str:
    """One fault in the middle of its own surge against coursehub's hub; the line."""
    at = size.ramp * 0.5  # half-way through the arrivals: log-ins are under way, half the servers run
    roster = size.roster
    with tempfile.TemporaryDirectory(prefix="coursehub-surge-") as tmp:
        hubs = build(course, Path(tmp), roster, servers, access)
        accounts = list(roster.accounts.values())
        make: dict[str, Callable[[Hubs], faults.Fault]] = {
            "hub-restart": lambda h: faults.hub_restart(accounts, at),
            "proxy-restart": lambda h: faults.proxy_restart(accounts, at),
            "reconciler-kill": lambda h: _reconciler_fault(h, size, Path(tmp), at),
            "roster-change": lambda h: faults.roster_move(roster, roster.students[0], list(roster.members)[1], at),
        }
        fault = make[name](hubs)
        run = checked_run(hubs.coursehub, "coursehub", roster, size, fault, _final_roster(hubs, name, roster))
        found, lost = run.surge, run.summary
        cache = faults.cache_seconds(hubs.coursehub.plan.values)
    return _describe(name, found, lost, cache, hubs)


def _reconciler_fault(hubs: Hubs, size: Size, root: Path, at: float) -> faults.Fault:
    more = Roster(
        {
            f"next-{g:03d}": [f"n-{g * size.per_group + i:04d}" for i in range(size.per_group)]
            for g in range(size.groups // 2)
        }
    )
    hubs.extra["more"] = more
    values = redeployed(hubs, hubs.roster.with_groups(more), root)
    return faults.reconciler_kill(values, changes=max(2, len(more.members) // 3), at=at)


def _final_roster(hubs: Hubs, name: str, roster: Roster) -> Roster:
    """The memberships the hub must hold after the fault: the deploy's, or the move's."""
    if name == "reconciler-kill":
        return roster.with_groups(hubs.extra["more"])
    if name == "roster-change":
        return roster.moved(roster.students[0], list(roster.members)[1])
    return roster


def _describe(name: str, found: Surge, lost: str, cache: float, hubs: Hubs) -> str:
    f = found.fault
    students = f"{len(found.students)} students"
    if name == "hub-restart":
        ok, failed = _window_requests(found, f["down"], f["serving"])
        window = (f["down"], f["serving"] + max(cache, SETTLE))
        slowest = max((x["elapsed"] for x in found.failures if window[0] <= x["t"] <= window[1]), default=0)
        after = found.errors(between=window)
        return (
            f"fault hub restart ({students}): no log-ins for {_gap(found.logins, f['down']):.1f} s (hub serving "
            f"again after {f['serving'] - f['down']:.1f} s, reconciled after {f['in_step'] - f['down']:.1f} s); "
            f"servers kept {f['kept']}/{f['running']}; server requests through the proxy meanwhile {ok} answered, "
            f"{failed} failed (the slowest failure {slowest:.2f} s); errors {SETTLE:.0f} s after it {after}; {lost}"
        )
    if name == "proxy-restart":
        back = f["all_back"]
        ok, failed = _window_requests(found, f["killed"], back or found.ended)
        after = found.errors(between=(f["killed"], (back or found.ended) + SETTLE))
        seconds = f"{back - f['killed']:.1f} s" if back else f"not within the cap ({f['answered']}/{f['running']})"
        return (
            f"fault proxy killed and restarted ({students}): every group's server answers again after {seconds} "
            f"({f['running']} servers; the hub restores routes every JupyterHub.last_activity_interval, 60 s as z2jh "
            f"sets it: lower it to shorten this); server requests meanwhile {ok} answered, {failed} failed; "
            f"errors {SETTLE:.0f} s after it {after}; {lost}"
        )
    if name == "reconciler-kill":
        more = hubs.extra.get("more")
        if f.get("killed") is None:
            return f"fault reconciler killed half-way: NOT INJECTED (the sync ended before it could be killed); {lost}"
        same = "yes" if f["left_to_do"] == 0 else f"NO ({f['left_to_do']} changes left)"
        after = found.errors(between=(f["deployed"], f["in_step"] + SETTLE))
        return (
            f"fault reconciler killed half-way ({students}; a deploy adding {len(more.members)} groups): killed after "
            f"{f['changes_before_kill']} changes, restarted by JupyterHub after {f['noticed'] - f['killed']:.1f} s, "
            f"in step {f['in_step'] - f['killed']:.1f} s after the kill; groups and members as an uninterrupted run "
            f"(nothing left to do): {same}; errors outside the deploy {after}; {lost}"
        )
    moved = hubs.roster.students[0]
    start = f["start_refused"] - f["synced_from"] if f["start_refused"] else None
    use = f["use_refused"] - f["synced_from"] if f["use_refused"] else None
    met = start is not None and use is not None and start <= ENFORCE_START and use <= ENFORCE_SERVER
    # the old group's other members: the sync stops the group's server when the group loses a member (the server's
    # own token goes with it; docs/topics/semester.md) and starts it again for them: refused meanwhile, then back
    old_group = hubs.roster.members[hubs.roster.group_of(moved)]
    others = [s for s in old_group if s != moved]
    interrupted = _interruptions(found, others, f["synced_from"])
    elsewhere = {x["student"] for x in found.failures if x["t"] >= f["synced_from"]} - set(old_group)
    worst = max(interrupted.values(), default=0.0)
    restarted = f.get("start-server")
    back = all(any(e["at"] >= f["synced_from"] for e in found.students[s]["entries"]) for s in interrupted)
    kept = restarted is not None and back and not elsewhere
    if not f.get("used_before"):
        return (
            f"fault roster change: NOT MEASURED (the moved student's own browser never got into the old server); {lost}"
        )
    again = (
        f"started again {restarted - f['synced_from']:.1f} s after the sync began" if restarted else "NOT started again"
    )
    return (
        f"fault roster change ({students}; one student moved by make sync-groups' code): old account's start "
        f"refused after {_s(start)}, its server refused after {_s(use)} (goal: start {ENFORCE_START:.0f} s, server "
        f"{ENFORCE_SERVER:.0f} s: {'met' if met else 'MISSED'}); nobody else lost "
        f"access: {'met' if kept else 'MISSED'} (the old group's server stopped by the sync, its token with it, and "
        f"{again}: {len(interrupted)} of its {len(others)} other members refused meanwhile, each back within "
        f"{worst:.1f} s; students of other groups refused {len(elsewhere)}); {lost}"
    )


def _interruptions(found: Surge, students: list[str], after: float) -> dict[str, float]:
    """For each of `students` refused after `after`: the seconds from their first refusal to their next way in."""
    gone: dict[str, float] = {}
    for student in students:
        first = min((x["t"] for x in found.failures if x["student"] == student and x["t"] >= after), default=None)
        if first is None:
            continue
        back = min((e["at"] for e in found.students[student]["entries"] if e["at"] >= first), default=found.ended)
        gone[student] = back - first
    return gone


def _s(seconds: float | None) -> str:
    return f"{seconds:.1f} s" if seconds is not None else "never"


def bench_surge(
    course: Course, size: Size, lab: Size | None, only: tuple[str, ...] = RUNS, cache: bool | int = True
) -> Iterator[str]:
    """The lines of `make bench-surge`, in order, each as soon as its run is done."""
    if "surge" in only:
        yield surge_line(course, size, "light", cache=cache)
    if "lab" in only and lab is not None:
        yield surge_line(course, lab, "lab")
    fault_size = Size(size.groups, size.per_group, size.ramp, min(size.rhythm, 90.0), size.max_requests)
    for name in FAULTS:
        if name in only:
            yield fault_line(course, fault_size, name)
