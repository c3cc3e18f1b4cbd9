"""Groups from the LMS: a course's ``lms`` block, and the rule from a Canvas group set to hub groups and accounts.

A course that sets ``custom.coursehub.lms`` takes its groups from a Canvas group set instead of ``members``
(the two are exclusive)::

    lms:
      url: https://canvas.example.edu
      courseId: 1234
      groupSet: Project groups        # its exact name, or its id (a number)
      username: login_id              # or sis_user_id: the Canvas field that is the hub user name
      stripDomain: campus.edu         # optional: student-1@campus.edu is the hub user student-1
      interval: 300                   # seconds between syncs (at least 60)
      token: ...                      # private: only in the course's secrets file

The rule, stable through a term: Canvas group id N is the hub group ``canvas-N`` and the shared account
``<accountPrefix>canvas-N``. A renamed Canvas group keeps its id, so its group and account; a new one gets a new
account; a deleted one leaves the declaration and is retired as a removed group is (its account and home are
kept). Hub user names are the chosen field, lower-cased as JupyterHub's authenticators store names, with the
``stripDomain`` suffix removed; a value that is then no valid hub name (or in another domain) is left unmatched.

Each sync builds the declaration the reconciler applies (``desired``), with two holds on removals: a student in
no Canvas group keeps their hub groups until a second sync in a row finds them in none (``absent``), and a sync
that would leave more than max(5, 10 %) of the course's members in no group applies nothing until an operator
accepts it (``make sync-groups COURSE=… ACCEPT_REMOVALS=1``). Moves between groups apply at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coursehub_hub import config as rules
from coursehub_hub.canvas import GroupSet, Untrusted

GROUP_PREFIX = "canvas-"  # hub group of Canvas group N: canvas-N
USERNAME_FIELDS = ("login_id", "sis_user_id")
MIN_INTERVAL = 60
DEFAULT_INTERVAL = 300
MASS_REMOVAL_FLOOR, MASS_REMOVAL_SHARE = 5, 0.10
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


@dataclass(frozen=True)
class Lms:
    url: str
    course_id: int
    group_set: int | str
    username: str = "login_id"
    strip_domain: str = ""
    interval: int = DEFAULT_INTERVAL
    token: str = field(default="", repr=False)  # never printed
    allow_self_signup: bool = False


def parse_lms(declaration: Mapping[str, Any]) -> Lms | None:
    """The course's ``lms`` block, checked; None when its groups come from ``members``."""
    block = declaration.get("lms")
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise rules.DeclarationError("lms", "must be a mapping", "write url, courseId and groupSet under lms")
    if declaration.get("members"):  # the chart's default is {}
        raise rules.DeclarationError(
            "lms",
            "is set together with members: a course's groups come from one place",
            "remove members (and the groups file make groups wrote) to take groups from Canvas, or remove lms",
        )
    if declaration.get("sharedAccounts"):
        raise rules.DeclarationError(
            "lms", "is set together with sharedAccounts", "remove sharedAccounts: Canvas's groups make the accounts"
        )
    if declaration.get("access") != "shares":
        raise rules.DeclarationError(
            "lms",
            "needs access: shares",
            "set custom.coursehub.access: shares (a group that appears in Canvas mid-term then gets its account "
            "without a hub restart)",
        )
    url = block.get("url")
    if not isinstance(url, str) or (not re.match(r"^https://[^/\s]+(/[^\s]*)?$", url) and not _loopback(url)):
        raise rules.DeclarationError("lms.url", f"is {url!r}", "give the course's Canvas as https://<host>")
    course_id = block.get("courseId")
    if not isinstance(course_id, int) or isinstance(course_id, bool) or course_id <= 0:
        raise rules.DeclarationError("lms.courseId", f"is {course_id!r}", "give the Canvas course's number")
    group_set = block.get("groupSet")
    if isinstance(group_set, bool) or not (
        (isinstance(group_set, int) and group_set > 0) or (isinstance(group_set, str) and group_set.strip())
    ):
        raise rules.DeclarationError("lms.groupSet", f"is {group_set!r}", "give the group set's exact name or its id")
    username = block.get("username", "login_id")
    if username not in USERNAME_FIELDS:
        raise rules.DeclarationError(
            "lms.username", f"is {username!r}", f"use one of {', '.join(USERNAME_FIELDS)} (the Canvas field)"
        )
    strip = block.get("stripDomain", "")
    if strip and (not isinstance(strip, str) or not _DOMAIN.match(strip.lower())):
        raise rules.DeclarationError("lms.stripDomain", f"is {strip!r}", "give a domain such as campus.edu")
    interval = block.get("interval", DEFAULT_INTERVAL)
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < MIN_INTERVAL:
        raise rules.DeclarationError(
            "lms.interval", f"is {interval!r}", f"give the seconds between syncs, at least {MIN_INTERVAL}"
        )
    self_signup = block.get("allowSelfSignup", False)
    if not isinstance(self_signup, bool):
        raise rules.DeclarationError("lms.allowSelfSignup", f"is {self_signup!r}", "write true or false")
    known = {"url", "courseId", "groupSet", "username", "stripDomain", "interval", "token", "allowSelfSignup"}
    unknown = sorted(set(block) - known)
    if unknown:
        raise rules.DeclarationError(f"lms.{unknown[0]}", "is not an lms setting", "remove it")
    token = block.get("token") or ""
    return Lms(url.rstrip("/"), course_id, group_set, username, str(strip).lower(), interval, str(token), self_signup)


def _loopback(url: str) -> bool:
    """The tests' loopback Canvas (a test double) answers over plain HTTP on 127.0.0.1."""
    return bool(re.match(r"^http://127\.0\.0\.1:\d+$", url))


def group_name(canvas_id: int) -> str:
    return f"{GROUP_PREFIX}{canvas_id}"


def hub_name(student: Any, lms: Lms, prefix: str = rules.DEFAULT_ACCOUNT_PREFIX) -> str | None:
    """The hub user name of a Canvas student by the course's rule, or None if it has none: no valid hub name, in
    another domain (or in none) when ``stripDomain`` is set, or a name nobody may log in as (under the accounts'
    prefix, or ``coursehub-health``), which Canvas must not be able to hand a student."""
    raw = student.login_id if lms.username == "login_id" else student.sis_user_id
    if raw is None:
        return None
    name = raw.strip().lower()
    if lms.strip_domain:
        local, at, domain = name.rpartition("@")
        if not at or domain != lms.strip_domain:
            return None
        name = local
    if not rules.USER_NAME.pattern.match(name) or rules.is_refused(name, frozenset({rules.HEALTH_USER}), prefix):
        return None
    return name


@dataclass
class Sync:
    """What one sync makes of a Canvas read: the declaration to apply, and what it held back or could not match."""

    declaration: dict[str, Any]
    absent: set[str]  # hub members in no Canvas group for the first time: kept until the next sync
    letting_go: set[str]  # in no Canvas group for the second sync in a row: their groups are removed now
    in_no_group: int  # Canvas students in no group of the set (skipped, counted)
    unmatched: list[str]  # Canvas students with no hub name (their Canvas id), in no group of the hub
    mass_removal: str = ""  # why the sync is held for an operator ("" when it is not)
    losing: int = 0  # members taken out of a group they are in (moved or removed)


def desired(
    group_set: GroupSet,
    lms: Lms,
    declaration: Mapping[str, Any],
    current: Mapping[str, set[str]],
    absent_before: set[str],
    accept_removals: int | None = None,
    recent_losses: int = 0,
) -> Sync:
    """The declaration one sync applies: Canvas's groups by the stable rule, each with its matched students.
    ``current`` is the hub's members of the course's Canvas groups (group -> names), ``absent_before`` the
    students the last sync found in no group, ``recent_losses`` how many members lost a group in the syncs of the
    last 24 hours. A sync whose members losing a group (moved or removed), with the recent ones, are more than
    max(5, 10 %) of the members is held unless ``accept_removals`` is that very number (what `make lms-plan`
    showed the operator). Raises Untrusted if a student has no value in the username field (Canvas leaves log-in
    IDs out when the token's role may not see them)."""
    missing = [s for s in group_set.students if (s.login_id if lms.username == "login_id" else s.sis_user_id) is None]
    if missing:
        raise Untrusted(
            "username field",
            f"{len(missing)} of {len(group_set.students)} students have no {lms.username} (a token whose role "
            "cannot view log-in IDs gets none): use a token that can, or another username field",
        )
    prefix = rules.account_prefix(declaration)
    members: dict[str, list[str]] = {group_name(g): [] for g in sorted(group_set.groups)}
    unmatched: list[str] = []
    in_canvas: set[str] = set()
    for s in group_set.students:
        name = hub_name(s, lms, prefix)
        if name is None:
            unmatched.append(str(s.canvas_id))
            continue
        for g in sorted(s.group_ids):
            members[group_name(g)].append(name)
            in_canvas.add(name)
    was = {name for names in current.values() for name in names}
    gone = was - in_canvas
    letting_go = gone & absent_before
    held = gone - letting_go
    for group, names in current.items():  # first absence: kept where they were, if their group still exists
        if group in members:
            members[group] += sorted(n for n in names & held if n not in members[group])
    losing = {n for group, names in current.items() for n in names if n not in members.get(group, ())}
    limit = max(MASS_REMOVAL_FLOOR, int(MASS_REMOVAL_SHARE * len(was)))
    hold = ""
    if len(losing) + recent_losses > limit and accept_removals != len(losing):
        earlier = f", {recent_losses} more in the last 24 hours" if recent_losses else ""
        hold = (
            f"this sync would take {len(losing)} of {len(was)} members out of a group they are in (moved or "
            f"removed{earlier}; more than {limit}): held until an operator reads `make lms-plan` and runs "
            f"`make sync-groups ACCEPT_REMOVALS={len(losing)}`"
        )
    result = {
        **{k: v for k, v in declaration.items() if k not in ("lms", "members", "sharedAccounts")},
        # the groups' origin stays said (the ledger group then holds the accounts: rules.account_groups)
        "lms": {k: v for k, v in (declaration.get("lms") or {}).items() if k != "token"},
        "sharedAccounts": [{"group": g, "account": f"{prefix}{g}"} for g in members],
        "members": {g: sorted(set(names)) for g, names in members.items()},
    }
    return Sync(result, held, letting_go, group_set.unassigned, unmatched, hold, len(losing))
