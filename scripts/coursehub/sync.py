"""`make sync-groups`: bring a running hub's groups, shared accounts and memberships to the course's roster.

Through JupyterHub's REST API, with a token from $JUPYTERHUB_API_TOKEN (never
the command line). It only touches groups it owns: those with the group
property `coursehub.course` set to this course (the hub-side Python marks the
groups it loads; this module marks the groups it creates). A group of the same
name that coursehub does not own is reported and left alone.

Changes are computed afresh on every run, so a second run changes nothing and
a run that failed part-way can simply be run again. Membership changes apply
at once, with no restart. A new group's account and group are created here too,
but its role (start, stop and use the account's server) can only come from the
hub's config at start-up: JupyterHub has no REST API for roles. See the README.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from coursehub import hubpython
from coursehub.courses import Course, get
from coursehub.errors import CoursehubError, Problem

TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
# What each member gets on the account's server with access "shares" (JupyterHub adds the !server= filter).
# Shares go to each student, not to the group: JupyterHub 5.5 counts a group's shares for the user's own
# session but not for the OAuth tokens a server checks, so a group share would start the server and then
# refuse to open it.
SHARE_SCOPES = ("access:servers", "servers", "read:servers")


@dataclass(frozen=True)
class Change:
    action: str  # create-users | create-account | create-group | add-members | remove-members | share | unshare
    target: str
    users: tuple[str, ...] = ()

    def __str__(self) -> str:
        who = f": {', '.join(self.users)}" if self.users else ""
        return f"{self.action} {self.target}{who}"


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)  # new groups: their role comes with the next start


class Hub:
    """The few REST calls sync needs, with the operator's token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/") + "/hub/api"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.session.request(method, self.url + path, timeout=60, **kwargs)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {r.status_code} {r.text[:200]}")
        return r.json() if r.content else None

    def paginated(self, path: str) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self._call(
                "GET", f"{path}?offset={offset}&limit=200", headers={"Accept": "application/jupyterhub-pagination+json"}
            )
            items = page["items"] if isinstance(page, dict) else page
            yield from items
            nxt = page.get("_pagination", {}).get("next") if isinstance(page, dict) else None
            if not nxt:
                return
            offset = nxt["offset"]

    def shared_with(self, account: str) -> set[str]:
        """Students the account's default server is shared with (every share scope granted)."""
        shares = self.paginated(f"/shares/{quote(account, safe='')}/")
        want = {f"{s}!server={account}/" for s in SHARE_SCOPES}
        return {s["user"]["name"] for s in shares if s.get("user") and want <= set(s.get("scopes") or ())}

    def groups(self) -> dict[str, dict[str, Any]]:
        return {g["name"]: g for g in self.paginated("/groups")}

    def users(self) -> set[str]:
        return {u["name"] for u in self.paginated("/users")}

    def apply(self, change: Change, course: str) -> None:
        group = quote(change.target, safe="")
        if change.action == "create-users":  # students named in the roster who have not logged in yet
            self._call("POST", "/users", json={"usernames": list(change.users)})
        elif change.action == "create-account":
            self._call("POST", f"/users/{quote(change.target, safe='')}")
        elif change.action == "create-group":
            self._call("POST", f"/groups/{group}", json={"users": list(change.users)})
            self._call("PUT", f"/groups/{group}/properties", json={hubpython.load().OWNER: course})
        elif change.action == "add-members":
            self._call("POST", f"/groups/{group}/users", json={"users": list(change.users)})
        elif change.action == "remove-members":
            self._call("DELETE", f"/groups/{group}/users", json={"users": list(change.users)})
        elif change.action == "share":  # access "shares": these students may start, stop and use the server
            account = quote(change.target, safe="")
            for user in change.users:
                self._call("POST", f"/shares/{account}/", json={"user": user, "scopes": list(SHARE_SCOPES)})
        elif change.action == "unshare":
            account = quote(change.target, safe="")
            for user in change.users:
                self._call("DELETE", f"/users/{quote(user, safe='')}/shared/{account}/")
        else:
            raise AssertionError(change.action)


def plan(course: Course, hub: Hub) -> Plan:
    """What it takes to bring the hub to the course's declaration."""
    declaration = get(course.values(), ("jupyterhub", "custom", "coursehub")) or {}
    module = hubpython.load()
    try:
        accounts = module.parse(declaration)
    except module.DeclarationError as e:
        raise CoursehubError(
            Problem(course.origin(("jupyterhub",)), f"jupyterhub.custom.coursehub.{e.key}", e.problem, e.fix)
        ) from None
    groups, users, owner = hub.groups(), hub.users(), module.OWNER
    result = Plan()
    new_students = sorted({m for a in accounts for m in a.members} - users)
    if new_students:  # students in the roster who have not logged in yet
        result.changes.append(Change("create-users", f"({len(new_students)} students)", tuple(new_students)))
    creations: list[Change] = []  # after the membership changes, which matter most to students
    shares = declaration.get("access") == "shares"
    shared_now: dict[str, set[str]] = {}
    if shares:  # one request per account: run them side by side
        existing_accounts = [a.account for a in accounts if a.account in users]
        with ThreadPoolExecutor(max_workers=8) as pool:
            shared_now = dict(zip(existing_accounts, pool.map(hub.shared_with, existing_accounts), strict=True))
    for account in accounts:
        existing = groups.get(account.group)
        if existing is not None and (existing.get("properties") or {}).get(owner) != course.name:
            result.conflicts.append(
                f"group {account.group} exists on the hub but coursehub does not own it "
                f"(no {owner}={course.name} property): left alone"
            )
            continue
        if account.account not in users:
            creations.append(Change("create-account", account.account))
        if existing is None:
            creations.append(Change("create-group", account.group, account.members))
            if not shares:
                result.needs_restart.append(account.group)
        else:
            have, want = set(existing.get("users") or ()), set(account.members)
            if want - have:
                result.changes.append(Change("add-members", account.group, tuple(sorted(want - have))))
            if have - want:
                result.changes.append(Change("remove-members", account.group, tuple(sorted(have - want))))
        if shares:
            shared = shared_now.get(account.account, set())
            if set(account.members) - shared:
                creations.append(Change("share", account.account, tuple(sorted(set(account.members) - shared))))
            if shared - set(account.members):
                result.changes.append(Change("unshare", account.account, tuple(sorted(shared - set(account.members)))))
    result.changes += creations
    return result


def sync(course: Course, url: str, dry_run: bool, out: Any) -> int:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise CoursehubError(
            Problem(
                TOKEN_ENV,
                "",
                "is not set",
                "export a token with admin:users and admin:groups "
                "scopes in $JUPYTERHUB_API_TOKEN (never on the command line)",
            )
        )
    hub = Hub(url, token)
    result = plan(course, hub)
    for conflict in result.conflicts:
        print(f"conflict: {conflict}", file=out)
    for change in result.changes:
        print(("would " if dry_run else "") + str(change), file=out)
    if not result.changes:
        print(f"{course.name}: the hub already matches the roster; nothing to change", file=out)
    if dry_run or not result.changes:
        return 1 if result.conflicts else 0
    applied: list[Change] = []
    for change in result.changes:
        try:
            hub.apply(change, course.name)
        except (RuntimeError, requests.RequestException) as e:
            remaining = result.changes[len(applied) :]
            print(f"error: {change} failed: {e}", file=out)
            print(
                f"applied {len(applied)} of {len(result.changes)} changes; not applied: "
                + "; ".join(map(str, remaining))
                + ". Run the same command again to finish.",
                file=out,
            )
            return 1
        applied.append(change)
        print(f"done: {change}", file=out)
    if result.needs_restart:
        print(
            f"new groups {', '.join(result.needs_restart)}: members are in, but their role (start, stop and use the "
            "account's server) loads only when the hub starts: run `make deploy` to restart it",
            file=out,
        )
    return 1 if result.conflicts else 0
