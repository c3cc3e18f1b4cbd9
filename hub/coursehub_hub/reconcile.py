"""coursehub's reconciler: brings a hub's groups, members, shared accounts and shares to the declaration.

The declaration (``custom.coursehub``) is the desired state. One reconciler
brings the hub to it, additions and removals alike:

- inside the hub, as the JupyterHub-managed service ``coursehub-reconciler``
  that ``coursehub_hub.config`` registers with a role holding only the scopes
  it needs: once at every hub start (``--in-hub``). It reads the declaration
  where z2jh keeps it, the chart values in Secret/hub;
- from outside, as ``make sync-groups`` (``scripts/coursehub/groups/sync.py``
  imports this module) with an operator's token against a remote hub.

What coursehub owns on a hub is recorded in one ledger group per course
(``coursehub:<course>``, its properties: ``{group: account}`` and every
account coursehub ever made; its members: the course's accounts when only
they have RTC, ``rtc: sharedAccounts``). A name is written into the ledger
before the thing is created, so a run that fails half-way leaves things the
next run recognises as its own and finishes. Anything not in the ledger is never
touched, and a declared name that already exists on the hub without being
coursehub's is a collision: refused, with the name and the fix.

Runs on the hub image alone: standard library, plus PyYAML (which z2jh's own
hub configuration uses) to read the values file.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coursehub_hub import canvas, lms
from coursehub_hub import config as rules  # the declaration's rules
from coursehub_hub.names import batches

BATCH = 200  # names per request: bounded, whatever the course size
PAGE = rules.PAGE  # a hub whose api_page_max_limit is lower returns smaller pages, and pagination goes on
# What the group gets on its account's server with access "shares" (JupyterHub adds the !server= filter).
# One share per account, with its group: membership alone then decides who may use it. JupyterHub 5 counts a
# group's shares for a member's session only; the hub-side config makes tokens count them too
# (coursehub_hub.patches.count_group_shares_in_tokens), as the OAuth token a server checks must.
SHARE_SCOPES = ("access:servers", "servers", "read:servers")
GROUP_MARK = "group:"  # the ledger's record of an account shared with its group: GROUP_MARK + group
IN_STEP = "in step with the declaration of"  # logged after every in-hub run (the local hub waits for it)
WATCH_SAW = "lost a member outside a run"  # logged by the membership watch when it acts (tests wait for it)
STOPPED = "the hub stops this service"  # logged with the signal that stopped it
RESTART_WAIT = 120.0  # seconds a run waits for the servers it stopped to be gone before starting them again

log = logging.getLogger("coursehub-reconciler")


class HubError(RuntimeError):
    """A request the reconciler could not make: one line, saying what to check."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect becomes an HTTPError we explain, never a loop


class HubAPI:
    """JupyterHub's REST API with a token: bounded retries with backoff on 5xx, 429 and timeouts."""

    def __init__(
        self,
        api_url: str,
        token: str,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.5,
    ) -> None:
        self.url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.requests = 0  # every HTTP request made, retries included (the benchmark counts them)
        self.opener = urllib.request.build_opener(_NoRedirects(), urllib.request.HTTPSHandler())

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (), accept: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"token {self.token}", "Content-Type": "application/json"}
        if accept:
            headers["Accept"] = accept
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 2))
            self.requests += 1
            request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
            try:
                with self.opener.open(request, timeout=self.timeout) as response:
                    raw = response.read()
                return json.loads(raw) if raw else None
            except urllib.error.HTTPError as e:
                if e.code in ok:
                    return None
                if 300 <= e.code < 400:
                    raise HubError(
                        f"{method} {path}: the hub answered with a redirect ({e.code} to {e.headers.get('Location')}): "
                        "give the hub's own URL (https://<host>, without /hub)"
                    ) from None
                detail = _message(e)
                if e.code < 500 and e.code != 429:
                    raise HubError(f"{method} {path}: HTTP {e.code} {detail}".rstrip()) from None
                last = f"HTTP {e.code} {detail}".rstrip()
            except urllib.error.URLError as e:
                if isinstance(e.reason, ssl.SSLError):
                    raise HubError(f"{method} {path}: TLS failed ({e.reason}): check the hub's certificate") from None
                last = f"cannot reach the hub ({e.reason})"
            except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
                last = f"no answer ({type(e).__name__}: {e})"
        raise HubError(f"{method} {path}: {last}; gave up after {self.retries + 1} tries")

    def pages(self, path: str) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            sep = "&" if "?" in path else "?"
            page = self.call(
                "GET", f"{path}{sep}offset={offset}&limit={PAGE}", accept="application/jupyterhub-pagination+json"
            )
            items = page["items"] if isinstance(page, dict) else page
            yield from items
            nxt = (page.get("_pagination") or {}).get("next") if isinstance(page, dict) else None
            if not nxt or not items:
                return
            offset = nxt["offset"]


def _message(e: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(e.read() or b"{}").get("message") or "")[:200]
    except (ValueError, AttributeError, OSError):
        return ""


def _q(name: str) -> str:
    return quote(name, safe="")


@dataclass(frozen=True)
class Change:
    # create-accounts | create-users | create-group | add-members | remove-members | drop-group | stop-server | share
    # | unshare-all; and start-server, reported only (apply starts a stopped server again: see start_again)
    action: str
    target: str
    users: tuple[str, ...] = ()
    group: str = ""  # share: the group the target account's server is shared with

    def describe(self, names: bool) -> str:
        """With names for the operator's terminal; with counts only for the hub's log (membership is private)."""
        if self.group:
            return f"{self.action} {self.target} with group {self.group}"
        if not self.users:
            return f"{self.action} {self.target}"
        who = ", ".join(self.users) if names else f"{len(self.users)} user(s)"
        return f"{self.action} {self.target}: {who}"


@dataclass
class Ledger:
    """What coursehub owns on the hub for one course (the ledger group's properties)."""

    groups: dict[str, str] = field(default_factory=dict)  # group -> account
    accounts: set[str] = field(default_factory=set)  # every account coursehub made, kept after its group goes
    # account -> GROUP_MARK + the group its server is shared with (older ledgers: a digest of per-student shares)
    shared: dict[str, str] = field(default_factory=dict)
    # False from the moment a run records new names until it has made them all: the next run then makes sure
    # every account exists, instead of trusting that what the ledger names was created.
    complete: bool = True
    # Groups from Canvas (coursehub_hub.lms): members the last sync found in no Canvas group, kept until the next
    absent: set[str] = field(default_factory=set)
    # ... and [time, members taken out of a group] of the syncs of the last day, for the mass-removal hold
    losses: list[list[float]] = field(default_factory=list)
    # accounts whose servers a run is to stop (recorded before it changes anything): a run that fails after taking
    # a member out and before the stop leaves them here, and the next run stops them
    stops: set[str] = field(default_factory=set)
    # the course's staff, as digests (never names): a TA taken off it could have read any account server's token
    staff: set[str] = field(default_factory=set)
    # group -> "<digest of the members the last run with removals left it with>/<that run's id>", recorded before
    # the removals: the membership watch tells a run's removals, whose servers the run restarts itself, from anyone
    # else's (each record once: a group that comes back to those members later is not the run's doing)
    left: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, properties: Mapping[str, Any] | None) -> Ledger:
        p = properties or {}
        return cls(
            dict(p.get("groups") or {}),
            set(p.get("accounts") or ()),
            dict(p.get("shared") or {}),
            bool(p.get("complete", True)),
            set(p.get("absent") or ()),
            [list(x) for x in p.get("losses") or () if isinstance(x, list) and len(x) == 2],
            set(p.get("stops") or ()),
            set(p.get("staff") or ()),
            {g: r for g, r in dict(p.get("left") or {}).items() if isinstance(g, str) and isinstance(r, str)},
        )

    def properties(self, course: str) -> dict[str, Any]:
        return {
            rules.OWNER: course,
            "groups": dict(sorted(self.groups.items())),
            "accounts": sorted(self.accounts),
            "shared": dict(sorted(self.shared.items())),
            "complete": self.complete,
            **({"absent": sorted(self.absent)} if self.absent else {}),
            **({"losses": self.losses} if self.losses else {}),
            **({"stops": sorted(self.stops)} if self.stops else {}),
            **({"staff": sorted(self.staff)} if self.staff else {}),
            **({"left": dict(sorted(self.left.items()))} if self.left else {}),
        }


@dataclass
class Plan:
    course: str
    changes: list[Change] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)  # access roles: new groups, whose role loads at start
    before: Ledger = field(default_factory=Ledger)  # the ledger as found
    after: Ledger = field(default_factory=Ledger)  # the ledger once every change is applied
    ledger_exists: bool = True
    ensure: list[str] = field(default_factory=list)  # accounts and students to make sure of (created where missing)

    @property
    def intent(self) -> Ledger:
        """What the ledger says while changes are under way: everything that is or is about to be coursehub's.
        Share records change only at the end, once every share is applied."""
        return Ledger(
            {**self.before.groups, **self.after.groups},
            self.before.accounts | self.after.accounts,
            dict(self.before.shared),
            complete=False,
            absent=set(self.before.absent),
            losses=list(self.before.losses),
            stops=self.before.stops | {c.target for c in self.changes if c.action == "stop-server"},
            staff=set(self.before.staff),
            left=dict(self.after.left),
        )

    @property
    def empty(self) -> bool:
        return not self.changes and self.ledger_exists and self.after == self.before


def plan(
    declaration: Mapping[str, Any], api: HubAPI, recheck: bool = False, groups: list[dict[str, Any]] | None = None
) -> Plan:
    """What it takes to bring the hub to the declaration: reads only, changes nothing.

    With access "shares", an account whose ledger record says it is shared with its group is taken at its word;
    `recheck` reads every account's shares instead (one request per account), for a hub where someone deleted a
    share or a group, and made the group again, between two runs. `groups`: the hub's groups as just read
    (GET /groups), when the caller has them."""
    accounts = rules.parse(declaration)
    course = str(declaration.get("course") or "")
    shares = declaration.get("access") == "shares"
    ledger_group = rules.ledger_name(course)

    groups = {g["name"]: g for g in (api.pages("/groups") if groups is None else groups)}
    before = Ledger.read((groups.get(ledger_group) or {}).get("properties"))
    result = Plan(course, before=before, ledger_exists=ledger_group in groups)
    if ledger_group in groups and (groups[ledger_group].get("properties") or {}).get(rules.OWNER) not in (None, course):
        result.conflicts.append(f"group {ledger_group} exists and is not this course's ledger: rename or delete it")
        return result

    # who owns what: the same rule the hub-side config applies to the database at start-up
    owned_groups, recorded = rules.HubNames(
        groups={name: g.get("properties") or {} for name, g in groups.items()},
        with_role={name for name, g in groups.items() if rules.ROLE_PREFIX + name in (g.get("roles") or ())},
    ).owned(course)

    def ours(group: str) -> bool:
        return group in owned_groups

    # the account of a group that is coursehub's but not in the ledger yet (made by the roles at start-up, or
    # by coursehub before the ledger): coursehub's too, though it may not exist yet
    adopted = {a.account for a in accounts if a.group in groups and ours(a.group)} - recorded
    owned_accounts = recorded | adopted
    new_accounts = [a.account for a in accounts if a.account not in owned_accounts]
    users: dict[str, dict[str, Any]] | None = None
    if new_accounts:  # is any new account's name already a hub user's?
        users = {u["name"]: u for u in api.pages("/users")}

    refused: set[str] = set()
    for a in accounts:
        fix = f"rename it in the values (e.g. {rules.account_prefix(declaration)}{a.group}-2) or remove that one"
        if a.group in groups and not ours(a.group):
            result.conflicts.append(f"group {a.group} already exists on the hub and is not coursehub's: {fix}")
            refused.add(a.group)
        elif users is not None and a.account in users and a.account not in owned_accounts:
            result.conflicts.append(
                f"account {a.account} of group {a.group} is an existing hub user that coursehub did not create: {fix}"
            )
            refused.add(a.group)
    usable = [a for a in accounts if a.group not in refused]

    after = Ledger(
        dict(before.groups), set(before.accounts), dict(before.shared), absent=set(before.absent), losses=before.losses
    )
    for a in usable:
        after.groups[a.group] = a.account
        after.accounts.add(a.account)
    dropped = {g: acc for g, acc in before.groups.items() if g not in {a.group for a in accounts}}
    for g in dropped:
        after.groups.pop(g)

    # 1. users. New accounts (the hub's users were listed, so they are known to be missing) and students known
    # to be missing are changes. Students in no group yet, and after a run that stopped half-way the ledger's
    # accounts, are made sure of without a listing: one blind request per BATCH names, answered 409 when they
    # all exist; only what it creates is reported.
    known = {u for g in groups.values() for u in g.get("users") or ()} | set(users or ())
    students = sorted({m for a in usable for m in a.members} - known)
    new = sorted({a.account for a in usable} - owned_accounts)
    changes = result.changes
    changes += [Change("create-accounts", f"({len(batch)} accounts)", batch) for batch in batches(new, BATCH)]
    if users is not None:
        changes += [Change("create-users", f"({len(batch)} students)", batch) for batch in batches(students, BATCH)]
        students = []
    unsure = adopted | (recorded if not before.complete or not result.ledger_exists else set())
    result.ensure = sorted({a.account for a in usable} & unsure - known) + students

    # 2. groups and their members
    for a in usable:
        existing = groups.get(a.group)
        if existing is None:
            changes.append(Change("create-group", a.group, a.members if a.managed else ()))
            if not shares:
                result.needs_restart.append(a.group)
            continue
        if not shares and rules.ROLE_PREFIX + a.group not in (existing.get("roles") or ()):
            result.needs_restart.append(a.group)
        if not a.managed:
            continue  # the admin page's to fill
        have, want = set(existing.get("users") or ()), set(a.members)
        changes += [Change("add-members", a.group, b) for b in batches(sorted(want - have), BATCH)]
        changes += [Change("remove-members", a.group, b) for b in batches(sorted(have - want), BATCH)]
    for group in sorted(dropped):
        if group in groups:
            changes.append(Change("drop-group", group))
    # A student who leaves a group may hold the account server's own token (anyone who runs code there can read
    # it), and it works for as long as the server runs: stop the server (JupyterHub revokes its token with it), after
    # the membership change and before the account leaves the course's ledger group (which the reconciler's scopes
    # of a Canvas course are filtered to). apply starts it again if it was running and its group goes on.
    # A TA taken off the staff could open every account's server: every one is stopped (servers not running
    # answer at once). The ledger keeps the staff as digests, to see who left without keeping names.
    after.staff = {_digest(course, name) for name in declaration.get("staff") or ()}
    staff_left = bool(before.staff - after.staff) or _staff_group(declaration) in _removed_from(
        _staff_members(declaration, groups)
    )  # (a declared TA taken off, or anyone else an admin had put in the staff group)
    losing = {c.target for c in changes if c.action in ("remove-members", "drop-group")}
    accounts_of = {after.groups.get(g) or before.groups.get(g) or "" for g in losing} - {""}
    if staff_left:
        accounts_of |= set(after.groups.values()) | set(before.groups.values())
    # A Canvas course's reconciler reaches an account's server only while the account is in the ledger group
    # (its scopes are filtered to it): the group's additions come first, and an account being stopped leaves it
    # only in a later run, once the stop has succeeded.
    ledger_add, ledger_remove = _ledger_members(declaration, usable, ledger_group, groups)
    changes += ledger_add
    stopped = sorted(accounts_of & (owned_accounts | set(users or ())) | before.stops)
    changes += [Change("stop-server", account) for account in stopped]
    # a dropped group's account, unless a declared group keeps it (a group renamed, its account kept): unshared
    # before it leaves the ledger group too
    for account in sorted(set(dropped.values()) & set(after.shared) - {a.account for a in usable}):
        changes.append(Change("unshare-all", account))
        after.shared.pop(account)
    deferred = set(stopped) if declaration.get("lms") is not None else set()
    for change in ledger_remove:
        kept = tuple(u for u in change.users if u not in deferred)
        if kept:
            changes.append(Change(change.action, change.target, kept))
    staff_group = _staff_group(declaration)
    changes += _staff_members(declaration, groups)

    # 3. shares (access shares): each account's server shared with its group; no shares left behind (dropped
    # groups; a course back on roles; the per-student shares of coursehub before it shared with groups). An
    # account's shares are read only when its ledger record is not its group's (or to recheck): others made by
    # hand are kept.
    for a in usable:
        if not shares:
            if a.account in before.shared:
                changes.append(Change("unshare-all", a.account))
                after.shared.pop(a.account)
            continue
        with_ = [a.group, *([staff_group] if staff_group else [])]
        mark = after.shared[a.account] = GROUP_MARK + ",".join(with_)
        if all(g in groups for g in with_) and before.shared.get(a.account) == mark and not recheck:
            continue  # shared with the group when last applied (JupyterHub deletes a group's shares with it)
        found = _shares(api, a.account) if a.account in (users or {}) or a.account in owned_accounts else []
        if _is_group_share(found, a, with_):
            continue
        if found:
            changes.append(Change("unshare-all", a.account))
        changes += [Change("share", a.account, group=g) for g in with_]
    after.left = _left(course, changes, groups) or dict(before.left)
    result.after = after
    return result


def _ledger_members(
    declaration: Mapping[str, Any], usable: list[rules.SharedAccount], ledger_group: str, groups: Mapping[str, Any]
) -> tuple[list[Change], list[Change]]:
    """With rtc "sharedAccounts", or groups from Canvas, the ledger group's members are the course's shared
    accounts (the hub-side config's Spawner.group_overrides gives RTC to its members' servers; a Canvas course's
    reconciler and staff reach the accounts through it). Otherwise it has none. (additions, removals)."""
    want = {a.account for a in usable} if ledger_group in rules.account_groups(declaration) else set()
    have = set((groups.get(ledger_group) or {}).get("users") or ())
    return [Change("add-members", ledger_group, b) for b in batches(sorted(want - have), BATCH)], [
        Change("remove-members", ledger_group, b) for b in batches(sorted(have - want), BATCH)
    ]


def _removed_from(changes: list[Change]) -> set[str]:
    return {c.target for c in changes if c.action in ("remove-members", "drop-group")}


def _left(course: str, changes: list[Change], groups: Mapping[str, Any]) -> dict[str, str]:
    """The record of each group a run takes members out of, as the run leaves it (``Ledger.left``)."""
    import secrets

    run, out = secrets.token_hex(4), dict[str, str]()
    for group in {c.target for c in changes if c.action == "remove-members"}:
        members = set((groups.get(group) or {}).get("users") or ())
        for c in changes:
            if c.target == group and c.action in ("add-members", "remove-members"):
                members = members | set(c.users) if c.action == "add-members" else members - set(c.users)
        out[group] = f"{members_digest(course, members)}/{run}"
    return out


def members_digest(course: str, members: Iterable[str]) -> str:
    return _digest(course, "\n".join(sorted(members)))


def _digest(course: str, name: str) -> str:
    """A name as the ledger keeps it where it needs only to tell names apart."""
    import hashlib

    return hashlib.sha256(f"coursehub:{course}:{name}".encode()).hexdigest()[:16]


def _staff_group(declaration: Mapping[str, Any]) -> str:
    """The group of the course's TAs when its groups come from Canvas, else "": the TAs' role cannot name accounts
    that do not exist when the hub starts, and a server checks a token's access by server or user, never by group,
    so every account's server is shared with this group too (as with its own group, tokens count the share)."""
    if declaration.get("lms") is None or not declaration.get("staff"):
        return ""
    return rules.staff_group(str(declaration.get("course") or ""))


def _staff_members(declaration: Mapping[str, Any], groups: Mapping[str, Any]) -> list[Change]:
    """The staff group holds exactly the course's staff (and is dropped when a Canvas course has none)."""
    name = _staff_group(declaration) or rules.staff_group(str(declaration.get("course") or ""))
    want = set(declaration.get("staff") or ()) if _staff_group(declaration) else set()
    if name not in groups:
        return [Change("create-group", name, tuple(sorted(want)))] if want else []
    if not want:
        return [Change("drop-group", name)] if declaration.get("lms") is not None else []
    have = set(groups[name].get("users") or ())
    return [Change("add-members", name, b) for b in batches(sorted(want - have), BATCH)] + [
        Change("remove-members", name, b) for b in batches(sorted(have - want), BATCH)
    ]


def _shares(api: HubAPI, account: str) -> list[dict[str, Any]]:
    """The shares of the account's default server (none when it has no server yet)."""
    try:
        return list(api.pages(f"/shares/{_q(account)}"))
    except HubError as e:
        if "HTTP 404" in str(e):  # the account has no server yet
            return []
        raise


def _is_group_share(found: list[dict[str, Any]], a: rules.SharedAccount, with_: list[str] | None = None) -> bool:
    """The account's server is shared with its group (and the staff group, ``with_``), with every share scope, and
    with nobody else."""
    want = {f"{s}!server={a.account}/" for s in SHARE_SCOPES}
    return sorted((share.get("group") or {}).get("name") or "" for share in found) == sorted(
        with_ or [a.group]
    ) and all(want <= set(share.get("scopes") or ()) for share in found)


def apply(result: Plan, api: HubAPI, report: Callable[[Change], None] = lambda change: None) -> None:
    """Make the planned changes in order; raises HubError naming the change that failed.

    The ledger is written before anything else with everything that is or is about to be coursehub's
    (`Plan.intent`), so a failure half-way leaves only things the next run knows to be its own and finishes;
    it is written again at the end with what remains.
    """
    ledger_group = rules.ledger_name(result.course)
    written, fresh = result.before, not result.ledger_exists
    if fresh:
        api.call("POST", f"/groups/{_q(ledger_group)}", {}, ok=(409,))
        result.ledger_exists = True
    intent = result.intent
    written_keys = (written.groups, written.accounts, written.stops, written.left)
    if fresh or (intent.groups, intent.accounts, intent.stops, intent.left) != written_keys:
        # new names, and servers to stop: record them first (membership and share changes alone need no record)
        api.call("PUT", f"/groups/{_q(ledger_group)}/properties", intent.properties(result.course))
        written = intent
    for batch in batches(result.ensure, BATCH):
        created = api.call("POST", "/users", {"usernames": list(batch)}, ok=(409,))
        if created:
            report(Change("create-users", f"({len(created)} users)", tuple(u["name"] for u in created)))
    # the servers stopped while running whose account still has its group: started again at the end
    declared, again = set(result.after.groups.values()), list[str]()
    for change in result.changes:
        if change.action in ("create-accounts", "create-users"):
            api.call("POST", "/users", {"usernames": list(change.users)}, ok=(409,))
        elif change.action == "create-group":
            api.call("POST", f"/groups/{_q(change.target)}", {"users": list(change.users)})
        elif change.action == "add-members":
            api.call("POST", f"/groups/{_q(change.target)}/users", {"users": list(change.users)})
        elif change.action == "remove-members":
            api.call("DELETE", f"/groups/{_q(change.target)}/users", {"users": list(change.users)})
        elif change.action == "drop-group":
            api.call("DELETE", f"/groups/{_q(change.target)}", ok=(404,))
        elif change.action == "share":
            api.call("POST", f"/shares/{_q(change.target)}/", {"group": change.group, "scopes": list(SHARE_SCOPES)})
        elif change.action == "unshare-all":
            api.call("DELETE", f"/shares/{_q(change.target)}/", ok=(404,))
        elif change.action == "stop-server":
            if stop_server(api, change.target) and change.target in declared:
                again.append(change.target)
        else:
            raise AssertionError(change.action)
        report(change)
    if result.after != written:
        api.call("PUT", f"/groups/{_q(ledger_group)}/properties", result.after.properties(result.course))
    start_again(api, again, report)


def stop_server(api: HubAPI, account: str) -> bool:
    """Stop the account's default server (JupyterHub revokes the server's token with it); True if it was running."""
    found = api.call("GET", f"/users/{_q(account)}", ok=(404,))
    server = ((found or {}).get("servers") or {}).get("")
    try:
        api.call("DELETE", f"/users/{_q(account)}/server")  # 204 when not running, 202 while stopping
    except HubError as e:  # 404: no such account any more (nothing to stop), or no scope on it (an error)
        if "HTTP 404" not in str(e) or found is not None:
            raise
    return bool(server and server.get("ready"))


def start_again(api: HubAPI, accounts: list[str], report: Callable[[Change], None], wait: float = RESTART_WAIT) -> None:
    """Start the servers a run stopped while they were running, once each stop is done: the group's other members
    keep their account, on a server whose token nobody who left has read (their kernels and terminals end with the
    old one). A server still stopping after `wait` seconds is left for its members to start (one log line)."""
    waiting = list(accounts)
    deadline = time.monotonic() + wait
    while waiting:
        for account in list(waiting):
            try:
                found = api.call("GET", f"/users/{_q(account)}", ok=(404,))
                server = ((found or {}).get("servers") or {}).get("")
                if server and server.get("pending") == "stop":
                    continue  # still stopping
                waiting.remove(account)
                if found is None or server:  # gone, or a member started it already
                    continue
                # no body: JupyterHub starts it with the options it was last started with (the members' profile);
                # 400: a member's start came first
                api.call("POST", f"/users/{_q(account)}/server", ok=(400,))
            except HubError as e:  # the stop is what matters, and it is done: one line, and the others go on
                log.warning("%s stopped but not started again (its members start it): %s", account, e)
                if account in waiting:
                    waiting.remove(account)
                continue
            report(Change("start-server", account))
        if waiting and time.monotonic() > deadline:
            log.warning(
                "%d stopped server(s) still stopping after %.0f s: not started again (their members start them)",
                len(waiting),
                wait,
            )
            return
        if waiting:
            time.sleep(0.5)


# --- inside the hub -------------------------------------------------------------------------------


def read_declaration(files: str) -> dict[str, Any]:
    """custom.coursehub from the chart values z2jh mounts (Secret/hub, then hub.existingSecret), merged as z2jh does."""
    import yaml  # in the hub image: z2jh's own configuration reads these files with it

    merged: dict[str, Any] = {}
    for path in filter(None, files.split(os.pathsep)):
        if os.path.exists(path):
            with open(path) as f:
                # libyaml's loader where PyYAML has it: a course's values can be large (every membership)
                merged = _merge(merged, yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {})
    return dict((merged.get("custom") or {}).get("coursehub") or {})


def _merge(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def run_once(declaration: Mapping[str, Any], api: HubAPI) -> Plan:
    """One reconciliation inside the hub: collisions are logged and left alone, everything else applied."""
    result = plan(declaration, api)
    for conflict in result.conflicts:
        log.error("collision, left alone: %s", conflict)
    apply(result, api, lambda change: log.info("%s", change.describe(names=False)))
    log.info("%s %s (%d request(s))", IN_STEP, result.course, api.requests)
    return result


class MembershipWatch:
    """Members taken out of a course's groups between runs, by anyone (a TA in the admin page, an admin through the
    REST API): the group's account server is stopped, and started again if it was running, as a run does for the
    removals it makes. The one who left may hold that server's own token, and a server keeps the hub's answer
    about a visitor for its visitor cache; this ends both within WATCH_SECONDS.

    The memberships seen last are kept in this process's memory only. A removal made while the reconciler is not
    running (a hub restart) is not seen. A run's own removals are left to the run, which restarts those servers
    itself, only once the run has recorded them done (``Ledger.left``, and no stop still pending in the ledger):
    a run that could not stop a server leaves that stop to the watch."""

    def __init__(self, course: str) -> None:
        self.course = course
        self.seen: dict[str, frozenset[str]] | None = None
        self._used: set[str] = set()  # the runs' Ledger.left records already accounted for
        self._retry: set[str] = set()  # accounts whose stop failed at a look: tried again at the next
        self._waited: dict[str, int] = {}  # record -> looks it has been waited for (a run under way)

    def _read(self, api: HubAPI) -> tuple[Ledger, dict[str, frozenset[str]]]:
        """The course's ledger and the members of its groups and of its staff group."""
        groups = {g["name"]: g for g in api.pages("/groups")}
        ledger = Ledger.read((groups.get(rules.ledger_name(self.course)) or {}).get("properties"))
        watched = [*ledger.groups, rules.staff_group(self.course)]
        return ledger, {g: frozenset(groups[g].get("users") or ()) for g in watched if g in groups}

    def check(self, api: HubAPI) -> list[str]:
        """Stop (and start again) the servers of the groups that lost a member since the last look; the accounts.
        The first look only looks (at start-up, after the run: its removals are its own)."""
        ledger, now = self._read(api)
        seen, self.seen = self.seen, now
        if seen is None:
            self._used |= set(ledger.left.values())
            return []
        lost = set()
        for group, was in seen.items():
            if not was - now.get(group, frozenset()):
                continue
            run = self._runs(group, ledger, now)
            if run == "pending":  # looked at again next time, from what was seen before
                self.seen = {**self.seen, group: was}
            elif run != "done":
                lost.add(group)
        for group, record in ledger.left.items():  # a run's record the group has moved on from counts no more
            if ledger.groups.get(group) not in ledger.stops and not self._describes(record, group, now):
                self._used.add(record)
        pairs = ledger.groups
        if rules.staff_group(self.course) in lost:  # a TA taken off the staff could open every account
            accounts = set(pairs.values())
        else:
            accounts = {pairs[g] for g in lost if g in pairs}
        accounts |= self._retry
        if not accounts:
            return []
        if lost:  # (the retries of failed stops say their own line)
            log.info("%d group(s) %s: stopping their account servers", len(lost), WATCH_SAW)
        self._retry, again = set(), []
        for account in sorted(accounts):
            try:
                if stop_server(api, account) and account in pairs.values():
                    again.append(account)
            except HubError as e:  # one account's failure stops no other's; it is tried again at the next look
                self._retry.add(account)
                log.error("membership watch: could not stop %s (trying again in %.0f s): %s", account, WATCH_SECONDS, e)
        start_again(api, again, lambda change: log.info("%s", change.describe(names=False)))
        return sorted(accounts)

    def _runs(self, group: str, ledger: Ledger, now: Mapping[str, frozenset[str]]) -> str:
        """Whether the group's loss is a run's: "done" when its members are what a run left and the run is done with
        the group's server (no stop pending in the ledger: it restarted it itself); "pending" while that stop is
        still pending (a run under way), for at most RUN_PATIENCE looks; else "" (not a run's, or a run that could
        not stop the server: the watch stops it). Each record counts once."""
        record = ledger.left.get(group, "")
        if not record or record in self._used or not self._describes(record, group, now):
            return ""
        if ledger.groups.get(group) in ledger.stops and self._waited.get(record, 0) < RUN_PATIENCE:
            self._waited[record] = self._waited.get(record, 0) + 1
            return "pending"
        self._used.add(record)
        return "" if ledger.groups.get(group) in ledger.stops else "done"

    def _describes(self, record: str, group: str, now: Mapping[str, frozenset[str]]) -> bool:
        """The record ("<members digest>/<run id>") is of the group's members now."""
        return record.split("/")[0] == members_digest(self.course, now.get(group, ()))


RUN_PATIENCE = 3  # looks the watch leaves a run under way to stop a server itself (a stop takes up to 10 s)


WATCH_SECONDS = 10.0  # how often the in-hub reconciler looks for members taken out of groups between runs


# --- groups from Canvas ---------------------------------------------------------------------------

LMS_REFUSED = "canvas sync applied nothing:"  # logged, with the check that failed, when a sync is not trusted


@dataclass
class LmsRun:
    """One sync from Canvas, planned: what Canvas said (``sync``), the hub changes (``plan``), and ``held``, the
    one line saying why nothing may be applied ("" when it may)."""

    sync: lms.Sync
    plan: Plan
    canvas_requests: int
    held: str = ""


LOSS_WINDOW = 24 * 3600  # seconds: members taken out of groups by earlier syncs count toward the hold this long


def plan_from_lms(
    declaration: Mapping[str, Any],
    api: HubAPI,
    canvas_api: canvas.CanvasAPI,
    accept_removals: int | None = None,
    now: float | None = None,
    recheck: bool = False,
) -> LmsRun:
    """Read the course's group set from Canvas and plan the hub changes it asks for; changes nothing. Raises
    canvas.CanvasError (``Untrusted`` naming the failed check) when Canvas's answer is not to be acted on.
    ``accept_removals``: the number of members the operator accepts to see taken out of a group (`make lms-plan`
    printed it); an accepted sync starts the day's count afresh."""
    settings = lms.parse_lms(declaration)
    if settings is None:
        raise rules.DeclarationError("lms", "is not set", "set lms (or run without it: the members are in the values)")
    group_set = canvas.read_group_set(canvas_api, settings.course_id, settings.group_set, settings.allow_self_signup)
    hub_groups = list(api.pages("/groups"))
    ledger = Ledger.read(
        next((g.get("properties") for g in hub_groups if g["name"] == rules.ledger_name(_course(declaration))), None)
    )
    now = time.time() if now is None else now
    recent = [x for x in ledger.losses if now - x[0] < LOSS_WINDOW]
    current = {g["name"]: set(g.get("users") or ()) for g in hub_groups if g["name"] in ledger.groups}
    sync = lms.desired(
        group_set, settings, declaration, current, ledger.absent, accept_removals, int(sum(x[1] for x in recent))
    )
    result = plan(sync.declaration, api, recheck=recheck, groups=hub_groups)
    result.after.absent = set(sync.absent)
    accepted = accept_removals is not None and accept_removals == sync.losing
    result.after.losses = [] if accepted else recent + ([[now, sync.losing]] if sync.losing else [])
    return LmsRun(sync, result, canvas_api.requests, sync.mass_removal)


def _course(declaration: Mapping[str, Any]) -> str:
    return str(declaration.get("course") or "")


def sync_from_lms(declaration: Mapping[str, Any], api: HubAPI, canvas_api: canvas.CanvasAPI) -> LmsRun | None:
    """One scheduled sync inside the hub: applied only when every check passed and no mass removal is held; every
    refusal is one log line (counts only: membership is private). Returns the run, or None if Canvas was not read."""
    try:
        run = plan_from_lms(declaration, api, canvas_api)
    except canvas.CanvasError as e:
        log.warning("%s %s", LMS_REFUSED, e)
        return None
    except rules.DeclarationError as e:  # the key only: the problem may name a student
        log.warning("%s what Canvas gave does not make a valid declaration at %s (%s)", LMS_REFUSED, e.key, e.fix)
        return None
    s = run.sync
    log.info(
        "canvas: %d groups; %d students in no group (skipped); %d without a hub name; %d held until the next sync; "
        "%d let go after two syncs in no group (%d request(s))",
        len(s.declaration["sharedAccounts"]),
        s.in_no_group,
        len(s.unmatched),
        len(s.absent),
        len(s.letting_go),
        run.canvas_requests,
    )
    if run.held:
        log.warning("%s mass removal: %s", LMS_REFUSED, run.held)
        return run
    for conflict in run.plan.conflicts:
        log.error("collision, left alone: %s", conflict)
    apply(run.plan, api, lambda change: log.info("%s", change.describe(names=False)))
    log.info("%s %s (%d request(s))", IN_STEP, run.plan.course, api.requests)
    return run


def canvas_api(settings: lms.Lms) -> canvas.CanvasAPI:
    return canvas.CanvasAPI(settings.url, settings.token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in-hub", action="store_true", help="run as the hub's managed service")
    args = parser.parse_args(argv)
    if not args.in_hub:
        parser.error("outside the hub, run `make sync-groups` (it uses this code)")
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s %(name)s] %(message)s")
    api = HubAPI(
        os.environ.get("COURSEHUB_API_URL") or os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"]
    )
    declaration = read_declaration(os.environ.get("COURSEHUB_VALUES_FILES", rules.VALUES_FILES))
    hub = os.getppid()
    if declaration.get("lms") is not None:
        return _lms_schedule(declaration, api, hub)
    wait = 1.0
    while True:  # until one run succeeds (the hub may still be starting; a request may fail)
        try:
            api.requests = 0
            run_once(declaration, api)
            break
        except (HubError, rules.DeclarationError) as e:
            wait = min(wait * 2, 60)
            log.error("%s; trying again in %.0f s", e, wait)
            if _idle(hub, wait):
                return 0
    # Once per start: what `make sync-groups` changes between two deploys stays until the next start. A managed
    # service that exits is restarted by JupyterHub, so this one stays, watching memberships, while its hub runs.
    watch = MembershipWatch(_course(declaration))
    _look(watch, api)
    while not _idle(hub, WATCH_SECONDS):
        _look(watch, api)
    return 0


def _look(watch: MembershipWatch, api: HubAPI) -> None:
    """One look of the watch; a hub that cannot answer now is asked again at the next (one log line)."""
    try:
        watch.check(api)
    except HubError as e:
        log.error("membership watch: %s", e)
    except Exception as e:  # the watch's next look must come; the message could name a member: the type only
        log.error("membership watch: this look failed (%s); looking again in %.0f s", type(e).__name__, WATCH_SECONDS)


def _lms_schedule(declaration: Mapping[str, Any], api: HubAPI, hub: int) -> int:
    """Groups from Canvas: a sync at start and every ``lms.interval`` seconds after, for as long as the hub runs.
    A sync Canvas cannot be trusted for, or the hub cannot take, changes nothing and waits for the next."""
    try:
        settings = lms.parse_lms(declaration)
    except rules.DeclarationError as e:
        log.error("%s %s", LMS_REFUSED, e)
        _idle(hub, float("inf"))
        return 0
    assert settings is not None
    if not settings.token:
        log.error(
            "%s custom.coursehub.lms.token is not set: put the Canvas token in the course's secrets file", LMS_REFUSED
        )
        _idle(hub, float("inf"))
        return 0
    client = canvas_api(settings)
    interval = float(settings.interval)
    override = os.environ.get(rules.LMS_INTERVAL_ENV)
    if override:
        if override.isdigit() and int(override) >= 1:
            interval = float(override)
        else:
            log.error(
                "$%s is %r, not a number of seconds of at least 1: syncing every lms.interval (%d s)",
                rules.LMS_INTERVAL_ENV,
                override,
                settings.interval,
            )
    watch = MembershipWatch(_course(declaration))
    while True:
        api.requests = client.requests = 0
        try:
            sync_from_lms(declaration, api, client)
        except (HubError, rules.DeclarationError) as e:
            log.error("%s %s", LMS_REFUSED, e)
        _look(watch, api)  # the sync's own removals are recorded in the ledger: the watch leaves those to it
        next_sync = time.monotonic() + interval
        while (left := next_sync - time.monotonic()) > 0:
            if _idle(hub, min(WATCH_SECONDS, left), every=min(2.0, interval)):
                return 0
            if left > WATCH_SECONDS:  # not just before the next sync, which looks afterwards
                _look(watch, api)


def _idle(hub: int, seconds: float, every: float = 2.0) -> bool:
    """Wait ``seconds``; True as soon as the hub that started this service (process ``hub``) has ended. A hub
    stops its services when it stops; one that is killed cannot, and this service was handed to another parent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.getppid() != hub:
            log.info("the hub that started this service has ended; stopping")
            return True
        time.sleep(min(every, max(deadline - time.monotonic(), 0)))
    return os.getppid() != hub


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped(signum)  # logged in _quietly: a handler that wrote to stderr could interrupt a write under way


def _quietly(main: Callable[[], int]) -> int:
    """The hub stops a managed service with SIGINT, then SIGTERM if it is still there 10 s later
    (LocalProcessSpawner.interrupt_timeout): exit at the first of them, without a traceback in the hub's log.

    Both handlers are set here, whatever this process inherited. A process started in the background without job
    control (`hub &` in a script, some CI runners) has SIGINT ignored, a hub started so passes that on, Python
    then leaves SIGINT ignored, and every stop of such a hub (the local hub's restarts, the tests' hubs) waited the
    whole 10 s for this service.
    """
    signal.signal(signal.SIGINT, _stopped)
    signal.signal(signal.SIGTERM, _stopped)
    try:
        return main()
    except _Stopped as e:
        log.info("%s (%s)", STOPPED, e)
        return 0


if __name__ == "__main__":
    sys.exit(_quietly(main))
