"""coursehub's hub-side configuration: shared accounts with impersonation.

This is where a course's shared accounts become JupyterHub groups, roles and
blocked users. The chart mounts this file into the hub's
``jupyterhub_config.d/`` (``templates/hub-python-configmap.yaml``); z2jh's
``jupyterhub_config.py`` executes it after ``hub.config``, with ``c`` and
``get_config`` in scope. The declaration it reads, ``custom.coursehub`` in the
chart values, reaches the hub inside ``Secret/hub``, so group membership is
never in a ConfigMap.

The same file is imported as a plain module by coursehub's tooling (to check a
course before it is deployed) and by the tests, so the rules live only here.
It must run on the hub image alone: standard library and traitlets only.

A declaration looks like::

    course: stat159
    sharedAccounts:
      - {group: shared-1, account: collab-shared-1}
    members:                       # private: lives in the course's secrets file
      shared-1: [student-a, student-b]

and becomes, per shared account A of group G:
- the group G (``load_groups``) with the declared members;
- the role ``coursehub-access-G`` granted to G and nothing else, with exactly
  the scopes JupyterHub's collaboration-accounts tutorial names: use A's
  server, start and stop it, and see A (only A) in the admin page;
- A in ``Authenticator.blocked_users``, so nobody can log in as A;
- A created in the hub's database through the role ``coursehub-shared-accounts``
  (JupyterHub creates users named in roles; it has no other declarative way to
  create a user without also allowing it to log in).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Group names end up in role names (``coursehub-access-<group>``), which
# JupyterHub restricts to ``[a-z0-9-_~.]`` ending in a letter or digit.
GROUP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._~-]{0,61}[a-z0-9])?$")
# JupyterHub lower-cases user names before it compares them; campus log-ins
# may be e-mail addresses.
USER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._@+-]{0,126}[a-z0-9])?$")

ROLE_PREFIX = "coursehub-access-"
OWNER = "coursehub.course"  # group property: the course whose coursehub owns the group
ACCOUNTS_ROLE = "coursehub-shared-accounts"

# Lines JupyterHub logs that pair a user with a group. Membership is private:
# the filter below rewrites them so that the group is not named.
_MEMBERSHIP_LOG_LINES = (
    (re.compile(r"^Creating user (\S+) found in group: .*$"), r"Creating user \1 found in a group"),
    (re.compile(r"^Adding user \S+ to group .*$"), "Adding a user to a group"),
    (re.compile(r"^User \S+ already in group .*$"), "A user is already in that group"),
)


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
        SharedAccount(group=e["group"], account=e["account"], members=tuple(members.get(e["group"]) or ()))
        for e in entries
    ]


def _check_name(key: str, value: Any, pattern: re.Pattern[str], what: str) -> None:
    if not isinstance(value, str) or not pattern.match(value):
        allowed = (
            "lower-case letters, digits and . _ ~ -" if what == "group" else "lower-case letters, digits and . _ @ + -"
        )
        raise DeclarationError(
            key, f"{value!r} is not a valid {what} name", f"use {allowed}, starting and ending with a letter or digit"
        )


def hub_settings(accounts: Iterable[SharedAccount], course: str = "", access: str = "roles") -> dict[str, Any]:
    """The JupyterHub settings that the shared accounts add to a hub's own.

    access "roles" (the default): every group, its members and its role are
    loaded from config at each start; each group carries the property
    `coursehub.course`, which tells `make sync-groups` that coursehub owns it.
    access "shares" (large courses): config only blocks the accounts; `make
    sync-groups` keeps groups, members and one share per group (start, stop and
    use the account's server) in the hub's database, so a restart does no
    per-group work and a new group needs no restart.
    """
    accounts = list(accounts)
    if access == "shares":
        return {"load_groups": {}, "load_roles": [], "blocked_users": {a.account for a in accounts}}
    roles = [a.role() for a in accounts]
    if accounts:
        roles.append(
            {
                "name": ACCOUNTS_ROLE,
                "description": "coursehub's shared accounts (named here so that JupyterHub creates them)",
                "scopes": [],
                "users": [a.account for a in accounts],
            }
        )
    return {
        "load_groups": {a.group: {"users": list(a.members), "properties": {OWNER: course}} for a in accounts},
        "load_roles": roles,
        "blocked_users": {a.account for a in accounts},
    }


def apply(c: Any, declaration: Mapping[str, Any]) -> list[SharedAccount]:
    """Add the declared shared accounts to the traitlets config ``c``.

    What the hub's own config already has (``hub.config``, ``hub.loadRoles``)
    is kept; a group declared both there and here is an error rather than a
    silent merge.
    """
    accounts = parse(declaration)
    access = str(declaration.get("access") or "roles")
    settings = hub_settings(accounts, str(declaration.get("course") or ""), access)

    hub = c.JupyterHub
    groups = dict(_current(hub, "load_groups", {}))
    for name, spec in settings["load_groups"].items():
        if name in groups:
            raise DeclarationError(
                "sharedAccounts",
                f"group {name!r} is also in hub.config.JupyterHub.load_groups",
                "declare it in one place only",
            )
        groups[name] = spec
    hub.load_groups = groups

    roles = list(_current(hub, "load_roles", []))
    taken = {r.get("name") for r in roles}
    for role in settings["load_roles"]:
        if role["name"] in taken:
            raise DeclarationError(
                "sharedAccounts",
                f"role {role['name']!r} is also in hub.loadRoles",
                "rename or remove the hub.loadRoles entry",
            )
    hub.load_roles = roles + settings["load_roles"]

    auth = c.Authenticator
    auth.blocked_users = set(_current(auth, "blocked_users", set())) | settings["blocked_users"]

    if access == "shares":
        # `make sync-groups` creates accounts while the hub runs, before the next start adds them
        # to blocked_users: refuse any log-in under the accounts' name prefix in the meantime.
        prefix = str((declaration.get("roster") or {}).get("accountPrefix") or "collab-")
        auth.post_auth_hook = refuse_prefix(prefix, _current(auth, "post_auth_hook", None))

    logging.getLogger("JupyterHub").addFilter(_HIDE_MEMBERSHIP)
    return accounts


def refuse_prefix(prefix: str, then: Any = None) -> Any:
    """A post_auth_hook that refuses user names starting with `prefix`, then runs the course's own hook."""

    async def hook(authenticator: Any, handler: Any, authentication: dict[str, Any]) -> Any:
        if authentication and str(authentication.get("name", "")).startswith(prefix):
            authenticator.log.warning("Refused a log-in as a shared account")
            return None
        if then is None:
            return authentication
        result = then(authenticator, handler, authentication)
        return await result if hasattr(result, "__await__") else result

    return hook


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
        message = record.getMessage()
        for pattern, replacement in _MEMBERSHIP_LOG_LINES:
            if pattern.match(message):
                record.msg, record.args = pattern.sub(replacement, message), ()
                break
        return True


_HIDE_MEMBERSHIP = HideMembership()


# Executed by z2jh's jupyterhub_config.py (and by `make demo`): `c` and z2jh's
# `get_config` are in scope there, and nowhere else.
if "c" in globals() and "get_config" in globals():
    apply(c, get_config("custom.coursehub", {}))  # type: ignore[name-defined]  # noqa: F821
