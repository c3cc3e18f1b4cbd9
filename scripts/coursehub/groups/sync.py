"""`make sync-groups`: the hub's reconciler, run from outside against a running hub.

The same code the hub runs at every start (coursehub_hub.reconcile, in the hub image),
with an operator's token from $JUPYTERHUB_API_TOKEN (never the command line):
the course's declaration is the desired state, and the hub is brought to it,
additions and removals alike. It only touches what the course's ledger says is
coursehub's; a declared name the hub already uses for something else is a
collision, and then nothing at all is changed.

Changes are computed afresh on every run, so a second run changes nothing and
a run that failed part-way can simply be run again. Membership changes apply at
once, with no restart; with `access: roles` a new group's role (start, stop and
use the account's server) loads only when the hub starts. See docs/topics/shared-accounts.md.
"""

from __future__ import annotations

import os
from typing import Any

from coursehub.courses import Course, get
from coursehub.errors import CoursehubError, Problem
from coursehub.groups import hubpython

TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
CANVAS_TOKEN_ENV = "CANVAS_API_TOKEN"  # else the course's lms.token, from its private layer
SCOPES = "admin:users, admin:groups, servers (and for access: shares, shares)"


def hub_api(url: str, token: str) -> Any:
    return hubpython.reconciler().HubAPI(url.rstrip("/") + "/hub/api", token)


def sync(
    course: Course,
    url: str,
    dry_run: bool,
    out: Any,
    recheck: bool = False,
    accept_removals: int | None = None,
    lms_only: bool = False,
) -> int:
    """Bring the hub to the course's declaration (for a course with ``lms``: to its Canvas group set, read now).
    ``lms_only``: `make lms-plan`, which is for courses whose groups come from Canvas."""
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise CoursehubError(
            Problem(
                TOKEN_ENV, "", "is not set", f"export a token with {SCOPES} in ${TOKEN_ENV} (never on the command line)"
            )
        )
    reconciler, rules = hubpython.reconciler(), hubpython.load()
    declaration = get(course.values(), ("jupyterhub", "custom", "coursehub")) or {}
    api = hub_api(url, token)
    from_lms = declaration.get("lms") is not None
    if lms_only and not from_lms:
        raise CoursehubError(
            Problem(
                course.origin(("jupyterhub",)),
                "jupyterhub.custom.coursehub.lms",
                "is not set: this course's groups come from its values",
                "use make sync-groups DRY_RUN=1 to see what a sync would change",
            )
        )
    try:
        if from_lms:
            run = _lms_run(course, declaration, api, accept_removals, recheck)
            if run is None:
                return 1
            result = run.plan
        else:
            result = reconciler.plan(declaration, api, recheck=recheck)
    except rules.DeclarationError as e:
        raise CoursehubError(
            Problem(course.origin(("jupyterhub",)), f"jupyterhub.custom.coursehub.{e.key}", e.problem, e.fix)
        ) from None
    except reconciler.HubError as e:
        raise CoursehubError(Problem(url, "", f"could not read the hub: {e}", "nothing was changed")) from None
    if from_lms:
        _report_lms(run, out)
        if run.held:  # what it holds, change by change, then why
            for change in result.changes:
                print("held: " + change.describe(names=True), file=out)
            print(f"held, nothing changed: {run.held}", file=out)
            return 0 if dry_run else 1
    for conflict in result.conflicts:
        print(f"conflict: {conflict}", file=out)
    if result.conflicts:
        print(f"{course.name}: collisions: nothing was changed", file=out)
        return 1
    for change in result.changes:
        print(("would " if dry_run else "") + change.describe(names=True), file=out)
    if result.empty:
        print(f"{course.name}: the hub already matches the declaration; nothing to change", file=out)
    if dry_run or result.empty:
        return 0
    applied: list[Any] = []

    def report(change: Any) -> None:
        if change in result.changes:  # not the accounts and students made sure of first (Plan.ensure)
            applied.append(change)
        print(f"done: {change.describe(True)}", file=out)

    try:
        reconciler.apply(result, api, report)
    except reconciler.HubError as e:
        remaining = result.changes[len(applied) :]
        print(f"error: {e}", file=out)
        print(
            f"applied {len(applied)} of {len(result.changes)} changes; not applied: "
            + ("; ".join(c.describe(names=True) for c in remaining) or "the ledger's last update")
            + ". Run the same command again to finish.",
            file=out,
        )
        return 1
    if result.needs_restart:
        print(
            f"groups {', '.join(result.needs_restart)}: members are in, but their role (start, stop and use the "
            "account's server) loads only when the hub starts: run `make deploy` to restart it",
            file=out,
        )
    return 0


def _lms_run(
    course: Course, declaration: dict[str, Any], api: Any, accept_removals: int | None, recheck: bool = False
) -> Any:
    """Canvas's group set, read now, and the changes it asks for (the in-hub reconciler's own code)."""
    from coursehub_hub import canvas, lms

    reconciler = hubpython.reconciler()
    settings = lms.parse_lms(declaration)
    assert settings is not None
    token = os.environ.get(CANVAS_TOKEN_ENV) or settings.token
    if not token:
        raise CoursehubError(
            Problem(
                CANVAS_TOKEN_ENV,
                "",
                "is not set, and the course's secrets file has no lms.token",
                f"export the Canvas token in ${CANVAS_TOKEN_ENV} (never on the command line), or add it with "
                f"make edit-secrets COURSE={course.name}",
            )
        )
    try:
        return reconciler.plan_from_lms(
            declaration, api, canvas.CanvasAPI(settings.url, token), accept_removals, recheck=recheck
        )
    except canvas.CanvasError as e:
        raise CoursehubError(Problem(settings.url, "", f"Canvas: {e}", "nothing was changed; try again")) from None


def _report_lms(run: Any, out: Any) -> None:
    s = run.sync
    print(
        f"canvas: {len(s.declaration['sharedAccounts'])} groups ({run.canvas_requests} requests); "
        f"{s.in_no_group} students in no group (skipped); {s.losing} members taken out of a group they are in "
        "(moved or removed)",
        file=out,
    )
    if s.unmatched:
        print(f"unmatched (no hub name by lms.username): Canvas users {', '.join(s.unmatched)}", file=out)
    if s.absent:
        print(f"in no Canvas group, kept until the next sync: {', '.join(sorted(s.absent))}", file=out)
    if s.letting_go:
        print(f"in no Canvas group for the second sync: {', '.join(sorted(s.letting_go))}", file=out)
