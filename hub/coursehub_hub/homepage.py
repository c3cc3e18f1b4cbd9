"""The hub's home page shows each student their group servers: one row and one button per group account.

JupyterHub's own template mechanism only: the package's ``templates/home.html`` extends JupyterHub's
(``{% extends "templates/home.html" %}``) and comes first in ``JupyterHub.template_paths``; its data comes
through ``JupyterHub.template_vars``, whose callables JupyterHub calls with the logged-in user at every page
it renders (``BaseHandler.template_namespace``, JupyterHub 5.5 and 6.1 alike). Ours returns a function that only
the home page calls, so other pages pay nothing.

What a row holds comes from what the hub itself knows: the user's groups (the database), the declaration's
group -> account pairs (read at start, as the roles are), and the account's ``User`` and ``Spawner`` objects
in the hub's memory (``ready``, ``pending``, ``url``, ``last_activity``): the same objects its REST API reads.

Who sees what, with nothing new granted (no scope, role or handler changes):
- a student sees the declared groups they are a member of, and nothing of any other group: the group names
  are their own groups' (JupyterHub's ``self`` scope reads them too: ``read:users:groups``), the account is
  what their group's role or share already lets them start and use, and its state and last activity are in
  the server model their ``servers`` scope reads;
- a TA (the declaration's ``staff``) sees every group the staff role reaches (``config.staff_role``);
- a declared group whose name collides with something on the hub that is not coursehub's got no role and no
  share (``config.collisions``), so it gets no row either.

Nothing here logs a name or a group, and nothing leaves the hub process: the templates are in the package,
the membership is read at request time from the database.

Landing: JupyterHub's default sends a user after log-in to their own server, which it starts. A student who
works in a group account would then start a server of their own at every log-in, and never see this page. So
``JupyterHub.default_url`` (a callable: JupyterHub asks it with the request's handler) sends the users who have
rows here to the home page and leaves everyone else to JupyterHub's default (it answers ""), unless the course
chose its own ``default_url`` or ``redirect_to_server``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coursehub_hub import config
from coursehub_hub.names import batches

TEMPLATES = Path(__file__).resolve().parent / "templates"  # installed with the package (hub/pyproject.toml)
TEMPLATE_VAR = "coursehub_group_servers"  # the name home.html calls; coursehub_ template variables are ours
QUERY_BATCH = 500  # account names per `IN (...)` list: a TA of a 1,000-group course reads them in two queries


@dataclass(frozen=True)
class GroupServer:
    """One row of the home page: a group, its shared account and that account's (default) server."""

    group: str
    account: str
    # "running", "starting", "stopping", "stopped", or "not created yet" (the reconciler has not made the account)
    state: str
    url: str  # the account's server URL (User.url: its own origin with subdomain_host, else a path on the hub)
    escaped_name: str  # the account's name as JupyterHub puts it in URLs (the spawn link is built in the template)
    # The server's last activity, as the hub records it. JupyterHub does not expose who is using a server now:
    # browsers talk to the server through the proxy, and RTC presence lives inside the server's documents; the
    # hub only records activity the server and the proxy report (every 5 minutes by default). The group's member
    # list is not shown either: a student's scopes do not read it (no read:groups on their group).
    last_activity: datetime | None

    @property
    def last_activity_iso(self) -> str:
        return _utc(self.last_activity).isoformat() if self.last_activity else ""

    def last_active(self, now: datetime | None = None) -> str:
        """The last activity in words ("3 minutes ago"), "never" without one."""
        return ago(self.last_activity, now) if self.last_activity else "never"


@dataclass(frozen=True)
class HomeGroups:
    """What home.html shows: the rows, and whether the user sees them as the course's TA (every group)."""

    servers: list[GroupServer]
    as_staff: bool


def _utc(moment: datetime) -> datetime:
    """JupyterHub's database keeps naive UTC times."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def ago(moment: datetime, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or datetime.now(UTC)) - _utc(moment)).total_seconds()))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "less than a minute ago"


def server_state(spawner: Any) -> str:
    """running / starting / stopping / stopped, from the hub's Spawner object (what its REST API reports)."""
    if spawner.pending == "spawn":
        return "starting"
    if spawner.pending == "stop":
        return "stopping"
    return "running" if spawner.ready else "stopped"


class GroupServers:
    """The ``template_vars`` callable: for the logged-in user, a function home.html calls for its rows.

    ``pairs`` are the declared (group, account) pairs that got their access (in declared order), ``staff`` the
    course's TAs.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], staff: Iterable[str]) -> None:
        self.pairs = list(pairs)
        self.staff = frozenset(staff)

    def __call__(self, user: Any) -> Callable[[], HomeGroups]:
        return lambda: self.home_groups(user)

    def reachable(self, user: Any) -> list[tuple[str, str]]:
        """The (group, account) pairs `user` reaches: their own groups', or every group's for a TA."""
        if user is None or getattr(user, "orm_user", None) is None:  # nobody logged in, or a service
            return []
        if user.name in self.staff:
            return list(self.pairs)
        mine = {group.name for group in user.groups}
        return [(group, account) for group, account in self.pairs if group in mine]

    def home_groups(self, user: Any) -> HomeGroups:
        try:
            return HomeGroups(self.servers(user), user is not None and user.name in self.staff)
        except Exception as e:  # the stock home page still renders; the message could name an account: not logged
            logging.getLogger("JupyterHub").error(
                "coursehub: the home page's group servers failed (%s)", type(e).__name__
            )
            return HomeGroups([], False)

    def servers(self, user: Any) -> list[GroupServer]:
        pairs = self.reachable(user)
        if not pairs:
            return []
        from jupyterhub import orm

        users = user.settings["users"]  # the hub's UserDict: the User objects its handlers and API use
        names = [account for _, account in pairs]
        found: dict[str, Any] = {}
        for batch in batches(names, QUERY_BATCH):
            for orm_user in user.db.query(orm.User).filter(orm.User.name.in_(batch)):
                found[orm_user.name] = users[orm_user]
        return [self._row(group, found.get(account), account) for group, account in pairs]

    @staticmethod
    def _row(group: str, account: Any, name: str) -> GroupServer:
        if account is None:
            return GroupServer(group, name, "not created yet", "", "", None)
        spawner = account.spawner
        return GroupServer(
            group, name, server_state(spawner), account.url, account.escaped_name, spawner.orm_spawner.last_activity
        )

    def landing(self, handler: Any) -> str:
        """``JupyterHub.default_url``: the home page for a user with group servers, else "" (JupyterHub's own
        default: their server)."""
        if self.reachable(handler.current_user):
            return f"{handler.hub.base_url.rstrip('/')}/home"
        return ""


class LedgerGroupServers(GroupServers):
    """For a course whose groups come from Canvas (``lms``): the (group, account) pairs are the ones the reconciler
    recorded in the course's ledger, read at each request, since Canvas adds and removes groups between starts."""

    def __init__(self, course: str, staff: Iterable[str]) -> None:
        super().__init__([], staff)
        self.course = course

    def reachable(self, user: Any) -> list[tuple[str, str]]:
        if user is None or getattr(user, "orm_user", None) is None:
            return []
        from jupyterhub import orm

        ledger = user.db.query(orm.Group).filter_by(name=config.ledger_name(self.course)).one_or_none()
        pairs = sorted(((ledger.properties or {}).get("groups") or {}).items()) if ledger is not None else []
        if user.name in self.staff:
            return pairs
        mine = {group.name for group in user.groups}
        return [(group, account) for group, account in pairs if group in mine]


_current = config._current  # a trait's value in a Config section, lazy values resolved


def apply(
    c: Any,
    declaration: Mapping[str, Any],
    accounts: Sequence[config.SharedAccount],
    names: config.HubNames | None = None,
) -> GroupServers | None:
    """Give the hub the home page with group servers, for the course's `accounts` (``config.apply``'s) minus the
    groups that collide with the hub's `names`. Changes only ``c``: template paths (the package's first, the
    course's kept after it), template variables (the course's kept) and, unless the course set its own landing,
    ``default_url``. None, and nothing changed, for a course without shared accounts."""
    refused = config.collisions(accounts, str(declaration.get("course") or ""), names) if names else {}
    pairs = [(a.group, a.account) for a in accounts if a.group not in refused]
    home: GroupServers
    if declaration.get("lms") is not None:  # groups from Canvas: the ledger's, at each request
        home = LedgerGroupServers(str(declaration.get("course") or ""), config.parse_staff(declaration, accounts))
    elif pairs:
        home = GroupServers(pairs, config.parse_staff(declaration, accounts))
    else:
        return None
    hub = c.JupyterHub
    variables = dict(_current(hub, "template_vars", {}))
    if TEMPLATE_VAR in variables:
        raise config.DeclarationError(
            "sharedAccounts",
            f"hub.templateVars (JupyterHub.template_vars) already has the key {TEMPLATE_VAR!r}",
            "rename that entry (coursehub_ template variables are coursehub's)",
        )
    paths = [str(p) for p in _current(hub, "template_paths", [])]
    hub.template_paths = [str(TEMPLATES), *(p for p in paths if p != str(TEMPLATES))]
    hub.template_vars = {**variables, TEMPLATE_VAR: home}
    if "default_url" not in hub and "redirect_to_server" not in hub:
        hub.default_url = home.landing
    return home
