"""Faults injected in the middle of a surge, each at its moment, each returning what it measured.

A fault is a function ``(hub, began) -> dict`` that ``run.surge`` runs in the runner's process while locust runs:
it waits until ``at`` seconds after the surge began, breaks something as it breaks in the field, and measures
the way back. Times are wall-clock (``time.time()``), as the students' records are.
"""

from __future__ import annotations

import html
import os
import re
import signal
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import requests

from coursehub.bench import _alive
from coursehub.groups import hubpython, sync
from coursehub.hub.local import LocalHub, processes
from coursehub.surge.checks import running_servers
from coursehub.surge.hubs import Roster

Fault = Callable[[LocalHub, float], dict[str, Any]]
RECONCILER_MODULE = "coursehub_hub.reconcile"
# the reconciler's log lines for a change it made (Change.describe without names), and the hub's when it dies
CHANGE_LINE = re.compile(rb"coursehub-reconciler\] (?:create-|add-members|remove-members|drop-group|share|unshare)")
SERVICE_EXITED = "Service coursehub-reconciler exited"


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def hub_restart(accounts: list[str], at: float) -> Fault:
    """The hub stopped and started again, as a deploy does (the proxy and the servers stay up)."""

    def fault(hub: LocalHub, began: float) -> dict[str, Any]:
        _sleep_until(began + at)
        # in the middle of the surge: once group servers run (on a loaded machine the first may come late)
        deadline = time.time() + 120
        while not (before := running_servers(hub, accounts)) and time.time() < deadline:
            time.sleep(0.5)
        down = time.time()
        hub.restart(timeout=600, reconciled=False)
        serving = time.time()
        hub.wait_for_log(hubpython.reconciler().IN_STEP, hub.started_at, timeout=600)
        after = running_servers(hub, accounts)
        kept = [a for a, pid in before.items() if after.get(a) == pid and pid and _alive(pid)]
        return {"down": down, "serving": serving, "in_step": time.time(), "running": len(before), "kept": len(kept)}

    return fault


def proxy_restart(accounts: list[str], at: float, cap: float = 300) -> Fault:
    """configurable-http-proxy killed (SIGKILL, as a crashed or evicted proxy pod) and started again empty; the
    hub puts the routes back. Measures until every running group server answers through the proxy again."""

    def fault(hub: LocalHub, began: float) -> dict[str, Any]:
        _sleep_until(began + at)
        running = list(running_servers(hub, accounts))
        assert hub.proxy is not None
        killed = time.time()
        hub.proxy.kill()
        hub.proxy.wait()
        hub._start_proxy()  # LocalHub's own command line for its proxy, as its start runs it
        proxy_api = f"http://127.0.0.1:{hub.plan.proxy_api_port}/api/routes"
        while True:
            request = urllib.request.Request(proxy_api, headers={"Authorization": f"token {hub.plan.proxy_token}"})
            try:
                urllib.request.urlopen(request, timeout=2).read()
                break
            except OSError:
                time.sleep(0.05)
        proxy_up = time.time()
        answered: dict[str, float] = {}
        while len(answered) < len(running) and time.time() - killed < cap:
            for account in running:
                if account in answered:
                    continue
                r = requests.get(f"{hub.plan.url}/user/{account}/api", allow_redirects=False, timeout=10)
                if r.status_code == 200 and r.headers.get("Content-Type", "").startswith("application/json"):
                    answered[account] = time.time()
            time.sleep(0.5)
        return {
            "killed": killed,
            "proxy_up": proxy_up,
            "running": len(running),
            "answered": len(answered),
            "all_back": max(answered.values()) if len(answered) == len(running) and answered else None,
            "first_back": min(answered.values()) if answered else None,
        }

    return fault


def reconciler_kill(values: dict[str, Any], changes: int, at: float) -> Fault:
    """A deploy that brings more groups (the hub restarts with `values`); its reconciler is killed (SIGKILL) once
    it has logged `changes` of its changes, half-way through its sync. JupyterHub starts it again."""

    def fault(hub: LocalHub, began: float) -> dict[str, Any]:
        _sleep_until(began + at)
        hub.plan.values = values
        deployed = time.time()
        hub.restart(timeout=600, reconciled=False)
        offset = hub.started_at
        found: dict[str, Any] = {"deployed": deployed, "killed": None}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and found["killed"] is None:
            with open(hub.log, "rb") as log:
                log.seek(offset)
                text = log.read()
            if hubpython.reconciler().IN_STEP.encode() in text:
                break  # done before it could be killed: the fault did not happen
            if len(CHANGE_LINE.findall(text)) >= changes:
                for pid, parent, cmdline in processes():
                    if hub.process is not None and parent == hub.process.pid and RECONCILER_MODULE in cmdline:
                        os.kill(pid, signal.SIGKILL)
                        found["killed"] = time.time()
                        found["changes_before_kill"] = len(CHANGE_LINE.findall(text))
            time.sleep(0.01)
        if found["killed"] is None:
            return found
        after = hub.log.stat().st_size
        hub.wait_for_log(SERVICE_EXITED, offset, timeout=300)
        found["noticed"] = time.time()
        hub.wait_for_log(hubpython.reconciler().IN_STEP, after, timeout=300)
        found["in_step"] = time.time()
        # an uninterrupted run ends with the declaration in place: the same plan now has nothing left to do
        api = sync.hub_api(hub.plan.url, str(hub.plan.admin_token))
        left = hubpython.reconciler().plan(values["custom"]["coursehub"], api)
        found["left_to_do"] = len(left.changes) + len(left.conflicts) + (0 if left.empty else 1)
        return found

    return fault


class Witness:
    """The runner's own browser for one student: logged in, through the server's OAuth, as the student's is."""

    def __init__(self, hub: LocalHub, student: str, account: str) -> None:
        self.url, self.account = hub.plan.url, account
        self.session = requests.Session()
        self.session.get(f"{self.url}/hub/login")
        self.session.post(
            f"{self.url}/hub/login",
            data={"username": student, "password": hub.plan.password, "_xsrf": self.session.cookies.get("_xsrf")},
            allow_redirects=False,
        )
        self.open()

    def open(self) -> None:
        """The account's server page, through its OAuth log-in (and the consent page, once)."""
        page = self.session.get(f"{self.url}/user/{self.account}/lab")
        if "/hub/api/oauth2/authorize" in page.url and page.status_code == 200:
            fields = re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text)
            self.session.post(page.url, data=[(k, html.unescape(v)) for k, v in fields])

    def let_in(self, timeout: float = 120) -> bool:
        """Start the account's server if it is not running (as a member does), open it; True once it lets in."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.uses():
                return True
            self.start_refused()  # a member's start request starts a stopped server (400 when already running)
            self.open()
            time.sleep(0.5)
        return False

    def start_refused(self) -> bool:
        xsrf = self.session.cookies.get("_xsrf", path="/hub/") or ""
        r = self.session.post(f"{self.url}/hub/api/users/{self.account}/server", headers={"X-XSRFToken": xsrf})
        return r.status_code in (403, 404)

    def _contents(self) -> int:
        """The status of the account server's contents listing, as JupyterLab asks for it."""
        xsrf = self.session.cookies.get("_xsrf", path=f"/user/{self.account}/") or ""
        return self.session.get(
            f"{self.url}/user/{self.account}/api/contents",
            headers={"X-XSRFToken": xsrf, "Sec-Fetch-Mode": "cors"},
            allow_redirects=False,
        ).status_code

    def use_refused(self) -> bool:
        return self._contents() == 403

    def uses(self) -> bool:
        """The server answers the student (and the hub would let them start it: 400, already running)."""
        return self._contents() == 200 and not self.start_refused()


def roster_move(roster: Roster, student: str, to: str, at: float, cap: float = 60) -> Fault:
    """One student moved to another group mid-surge, applied as `make sync-groups` applies it (the same
    reconciler code, from outside, with the operator's token); measured with the student's own browser."""

    def fault(hub: LocalHub, began: float) -> dict[str, Any]:
        _sleep_until(began + at)
        old = roster.accounts[roster.group_of(student)]
        witness = Witness(hub, student, old)
        found: dict[str, Any] = {"used_before": witness.let_in()}
        declaration = dict(hub.plan.values["custom"]["coursehub"])
        declaration["members"] = roster.moved(student, to).members
        api = sync.hub_api(hub.plan.url, str(hub.plan.admin_token))
        reconciler = hubpython.reconciler()
        found["synced_from"] = time.time()
        # when the sync stopped the old group's server, and started it again for the members who stay
        reconciler.apply(reconciler.plan(declaration, api), api, lambda c: found.setdefault(c.action, time.time()))
        found["synced"] = time.time()
        found["start_refused"] = found["use_refused"] = None
        while time.time() - found["synced_from"] < cap and None in (found["start_refused"], found["use_refused"]):
            if found["start_refused"] is None and witness.start_refused():
                found["start_refused"] = time.time()
            if found["use_refused"] is None and witness.use_refused():
                found["use_refused"] = time.time()
            time.sleep(0.1)
        return found

    return fault


def cache_seconds(values: dict[str, Any]) -> float:
    """The servers' HubAuth.cache_max_age in a hub's chart values (JupyterHub's default, 300 s, without one)."""
    for arg in (values.get("singleuser") or {}).get("cmd") or ():
        if str(arg).startswith("--HubAuth.cache_max_age="):
            return float(str(arg).partition("=")[2])
    return 300.0
