"""coursehub's hub-side configuration: shared accounts with impersonation.

This is where a course's shared accounts become JupyterHub roles and the
reconciler service that keeps groups, members and accounts in step. The hub
image installs this package; its ``jupyterhub_config.d/coursehub.py`` calls
``coursehub_hub.configure``, which z2jh's ``jupyterhub_config.py`` runs after
``hub.config``. The declaration it reads, ``custom.coursehub`` in the chart
values, reaches the hub inside ``Secret/hub``, so group membership is never in
a ConfigMap.

The same module is imported by coursehub's tooling (to check a course before
it is deployed), by the reconciler (``coursehub_hub.reconcile``) and by the
tests, so the rules live only here. Importing it changes nothing; building
settings (``apply``) writes only into the config it is given and the log
filters that keep membership private. It runs on the hub image alone: standard
library, traitlets and what JupyterHub itself needs.

A declaration looks like::

    course: stat159
    sharedAccounts:
      - {group: shared-1, account: collab-shared-1}
      - {group: lab-b, account: collab-lab-b}
    members:                       # private: lives in the course's secrets file
      shared-1: [student-a, student-b]
      # lab-b is not listed: its members are managed in the admin page
    staff: [ta-x]                  # private too: the course's TAs (see staff_role)

and becomes, per shared account A of group G:
- the role ``coursehub-access-G`` granted to G and nothing else (``access:
  roles``, the default), with exactly the scopes JupyterHub's
  collaboration-accounts tutorial names: use A's server, start and stop it,
  and see A (only A) in the admin page. With ``access: shares`` the
  reconciler shares A's server with G instead, and tokens are made to count
  group shares as sessions do (``count_group_shares_in_tokens``);
- a log-in refusal for A, every name under the accounts' prefix and
  ``coursehub-health``, whatever the authenticator and whatever the course's
  own ``hub.extraConfig`` sets (``refusing_authenticator``: a subclass of the
  course's authenticator that checks the name JupyterHub is about to log in,
  after any ``post_auth_hook``; the hook is composed too). A is never a
  blocked user: JupyterHub revokes a blocked user's roles and stops its
  servers at every start, and every deploy restarts the hub;
- the group G, its members, and A itself are kept by the reconciler
  (``coursehub_hub.reconcile``), which JupyterHub runs as a managed service at
  every start and ``make sync-groups`` runs from outside. Removals included.

Names that already exist on the hub and are not coursehub's are never taken
over: before the roles are loaded, the hub's database is read (names only) and
a declared group or account that collides gets no role (``collisions``).

At course scale (1,000 groups) three wrappers keep JupyterHub's own work cheap,
each leaving what JupyterHub writes unchanged: roles and groups found by name
from one query while the roles load (``find_roles_by_name_at_start``), groups
kept in the hub's session between requests (``keep_groups_in_memory``), and the
cyclic garbage collector paused while the database loads (``collect_after_load``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursehub_hub import names as name_rules
from coursehub_hub.patches import ADDED_GROUP_SHARES

ROLE_PREFIX = "coursehub-access-"
# What marks a group as coursehub's: the course's ledger group lists it (see ledger_name), or, for groups
# made by coursehub before the ledger, this group property set to the course.
OWNER = "coursehub.course"
DEFAULT_ACCOUNT_PREFIX = "collab-"
RECONCILER = "coursehub-reconciler"  # the managed service and its role
# Seconds between Canvas syncs instead of lms.interval (whose floor is 60): for the tests and make bench, whose
# Canvas is a loopback test double that answers in milliseconds. Set in the hub's environment.
LMS_INTERVAL_ENV = "COURSEHUB_LMS_INTERVAL_SECONDS"
HEALTH_USER = "coursehub-health"  # `make health`'s own user: nobody logs in as it
STAFF_ROLE = "coursehub-staff"  # the one role of the course's TAs (staff_role)
PAGE = 1000  # the reconciler's page size (see apply: the hub's api_page_max_limit is raised to it)
# The files z2jh reads the chart values from (Secret/hub, and hub.existingSecret when there is one).
VALUES_FILES = os.environ.get(
    "COURSEHUB_VALUES_FILES",
    "/usr/local/etc/jupyterhub/secret/values.yaml:/usr/local/etc/jupyterhub/existing-secret/values.yaml",
)


@dataclass(frozen=True)
class NameRule:
    pattern: re.Pattern[str]
    description: str


def _name_rules() -> dict[str, NameRule]:
    """The group and user name rules (``coursehub_hub.names``; the chart's schema holds the same).

    Group names end up in role names (``coursehub-access-<group>``), which JupyterHub restricts to
    ``[a-z0-9-_~.]``; JupyterHub lower-cases user names, and campus log-ins may be e-mail addresses.
    """
    return {
        "groupName": NameRule(re.compile(name_rules.GROUP_NAME_PATTERN), name_rules.GROUP_NAME_RULE),
        "userName": NameRule(re.compile(name_rules.USER_NAME_PATTERN), name_rules.USER_NAME_RULE),
    }


_RULES = _name_rules()
GROUP_NAME = _RULES["groupName"]
USER_NAME = _RULES["userName"]


# rtc: which servers have real-time collaboration (see rtc_spawner_settings).
RTC_SETTINGS = ("everyone", "sharedAccounts")
RTC_SWITCH = "--LabApp.collaborative"  # JupyterLab 3.6 turns RTC on with it (on JupyterLab 4 it only checks)
RTC_OFF = "--YDocExtension.disable_rtc=True"  # jupyter-collaboration >= 1.1 (JupyterLab 4)
RTC_OVERRIDE = "coursehub-rtc"  # its Spawner.group_overrides key


def ledger_name(course: str) -> str:
    """The group whose properties record what coursehub owns on the hub for `course`.

    Its name has a colon, which declared group names cannot have, so it never collides with one. Its members
    are the course's shared accounts when only they have RTC (rtc "sharedAccounts") or its groups come from
    Canvas (``account_groups``), else nobody.
    """
    return f"coursehub:{course}"


# Lines JupyterHub logs that pair a user with a group. Membership is private:
# the filter below rewrites them so that the group is not named.
_MEMBERSHIP_LOG_LINES = (
    (re.compile(r"^Creating user (\S+) found in group: .*$"), r"Creating user \1 found in a group"),
    (re.compile(r"^Adding user \S+ to group .*$"), "Adding a user to a group"),
    (re.compile(r"^User \S+ already in group .*$"), "A user is already in that group"),
    (re.compile(r"^User \S+ already not in group .*$"), "A user is already not in that group"),
    # the groups API's debug lines list the users of a request
    (re.compile(r"^(Users|Adding|Removing): .*$", re.S), r"\1: (names hidden)"),
    # shares of a shared account's server name the student (JupyterHub's orm, logged via tornado.application)
    (re.compile(r"^(?:Granting|Sharing) scopes .* for user:\S+ on \S+$"), "Shared a server with a user"),
    (
        re.compile(r"^(?:No new scopes for|No permissions to revoke from|Revoked .* from) user:\S+ on \S+$"),
        "Changed a user's share of a server",
    ),
)
# The loggers those lines come from (a filter applies to the records of its own logger only).
_MEMBERSHIP_LOGGERS = ("JupyterHub", "tornado.application")


class DeclarationError(ValueError):
    """A course's shared-account declaration is wrong.

    ``key`` is the dotted path under ``custom.coursehub`` that is wrong and
    ``fix`` says what to do about it.
    """

    def __init__(self, key: str, problem: str, fix: str) -> None:
        super().__init__(f"custom.coursehub.{key}: {problem}; {fix}")
        self.key = key
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class SharedAccount:
    """One group's shared account and the students who may use it."""

    group: str
    account: str
    members: tuple[str, ...]
    # The values list the group's members: the reconciler keeps the group to exactly them. When the values leave
    # the group out of `members`, its membership is the admin page's, and the reconciler leaves it alone.
    managed: bool = True

    @property
    def role_name(self) -> str:
        return ROLE_PREFIX + self.group

    def role(self) -> dict[str, Any]:
        """The least-privilege role that lets the group, and only it, use the account."""
        a = self.account
        return {
            "name": self.role_name,
            "description": f"Members of {self.group} may start, stop and use {a}'s server",
            "scopes": [
                f"access:servers!user={a}",  # use the running server
                f"admin:servers!user={a}",  # start and stop it
                "admin-ui",  # the admin page, which is where the start button is...
                f"list:users!user={a}",  # ...listing this account and nobody else
            ],
            "groups": [self.group],
        }


def parse(declaration: Mapping[str, Any]) -> list[SharedAccount]:
    """Check a declaration and return its shared accounts, in declared order."""
    entries = declaration.get("sharedAccounts") or []
    members = declaration.get("members") or {}
    if not isinstance(entries, list):
        raise DeclarationError("sharedAccounts", "must be a list", "write one {group, account} item per group")
    if not isinstance(members, Mapping):
        raise DeclarationError("members", "must be a mapping", "write `group: [student, ...]` entries")

    prefix = account_prefix(declaration)
    groups: dict[str, str] = {}
    accounts: dict[str, str] = {}
    for i, entry in enumerate(entries):
        key = f"sharedAccounts[{i}]"
        if not isinstance(entry, Mapping) or set(entry) != {"group", "account"}:
            raise DeclarationError(
                key, "must have exactly the keys group and account", "write {group: shared-N, account: collab-shared-N}"
            )
        group, account = entry["group"], entry["account"]
        _check_name(f"{key}.group", group, GROUP_NAME, "group")
        _check_name(f"{key}.account", account, USER_NAME, "account")
        if not account.startswith(prefix):
            raise DeclarationError(
                f"{key}.account",
                f"{account!r} does not start with the course's account prefix {prefix!r}",
                f"name it {prefix}{group} (nobody may log in under the prefix; roster.accountPrefix sets it)",
            )
        if group in groups:
            raise DeclarationError(
                f"{key}.group",
                f"group {group!r} is declared twice",
                f"remove one of the two entries ({groups[group]} and {key})",
            )
        if account in accounts:
            raise DeclarationError(
                f"{key}.account", f"account {account!r} is shared by two groups", "give every group its own account"
            )
        groups[group] = key
        accounts[account] = key
    if set(groups) & set(accounts):
        name = sorted(set(groups) & set(accounts))[0]
        raise DeclarationError(
            accounts[name] + ".account",
            f"{name!r} is both a group and an account",
            "give the account a different name (e.g. collab-<group>)",
        )

    for group, students in members.items():
        key = f"members.{group}"
        if group not in groups:
            raise DeclarationError(
                key,
                f"group {group!r} is not declared in sharedAccounts",
                f"add {{group: {group}, account: ...}} to sharedAccounts, or remove {group} from members",
            )
        if not isinstance(students, list):
            raise DeclarationError(key, "must be a list of user names", "write `- student` items")
        seen: set[str] = set()
        for j, student in enumerate(students):
            _check_name(f"{key}[{j}]", student, USER_NAME, "user")
            if student in accounts:
                raise DeclarationError(
                    f"{key}[{j}]", f"{student!r} is a shared account, not a student", "list real students only"
                )
            if student in seen:
                raise DeclarationError(
                    f"{key}[{j}]", f"{student!r} is listed twice", "list each student once per group"
                )
            seen.add(student)

    return [
        SharedAccount(
            group=e["group"],
            account=e["account"],
            members=tuple(members.get(e["group"]) or ()),
            managed=e["group"] in members,
        )
        for e in entries
    ]


def account_prefix(declaration: Mapping[str, Any]) -> str:
    return str((declaration.get("roster") or {}).get("accountPrefix") or DEFAULT_ACCOUNT_PREFIX)


def _check_name(key: str, value: Any, rule: NameRule, what: str) -> None:
    if not isinstance(value, str) or not rule.pattern.match(value):
        raise DeclarationError(key, f"{value!r} is not a valid {what} name", rule.description)


@dataclass
class HubNames:
    """What the hub's database already holds, read before the roles are loaded (names and marks only)."""

    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # group -> its properties
    users: set[str] = field(default_factory=set)
    with_role: set[str] = field(default_factory=set)  # groups that hold coursehub's role for them

    def owned(self, course: str) -> tuple[set[str], set[str]]:
        """(groups, accounts) coursehub owns here.

        A group is coursehub's when the course's ledger lists it, when it holds the role coursehub gave it
        (JupyterHub creates a role's groups at start-up, before the reconciler can list them), or when it
        carries the group property of coursehub before the ledger. An account is when the ledger lists it.
        """
        ledger = self.groups.get(ledger_name(course)) or {}
        marked = {g for g, p in self.groups.items() if p.get(OWNER) == course}
        groups = set(ledger.get("groups") or {}) | marked | self.with_role
        return groups, set((ledger.get("groups") or {}).values()) | set(ledger.get("accounts") or ())


def collisions(accounts: Iterable[SharedAccount], course: str, names: HubNames) -> dict[str, str]:
    """Declared groups whose group or account name is already taken on the hub by something not coursehub's.

    Returns {group: why}. Such a group gets no role and the reconciler refuses to touch it: its existing
    members must not gain the account, and a real user must not lose their server to a group. An account
    counts as coursehub's when the ledger lists it, or when its group was coursehub's before the ledger.
    """
    groups, owned_accounts = names.owned(course)
    found = {}
    for a in accounts:
        if a.group in names.groups and a.group not in groups:
            found[a.group] = f"group {a.group!r} already exists on the hub and is not coursehub's"
        elif a.account in names.users and a.account not in owned_accounts and a.group not in groups:
            found[a.group] = f"account {a.account!r} is an existing hub user that coursehub did not create"
    return found


def hub_settings(
    accounts: Iterable[SharedAccount],
    course: str = "",
    access: str = "roles",
    names: HubNames | None = None,
    from_lms: bool = False,
) -> dict[str, Any]:
    """The JupyterHub settings that the shared accounts add to a hub's own.

    access "roles" (the default): one role per group, loaded at every start (a new group's role needs a
    restart). access "shares": no per-group config at all; the reconciler shares each account's server with
    its group, so a new group needs no restart and a restart does no per-group work.
    Groups whose names collide with the hub's (`collisions`) get no role.
    ``from_lms``: the accounts are not known when the hub starts (Canvas makes them, ``coursehub_hub.lms``), so
    the reconciler's share scopes are filtered to the course's ledger group, which holds exactly the course's
    accounts (the reconciler keeps it so).
    """
    accounts = list(accounts)
    refused = collisions(accounts, course, names) if names else {}
    usable = [a for a in accounts if a.group not in refused]
    scopes = ["admin:users", "admin:groups"]  # create accounts and students; keep groups, members, the ledger
    # every account coursehub made, declared now or recorded before (a dropped group's account): the reconciler
    # stops an account's server when its group loses a member or is dropped (the server's token goes with it)
    made = sorted({a.account for a in usable} | (names.owned(course)[1] if names else set()))
    if access == "shares" and from_lms:
        scopes += [f"{scope}!group={ledger_name(course)}" for scope in ("shares", "servers")]
    elif access == "shares":
        # share and unshare these accounts' servers only (granting a share needs the scopes it grants)
        scopes += [f"{scope}!user={account}" for account in made for scope in ("shares", "servers")]
    else:
        scopes += [f"servers!user={account}" for account in made]
    reconciler_role = {
        "name": RECONCILER,
        "description": "coursehub's reconciler: the course's groups, members, shared accounts and their shares",
        "scopes": scopes,
        "services": [RECONCILER],
    }
    roles = [a.role() for a in usable] if access == "roles" else []
    return {"load_roles": [*roles, reconciler_role], "refused": refused}


def parse_staff(declaration: Mapping[str, Any], accounts: Iterable[SharedAccount]) -> tuple[str, ...]:
    """The course's TAs (``staff``), checked: real log-in names, each once, none of them a shared account.

    A name under the account prefix could never log in (``refuse_accounts``), and one that is a declared account
    would hand the TA role to the group's account: both are mistakes to fix in the values, not to load.
    """
    staff = declaration.get("staff") or []
    if not isinstance(staff, list):
        raise DeclarationError("staff", "must be a list of user names", "write `staff: [ta-login, ...]`")
    declared = {a.account: a.group for a in accounts}
    prefix = account_prefix(declaration)
    seen: set[str] = set()
    for i, name in enumerate(staff):
        key = f"staff[{i}]"
        _check_name(key, name, USER_NAME, "user")
        if name in declared:
            raise DeclarationError(
                key,
                f"{name!r} is the shared account of group {declared[name]}, not a person",
                "list the TA's own log-in name (nobody can log in as a shared account)",
            )
        if name.startswith(prefix):
            raise DeclarationError(
                key,
                f"{name!r} starts with the course's account prefix {prefix!r}, under which nobody can log in",
                "list the TA's own log-in name",
            )
        if name in seen:
            raise DeclarationError(key, f"{name!r} is listed twice", "list each TA once")
        seen.add(name)
    return tuple(staff)


def staff_role(staff: Iterable[str], accounts: Iterable[SharedAccount]) -> dict[str, Any]:
    """The one role of the course's TAs: the course's shared accounts and groups, and nothing else.

    Every scope is filtered to a declared account or group (JupyterHub 5.5 ``scopes.py``):
    - ``access:servers``, ``servers`` (start, stop, read; ``admin:servers`` would add the server state, which
      the admin page does not need) and ``list:users``, each ``!user=<account>``: use, start and stop every
      account and see it in the admin page;
    - ``groups!group=<group>`` (read and list the group, add and remove members; not create or delete, which are
      ``admin:groups`` and ``delete:groups``) and ``list:users!group=<group>`` (the group's students by name in
      the admin page, not their servers, tokens or other groups);
    - ``admin-ui``: the admin page itself (what may be done there is the scopes above).
    No scope reaches a user who is not an account or in a declared group, or a group the course did not declare.
    """
    scopes = ["admin-ui"]
    for a in accounts:
        scopes += [
            f"access:servers!user={a.account}",
            f"servers!user={a.account}",
            f"list:users!user={a.account}",
            f"groups!group={a.group}",
            f"list:users!group={a.group}",
        ]
    return {
        "name": STAFF_ROLE,
        "description": "The course's TAs: use, start and stop its shared accounts; see and change its groups",
        "scopes": scopes,
        "users": list(staff),
    }


def staff_roles(
    declaration: Mapping[str, Any], accounts: Iterable[SharedAccount], refused: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The staff role, when the course has staff, over its groups that got a role (not the `refused` ones:
    a group of that name on the hub is someone else's).

    With no staff there is no role: JupyterHub deletes a role that left the config at its next start, and with
    it every assignment; a TA left out of a shorter list loses the role then too (``load_roles`` sets a role's
    users to exactly its list). A name not on the hub yet is created by JupyterHub at that start, holding the
    role, so the TA can log in at once.
    """
    accounts = list(accounts)
    staff = parse_staff(declaration, accounts)
    if not staff:
        return []
    if declaration.get("lms") is not None:
        return [lms_staff_role(staff, str(declaration.get("course") or ""))]
    return [staff_role(staff, [a for a in accounts if a.group not in refused])]


def staff_group(course: str) -> str:
    """The group of a Canvas course's TAs (the reconciler keeps it to ``staff`` and shares every account's server
    with it). Its name has a colon, which declared names cannot have."""
    return f"coursehub-staff:{course}"


def lms_staff_role(staff: Iterable[str], course: str) -> dict[str, Any]:
    """The staff role of a course whose groups come from Canvas: its accounts are not known when the hub starts,
    so its scopes are filtered to the course's ledger group, which holds exactly the course's accounts: start and
    stop every account and see them in the admin page. Using a server is a share with the staff group
    (``staff_group``): a server checks access by server or user, never by group. Groups are Canvas's to change,
    so no group scope (a change made in the admin page would be undone at the next sync)."""
    ledger = ledger_name(course)
    return {
        "name": STAFF_ROLE,
        "description": "The course's TAs: use, start and stop its shared accounts (groups come from Canvas)",
        "scopes": ["admin-ui", *(f"{s}!group={ledger}" for s in ("servers", "list:users"))],
        "users": list(staff),
    }


def reconciler_service(hub_port: int = 8081) -> dict[str, Any]:
    """The reconciler as a JupyterHub-managed service: started with the hub, restarted if it dies.

    It reaches the hub's API on the loopback of the hub's own container, as z2jh's idle culler does: the
    hub's public API address is the hub Service, which the hub's network policy need not let the hub reach.
    """
    environment = {
        "COURSEHUB_VALUES_FILES": VALUES_FILES,
        "COURSEHUB_API_URL": f"http://127.0.0.1:{hub_port}/hub/api",
    }
    if os.environ.get(LMS_INTERVAL_ENV):  # the hub's environment reaches a managed service only where passed on
        environment[LMS_INTERVAL_ENV] = os.environ[LMS_INTERVAL_ENV]
    return {
        "name": RECONCILER,
        "command": [sys.executable, "-m", "coursehub_hub.reconcile", "--in-hub"],
        "environment": environment,
    }


def apply(c: Any, declaration: Mapping[str, Any], names: HubNames | None = None) -> list[SharedAccount]:
    """Add the declared shared accounts to the traitlets config ``c``. Changes nothing outside ``c`` but the
    log filters that keep membership out of the log; JupyterHub's code is wrapped only by ``install_patches``.

    What the hub's own config already has (``hub.config``, ``hub.loadRoles``, services, hooks) is kept;
    a group or role declared both there and here is an error rather than a silent merge. ``names`` is
    what the hub's database holds (``read_hub_names``), when this runs inside the hub.
    """
    from coursehub_hub.lms import parse_lms

    from_lms = parse_lms(declaration) is not None  # first: members set beside lms is that one mistake
    accounts = parse(declaration)
    access = str(declaration.get("access") or "roles")
    course = str(declaration.get("course") or "")
    settings = hub_settings(accounts, course, access, names, from_lms)
    settings["load_roles"] += staff_roles(declaration, accounts, settings["refused"])

    hub = c.JupyterHub
    loaded = dict(_current(hub, "load_groups", {}))
    for a in accounts:
        if a.group in loaded:
            raise DeclarationError(
                "sharedAccounts",
                f"group {a.group!r} is also in hub.config.JupyterHub.load_groups",
                "declare it in one place only",
            )

    roles = list(_current(hub, "load_roles", []))
    taken = {r.get("name") for r in roles}
    for role in settings["load_roles"]:
        if role["name"] in taken:
            raise DeclarationError(
                "sharedAccounts",
                f"role {role['name']!r} is also in hub.loadRoles",
                "rename or remove the hub.loadRoles entry (coursehub- role names are coursehub's)",
            )
    hub.load_roles = roles + settings["load_roles"]
    hub.services = [*_current(hub, "services", []), reconciler_service(int(_current(hub, "hub_port", 8081)))]
    # The reconciler reads every group at each run: 1,000 a page instead of JupyterHub's 200 keeps a course of
    # a thousand groups to a couple of requests (the admin page asks for its own, smaller pages).
    hub.api_page_max_limit = max(int(_current(hub, "api_page_max_limit", PAGE)), PAGE)

    log = logging.getLogger("JupyterHub")
    for group, why in settings["refused"].items():
        log.error("coursehub: %s: group %s gets no role and is left alone; rename it in the values", why, group)

    apply_rtc(c, declaration)

    auth = c.Authenticator
    refused = frozenset({HEALTH_USER, *(a.account for a in accounts)})
    prefix = account_prefix(declaration)
    auth.post_auth_hook = refuse_accounts(refused, prefix, _current(auth, "post_auth_hook", None))
    # The hook alone is not enough: a course's hub.extraConfig runs after this file, and one that sets its own
    # post_auth_hook (to keep auth_state, say) replaces it. The authenticator class checks the final name itself.
    hub.authenticator_class = refusing_authenticator(
        _current(hub, "authenticator_class", "jupyterhub.auth.PAMAuthenticator"), refused, prefix
    )

    apply_course_folder(c, declaration, parse_staff(declaration, accounts))

    for name in _MEMBERSHIP_LOGGERS:
        logging.getLogger(name).addFilter(_HIDE_MEMBERSHIP)
    hide_staff(parse_staff(declaration, accounts))
    return accounts


HOMES_VOLUME = "home"  # z2jh's volume for the homes claim (singleuser.storage.type static)


def course_folder(declaration: Mapping[str, Any]) -> dict[str, str] | None:
    """The course folder's mount (``courseFolder``): one folder of the homes claim in every server, or None."""
    folder = declaration.get("courseFolder") or {}
    if not isinstance(folder, Mapping):
        raise DeclarationError("courseFolder", "must be a mapping", "write {subPath: ..., mountPath: ...}")
    sub_path = str(folder.get("subPath") or "")
    if not sub_path:
        return None
    parts = sub_path.split("/")
    if sub_path.startswith("/") or ".." in parts or "{" in sub_path:
        raise DeclarationError(
            "courseFolder.subPath",
            f"{sub_path!r} is not a plain folder of the homes claim",
            "use a relative path such as _course/stat159 (no .., no leading /, no {username})",
        )
    return {
        "name": HOMES_VOLUME,
        "subPath": sub_path,
        "mountPath": str(folder.get("mountPath") or ""),
        "readOnly": True,
    }


def writable_for(names: frozenset[str], mount_path: str, then: Any = None) -> Any:
    """A KubeSpawner ``modify_pod_hook``: the course folder is writable in the pods of ``names`` (course staff).

    Everyone else's pod (students, shared accounts) keeps the read-only mount. Chains a hook set before.
    """

    async def hook(spawner: Any, pod: Any) -> Any:
        if then is not None:
            pod = then(spawner, pod)
            if hasattr(pod, "__await__"):
                pod = await pod
        if spawner.user.name in names:
            for container in pod.spec.containers:
                for mount in container.volume_mounts or ():
                    if mount.mount_path == mount_path:
                        mount.read_only = False
        return pod

    return hook


def apply_course_folder(c: Any, declaration: Mapping[str, Any], staff: Iterable[str]) -> None:
    mount = course_folder(declaration)
    if mount is None:
        return
    spawner = c.KubeSpawner
    current = _current(spawner, "volume_mounts", {})  # z2jh sets a dict (KubeSpawner orders it by key)
    if isinstance(current, Mapping):
        spawner.volume_mounts = {**current, "coursehub-course-folder": mount}
    else:
        spawner.volume_mounts = [*current, mount]
    previous = _current(spawner, "modify_pod_hook", None)
    spawner.modify_pod_hook = writable_for(frozenset(staff), mount["mountPath"], previous)


def rtc_setting(declaration: Mapping[str, Any]) -> str:
    """Which servers get real-time collaboration: "everyone" (the default) or "sharedAccounts" only."""
    value = declaration.get("rtc") or "everyone"
    if value not in RTC_SETTINGS:
        raise DeclarationError(
            "rtc",
            f"{value!r} is not one of {', '.join(RTC_SETTINGS)}",
            "write everyone (RTC in every server, the default) or sharedAccounts (in the shared accounts' only)",
        )
    return str(value)


def rtc_spawner_settings(rtc: str, course: str, cmd: Any, args: list[str]) -> dict[str, Any]:
    """The Spawner settings (cmd, args, group_overrides) that give RTC to the shared accounts' servers only.

    {} for "everyone": the course's command turns RTC on (JupyterLab 3.6: --LabApp.collaborative=true in it;
    JupyterLab 4: jupyter-collaboration installed in the image) and nothing changes. For "sharedAccounts" every
    server starts with RTC off: JupyterLab 3.6's switch leaves the command (it must not be given twice: the lab
    extension then fails to load) and --YDocExtension.disable_rtc=True is added (JupyterLab 4; jupyter_server_ydoc
    0.6-0.8 only warns that it does not know it). Spawner.group_overrides puts the switch back, and drops the off
    flag, for the members of the course's ledger group, where the reconciler keeps the shared accounts: JupyterHub
    matches the groups of the user whose server starts (the account), not the visitor's. Spawner.args, not cmd,
    carry the difference because KubeSpawner runs cmd + args (and drops args when cmd is null).
    """
    if rtc == "everyone":
        return {}
    command = [cmd] if isinstance(cmd, str) else list(cmd or ())
    if not command:
        raise DeclarationError(
            "rtc",
            "sharedAccounts needs a singleuser command (with the image's own, KubeSpawner passes no arguments)",
            "set jupyterhub.singleuser.cmd (start from the one in chart/values.yaml), or rtc: everyone",
        )
    switches = [arg for arg in command[1:] if str(arg).partition("=")[0] == RTC_SWITCH]
    return {
        "cmd": [command[0], *(arg for arg in command[1:] if arg not in switches)],
        "args": [*args, RTC_OFF],
        "group_overrides": {
            RTC_OVERRIDE: {"groups": [ledger_name(course)], "spawner_override": {"args": [*args, *switches]}}
        },
    }


def account_groups(declaration: Mapping[str, Any]) -> list[str]:
    """The groups the reconciler keeps every shared account in: the course's ledger group under rtc
    "sharedAccounts" (its Spawner.group_overrides entry gives their servers RTC) and for a course whose groups
    come from Canvas (the reconciler's and the staff's scopes are filtered to it), else none."""
    if rtc_setting(declaration) == "sharedAccounts" or declaration.get("lms") is not None:
        return [ledger_name(str(declaration.get("course") or ""))]
    return []


def apply_rtc(c: Any, declaration: Mapping[str, Any]) -> None:
    """Set the Spawner traits for the course's `rtc` (see rtc_spawner_settings), on top of z2jh's Spawner.cmd."""
    spawner = c.Spawner
    settings = rtc_spawner_settings(
        rtc_setting(declaration),
        str(declaration.get("course") or ""),
        spawner["cmd"] if "cmd" in spawner else None,
        list(_current(spawner, "args", [])),
    )
    if not settings:
        return
    overrides = dict(_current(spawner, "group_overrides", {}))
    if RTC_OVERRIDE in overrides:
        raise DeclarationError(
            "rtc",
            f"hub.config.Spawner.group_overrides already has the key {RTC_OVERRIDE!r}",
            "rename that entry (coursehub- keys are coursehub's)",
        )
    spawner.cmd = settings["cmd"]
    spawner.args = settings["args"]
    spawner.group_overrides = {**overrides, **settings["group_overrides"]}


def refuse_accounts(accounts: frozenset[str], prefix: str, then: Any = None) -> Any:
    """A post_auth_hook that refuses the shared accounts and every name under their prefix, then runs the
    course's own hook. JupyterHub calls it after every successful authentication, whatever the authenticator;
    refusing here keeps the accounts' roles, groups and running servers (a blocked user loses all three)."""

    async def hook(authenticator: Any, handler: Any, authentication: dict[str, Any]) -> Any:
        name = str((authentication or {}).get("name", ""))
        normalized = authenticator.normalize_username(name) if name else name
        if authentication and is_refused(normalized, accounts, prefix):
            authenticator.log.warning("Refused a log-in as a shared account")
            return None
        if then is None:
            return authentication
        result = then(authenticator, handler, authentication)
        return await result if hasattr(result, "__await__") else result

    return hook


REFUSES = "coursehub_refuses"  # on the refusing class: (the names it refuses, the accounts' prefix)


def is_refused(name: str, accounts: frozenset[str], prefix: str) -> bool:
    return name in accounts or name.startswith(prefix)


def refusing_authenticator(chosen: Any, accounts: frozenset[str], prefix: str) -> type:
    """The course's authenticator class (a class, an import string or an entry point name such as
    ``generic-oauth``, resolved as JupyterHub resolves ``JupyterHub.authenticator_class``), subclassed so that
    ``get_authenticated_user``, JupyterHub's one way to log anybody in, refuses the shared accounts, every name
    under their prefix and the health-check user. It checks the name JupyterHub would log in: after the
    authenticator, its normalization, the allow checks and any ``post_auth_hook``, which a course's own
    ``hub.extraConfig`` may replace (or use to map e-mail log-ins to names) but cannot take this check out of.
    Config sections of the chosen class still apply (traitlets reads the sections of every class in the MRO)."""
    from jupyterhub.auth import Authenticator
    from jupyterhub.traitlets import EntryPointType

    base = EntryPointType(klass=Authenticator, entry_point_group="jupyterhub.authenticators").validate(None, chosen)

    class Refusing(base):  # type: ignore[valid-type, misc]
        async def get_authenticated_user(self, handler: Any, data: Any) -> Any:
            authenticated = await super().get_authenticated_user(handler, data)
            name = str((authenticated or {}).get("name") or "")
            if name and (
                is_refused(name, accounts, prefix) or is_refused(self.normalize_username(name), accounts, prefix)
            ):
                self.log.warning("Refused a log-in as a shared account")
                return None
            return authenticated

    Refusing.__name__ = Refusing.__qualname__ = f"CoursehubRefusing{base.__name__}"
    setattr(Refusing, REFUSES, (accounts, prefix))
    return Refusing


def read_hub_names(db_url: str) -> HubNames:
    """Group names (with their properties) and user names already in the hub's database, read-only.

    Runs in the hub before JupyterHub opens its database. A database that does not exist yet is a new hub.
    """
    import sqlalchemy  # JupyterHub's own dependency; imported here so that the tooling needs it only here

    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        if not path.is_file():
            return HubNames()
        db_url = f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"
    engine = sqlalchemy.create_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = set(sqlalchemy.inspect(conn).get_table_names())
            if not {"groups", "users"} <= tables:
                return HubNames()
            groups = {
                name: (json.loads(props) if isinstance(props, str) else props) or {}
                for name, props in conn.execute(sqlalchemy.text("SELECT name, properties FROM groups"))
            }
            users = {name for (name,) in conn.execute(sqlalchemy.text("SELECT name FROM users"))}
            held = conn.execute(
                sqlalchemy.text(
                    "SELECT g.name, r.name FROM groups g JOIN group_role_map m ON m.group_id = g.id "
                    "JOIN roles r ON r.id = m.role_id"
                )
            )
            with_role = {group for group, role in held if role == ROLE_PREFIX + group}
    finally:
        engine.dispose()
    return HubNames(groups, users, with_role)


def _current(section: Any, name: str, default: Any) -> Any:
    """A trait's value in a traitlets Config section, resolving lazy (``.append``-style) values."""
    if name not in section:
        return default
    value = section[name]
    if hasattr(value, "get_value"):  # traitlets LazyConfigValue
        value = value.get_value(type(default)())
    return value


class HideMembership(logging.Filter):
    """Keep group membership out of the hub's log: it is private to the course."""

    def filter(self, record: logging.LogRecord) -> bool:
        added = ADDED_GROUP_SHARES.get()
        if added and not _without_group_shares(record, added):
            return False
        message = record.getMessage()
        for pattern, replacement in _MEMBERSHIP_LOG_LINES:
            if pattern.match(message):
                record.msg, record.args = pattern.sub(replacement, message), ()
                break
        return True


_HIDE_MEMBERSHIP = HideMembership()

# scopes.get_scopes_for on a token: a warning (an f-string) and the debug line after it (with arguments)
_DISCARDED = re.compile(r"^discarding scopes \[(?P<scopes>.*)\], not present in roles of owner (?P<owner>.*)$", re.S)
_OWNER_AND_TOKEN = "Owner %s has scopes: %s\nToken has scopes: %s"
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")  # the scopes in a set's repr


def _without_group_shares(record: logging.LogRecord, added: frozenset[str]) -> bool:
    """Take the group-share scopes count_group_shares_in_tokens adds out of JupyterHub's lines about a token's
    discarded scopes: it does not discard them, and they would name a member with their group's server. Returns
    False when nothing is left to say."""
    if record.msg == _OWNER_AND_TOKEN and isinstance(record.args, tuple) and len(record.args) == 3:
        owner, owner_scopes, token_scopes = record.args
        record.args = (owner, owner_scopes, sorted(set(token_scopes) - added))
        return True
    found = _DISCARDED.match(record.getMessage())
    if not found:
        return True
    left = sorted({a or b for a, b in _QUOTED.findall(found["scopes"])} - added)
    record.msg, record.args = f"discarding scopes [{left}], not present in roles of owner {found['owner']}", ()
    return bool(left)


class HideStaff(logging.Filter):
    """Keep who the course's TAs are out of the hub's log.

    At start-up JupyterHub names the users of a role it creates (``Creating user X found in role:
    coursehub-staff``) and then gives them the default role (``Adding role user for User: X``), so the TA is
    named with the role or next to it, and later lines (log-ins, request lines) say what the TA does. Every hub
    message naming a TA says ``a TA`` instead.
    """

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__()
        self.names = frozenset(names)
        alternatives = "|".join(map(re.escape, sorted(self.names, key=len, reverse=True)))
        # a whole user name, not part of a longer one (ta-x in ta-xy or ta-x.y); followed by @ it is still the
        # name: request lines say `(ta-x@10.0.0.1)` (a longer staff name, ta-x@campus.edu, is tried first)
        self.pattern = re.compile(rf"(?<![\w.@+-])(?:{alternatives})(?![\w+-]|\.\w)") if self.names else None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern is not None:
            message = record.getMessage()
            hidden = self.pattern.sub("a TA", message)
            if hidden != message:
                record.msg, record.args = hidden, ()
        return True


def hide_staff(names: Iterable[str]) -> None:
    """Put a HideStaff filter for `names` on the hub's loggers, in place of an earlier one (apply may run more
    than once in a process: the tooling checks several courses)."""
    for logger in map(logging.getLogger, (*_MEMBERSHIP_LOGGERS, "tornado.access", "tornado.general")):
        for old in [f for f in logger.filters if isinstance(f, HideStaff)]:
            logger.removeFilter(old)
        logger.addFilter(HideStaff(names))
