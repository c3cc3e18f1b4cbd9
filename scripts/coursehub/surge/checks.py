"""'Nothing lost', checked after a surge: every group's account server running, each member's notebook on disk
as last saved, the hub's memberships equal to the declaration; and, once the hub is stopped, no process left."""

from __future__ import annotations

import json
import re
from pathlib import Path

import requests

from coursehub.hub.local import LocalHub, leftovers, processes
from coursehub.surge.hubs import LIGHT_SERVER, Roster
from coursehub.surge.run import Surge


def admin(hub: LocalHub) -> dict[str, str]:
    return {"Authorization": f"token {hub.plan.admin_token}"}


def running_servers(hub: LocalHub, accounts: list[str]) -> dict[str, int]:
    """{account: its server's process id} for the accounts whose server is running and ready."""
    found = {}
    for account in accounts:
        r = requests.get(f"{hub.plan.url}/hub/api/users/{account}", headers=admin(hub), timeout=30)
        if r.status_code != 200:
            continue
        server = r.json().get("servers", {}).get("", {})
        if server.get("ready"):
            found[account] = int((server.get("state") or {}).get("pid") or 0)
    return found


def hub_members(hub: LocalHub) -> dict[str, set[str]]:
    r = requests.get(f"{hub.plan.url}/hub/api/groups?limit=1000", headers=admin(hub), timeout=60)
    r.raise_for_status()
    return {g["name"]: set(g.get("users") or ()) for g in r.json()}


def nothing_lost(hub: LocalHub, roster: Roster, surge: Surge, running: list[str] | None = None) -> list[str]:
    """What was lost, one line each (empty: nothing). `running`: the accounts whose servers must be running (by
    default every account of the roster); the memberships are checked for every group of the roster."""
    lost = []
    accounts = running if running is not None else list(roster.accounts.values())
    up = running_servers(hub, accounts)
    lost += [f"{account}'s server is not running" for account in accounts if account not in up]
    members = hub_members(hub)
    for group, want in roster.members.items():
        if members.get(group) != set(want):
            lost.append(f"group {group}: members differ from the declaration")
    home = Path(hub.plan.workdir) / "home"
    for student, record in surge.students.items():
        saved = record.get("saved")
        if not saved:
            lost.append(f"{student} never saved a notebook")
            continue
        notebook = home / saved["account"] / saved["path"]
        try:
            source = json.loads(notebook.read_text())["cells"][0]["source"]
        except (OSError, ValueError, KeyError, IndexError):
            lost.append(f"{student}'s notebook in {saved['account']} is missing or not a notebook")
            continue
        version = re.fullmatch(rf"# {re.escape(student)} (\d+)", "".join(source))
        if version is None or int(version.group(1)) < int(saved["version"]):
            lost.append(f"{student}'s notebook in {saved['account']} is older than their last save")
    return lost


def left_running(hub: LocalHub) -> list[int]:
    """After the hub's stop: processes still running from it (servers, services, the proxy, locust)."""
    workdir = str(hub.plan.workdir)
    found = set(leftovers(Path(workdir)))
    for pid, _, cmdline in processes():
        if (str(LIGHT_SERVER) in cmdline and workdir in cmdline) or (
            "locust" in cmdline and str(hub.plan.port) in cmdline
        ):
            found.add(pid)
    for proc in (hub.process, hub.proxy):
        if proc is not None and proc.poll() is None:
            found.add(proc.pid)
    return sorted(found)


def summary(problems: list[str], left: list[int]) -> str:
    if not problems and not left:
        return "nothing lost: yes"
    said = problems[:3] + ([f"{len(problems) - 3} more"] if len(problems) > 3 else [])
    if left:
        said.append(f"{len(left)} process(es) left running")
    return "nothing lost: NO (" + "; ".join(said) + ")"
