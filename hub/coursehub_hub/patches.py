"""Wrappers of JupyterHub's own code, each proven on the JupyterHub versions it names, and installed only by an
explicit call from the hub's config file (``install_patches``), only inside a hub process.

Each wrapper leaves what JupyterHub writes and answers unchanged, and has an equivalence test against JupyterHub
alone in tests/test_hub_python.py; ``make test`` runs those tests on every version in ``PROVEN_ON``. On any other
JupyterHub none is installed, and the hub logs one line saying so. ``access: shares`` depends on one of them (a
member's token must count their group's share, or the group's server refuses them): on an unproven JupyterHub
the hub refuses to start in that mode, with one line, rather than deny students silently.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from coursehub_hub.names import batches

# The JupyterHub versions every wrapper here is proven on: the hub image's (image/hub/) and the newest 6.x.
PROVEN_ON = ("5.5.4", "6.1.1")


def running_jupyterhub() -> str:
    import jupyterhub

    return str(jupyterhub.__version__)


# Wrappers an operator may leave out (hub.extraEnv), by name, comma-separated: to measure what each buys (``make
# bench`` restarts a hub with and without each), or to take one out of a live hub without a new image. The token
# wrapper is not among them: ``access: shares`` is not correct without it.
WRAPPERS_OFF_ENV = "COURSEHUB_HUB_WRAPPERS_OFF"
OPTIONAL_WRAPPERS = ("find_roles_by_name_at_start", "keep_groups_in_memory", "collect_after_load")


def wrappers_off(environ: Mapping[str, str]) -> frozenset[str]:
    """The wrappers ``$COURSEHUB_HUB_WRAPPERS_OFF`` leaves out. A name that is not one of them stops the hub with
    one line: a typo would otherwise leave on what the operator meant to turn off."""
    names = frozenset(n.strip() for n in environ.get(WRAPPERS_OFF_ENV, "").split(",") if n.strip())
    unknown = sorted(names - set(OPTIONAL_WRAPPERS))
    if unknown:
        logging.getLogger("JupyterHub").critical(
            "coursehub: $%s names %s, which is no wrapper that can be left out: name any of %s, or unset it",
            WRAPPERS_OFF_ENV,
            ", ".join(unknown),
            ", ".join(OPTIONAL_WRAPPERS),
        )
        raise SystemExit(1)
    return names


def install_patches(access: str, environ: Mapping[str, str] | None = None) -> bool:
    """The wrappers of JupyterHub's own code that keep a course of a thousand groups cheap, and for ``access:
    shares`` the one that makes members' tokens count their group's share. Only for a hub process: the config
    file calls it when a JupyterHub is loading it (``in_hub``), never when the tooling runs the same file.
    ``$COURSEHUB_HUB_WRAPPERS_OFF`` (in ``environ``, default the process's) leaves out the ones it names. The
    collector's pause (``collect_after_load``) is the config file's own call, after this one.
    Returns whether they are installed (on a JupyterHub in ``PROVEN_ON``); exits the hub for ``access: shares``
    on any other."""
    log = logging.getLogger("JupyterHub")
    off = wrappers_off(os.environ if environ is None else environ)
    version = running_jupyterhub()
    if version not in PROVEN_ON:
        proven = ", ".join(PROVEN_ON)
        if access == "shares":
            log.critical(
                "coursehub: access: shares needs its token wrapper, proven on JupyterHub %s; this hub runs %s: not "
                "starting, since group members would be refused by their group's server (use a proven JupyterHub, or "
                "access: roles)",
                proven,
                version,
            )
            raise SystemExit(1)
        log.warning(
            "coursehub: JupyterHub %s: the wrappers of its start-up and session are proven on %s only, so none is "
            "installed (restarts load each role and group with JupyterHub's own queries)",
            version,
            proven,
        )
        return False
    if off:
        log.warning("coursehub: $%s leaves out %s", WRAPPERS_OFF_ENV, ", ".join(sorted(off)))
    if "keep_groups_in_memory" not in off and keep_groups_in_memory():
        log.info("coursehub: the hub keeps its groups in memory between requests (its session holds them weakly)")
    if access == "roles" and "find_roles_by_name_at_start" not in off and find_roles_by_name_at_start():
        log.info("coursehub: roles and groups are found by name from one query each while the hub loads its roles")
    if access == "shares" and count_group_shares_in_tokens():
        log.info("coursehub: tokens count their owner's group shares (access: shares shares with each group)")
    return True


def in_hub() -> bool:
    """Whether this process is a JupyterHub loading its config (traitlets' public singleton check: JupyterHub's
    launch makes its one instance before it reads config files). The tooling runs z2jh's config on its own."""
    from jupyterhub.app import JupyterHub

    return JupyterHub.initialized()


GROUP_SHARES_MARK = "coursehub_group_shares"  # on the wrapped function: the fix is applied once per process
# The group-share scopes the wrapper adds to the token JupyterHub is working out the scopes of (none outside it)
ADDED_GROUP_SHARES: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "coursehub_added_group_shares", default=frozenset()
)


def group_share_scopes(token: Any) -> set[str]:
    """The scopes of the shares made with the groups of a user's token's owner that the token asks for."""
    from jupyterhub import scopes

    user = token.user
    granted = {s for group in user.groups for share in group.shared_with_me for s in share.scopes}
    if not granted or "inherit" in (token.scopes or ()):
        return granted
    client = token.oauth_client
    asked = set(scopes.expand_scopes(token.scopes, owner=user, oauth_client=client))
    if client is not None and token.client_id != "jupyterhub":
        asked |= set(scopes.access_scopes(client))  # what JupyterHub grants every token of this client
    return granted & asked


def count_group_shares_in_tokens() -> bool:
    """Give a user's tokens the scopes of the shares made with the user's groups, as their session has.

    JupyterHub 5 (5.5, and 6.1 still) counts a server shared with a group for a member's own session
    (``scopes.get_scopes_for(user)``), but for a token it adds only the shares made with the user by name. The
    OAuth token a server checks is such a token, so a member could start a server shared with their group
    and then be refused by it. ``access: shares`` shares each account's server with its group (one request
    per group, and a member moved between groups is two membership changes), so coursehub wraps
    ``jupyterhub.scopes.get_scopes_for``: a user's token also gets a group share's scopes, and only those
    the token itself asks for (exactly, filters included); anything else is JupyterHub's answer unchanged.
    If the wrapper's own work fails it logs the error and adds nothing. Returns whether it was applied now.
    """
    from jupyterhub import orm, scopes
    from jupyterhub.apihandlers import base as api_base

    log = logging.getLogger("JupyterHub")

    def wrap(original: Any) -> Any:
        @functools.wraps(original)
        def get_scopes_for(orm_object: Any) -> Any:
            if not isinstance(orm_object, orm.APIToken) or orm_object.user is None:
                return original(orm_object)
            try:
                # expanded, as JupyterHub's own answer is: JupyterHub 6 checks start:servers, which servers implies
                added = frozenset(scopes.expand_scopes(group_share_scopes(orm_object)))
            except Exception:  # a JupyterHub whose internals moved: its own answer, and one line saying why
                log.exception("coursehub: could not add group shares to a token's scopes; JupyterHub's answer stands")
                return original(orm_object)
            # JupyterHub warns that it discards the scopes added here, naming the member and the group's server,
            # at every check of a member's token: HideMembership leaves those scopes out of that line while set
            reset = ADDED_GROUP_SHARES.set(added)
            try:
                found = original(orm_object)
            finally:
                ADDED_GROUP_SHARES.reset(reset)
            return found | added

        return get_scopes_for

    original = scopes.get_scopes_for
    if not _wrap_once(scopes, "get_scopes_for", GROUP_SHARES_MARK, wrap):
        return False
    # The REST API's token model (GET /users/:name/tokens, the token page) imported the function by name: without
    # this it would list a member's token without the group's server it can use.
    if getattr(api_base, "get_scopes_for", None) is original:
        api_base.get_scopes_for = scopes.get_scopes_for
    return True


ROLES_BY_NAME_MARK = "coursehub_roles_by_name"  # on the wrapped start-up steps: applied once per process


def _name_index(db: Any, kind: Any, rows: Iterable[Any]) -> Any:
    """Make ``kind.find(db, name)`` answer from ``rows`` (by name) until the context ends, and from JupyterHub's own
    query for a name they do not hold, another session, or a row no longer in this one."""
    own = kind.__dict__.get("find")  # the classmethod itself, put back as it was
    if not isinstance(own, classmethod):
        raise TypeError(f"{kind.__name__}.find is not the classmethod coursehub indexes")
    index = {row.name: row for row in rows}

    def find(cls: Any, session: Any, name: str) -> Any:
        row = index.get(name)
        if row is not None and session is db and row in session:
            return row
        return own.__func__(cls, session, name)

    @contextlib.contextmanager
    def indexed() -> Any:
        kind.find = classmethod(find)
        try:
            yield
        finally:
            kind.find = own

    return indexed()


def _looked_up_by_name(step: Any, members: bool) -> Any:
    """JupyterHub's start-up step ``step``, with roles (and, for the assignment step, groups) found by name from one
    query each. If the index cannot be built, one log line says so and the step runs as JupyterHub wrote it."""
    from jupyterhub import orm
    from sqlalchemy.orm import selectinload

    def indexes(app: Any) -> list[tuple[Any, Iterable[Any]]]:
        db = app.db
        if not members:
            return [(orm.Role, db.query(orm.Role).all())]
        # the assignment step replaces each role's member lists: load them with the roles
        names = [str(spec["name"]) for spec in app.load_roles]
        lists = [selectinload(orm.Role.users), selectinload(orm.Role.services), selectinload(orm.Role.groups)]
        roles = [
            r
            for part in batches(names, 500)
            for r in db.query(orm.Role).filter(orm.Role.name.in_(part)).options(*lists)
        ]
        return [(orm.Role, roles), (orm.Group, db.query(orm.Group).all())]

    @functools.wraps(step)
    async def run(app: Any) -> Any:
        with contextlib.ExitStack() as stack:
            try:
                for kind, rows in indexes(app):
                    stack.enter_context(_name_index(app.db, kind, rows))
            except Exception:  # a JupyterHub whose internals moved: its own lookups, and one line saying why
                logging.getLogger("JupyterHub").exception("coursehub: roles are looked up one by one at this start")
            return await step(app)

    return run


def _wrap_once(owner: Any, name: str, mark: str, wrap: Any) -> bool:
    """Put ``wrap(own)`` in place of ``owner.name``, marked ``mark``, unless it is already there (apply() may run more
    than once in a process). Returns whether it was applied now."""
    own = getattr(owner, name)
    if getattr(own, mark, False):
        return False
    wrapped = wrap(own)
    setattr(wrapped, mark, True)
    setattr(owner, name, wrapped)
    return True


def find_roles_by_name_at_start() -> bool:
    """Let the hub's start load a thousand roles in a few queries rather than thousands.

    JupyterHub 5.5 loads ``load_roles`` one role at a time: ``init_role_creation`` looks each role up by name
    twice, ``init_role_assignment`` once more, then its group by name, then each of its member lists. That is
    about seven queries per role: five seconds at every start (so at every deploy) for a course of 1,000 groups
    with ``access: roles``. coursehub wraps both steps: while they run, ``Role.find`` and ``Group.find`` answer
    from a name index built by one query each (the assignment step's with the roles' member lists loaded in the
    same go), and from JupyterHub's own query for any name the index does not hold (a role or group the step
    itself creates). JupyterHub's steps run unchanged, so they write the same roles and assignments; only the
    lookups change. If the index cannot be built, one log line says so and the step does its own lookups.
    Returns whether it was applied now.
    """
    from jupyterhub.app import JupyterHub

    created = _wrap_once(
        JupyterHub, "init_role_creation", ROLES_BY_NAME_MARK, lambda own: _looked_up_by_name(own, members=False)
    )
    assigned = _wrap_once(
        JupyterHub, "init_role_assignment", ROLES_BY_NAME_MARK, lambda own: _looked_up_by_name(own, members=True)
    )
    return created and assigned


GROUPS_HELD_MARK = "coursehub_groups_held"  # on the wrapped JupyterHub.init_db: applied once per process
HELD_GROUPS = "coursehub.groups"  # the key, in the hub session's ``info``, of the groups it keeps


def hold_groups(session: Any) -> None:
    """Keep a reference to each group ``session`` loads or creates, until it is deleted or leaves the session."""
    from jupyterhub import orm
    from sqlalchemy import event

    held: set[Any] = session.info.setdefault(HELD_GROUPS, set())

    def hold(_: Any, instance: Any) -> None:
        if isinstance(instance, orm.Group):
            held.add(instance)

    def drop(_: Any, instance: Any) -> None:
        held.discard(instance)

    # SQLAlchemy's own lifecycle events: read from the database, created and written, deleted, expunged or closed
    for name, listener in (
        ("loaded_as_persistent", hold),
        ("pending_to_persistent", hold),
        ("persistent_to_deleted", drop),
        ("persistent_to_detached", drop),
    ):
        event.listen(session, name, listener)


def keep_groups_in_memory() -> bool:
    """Keep each group the hub's database session has, with what it has read of it, for as long as it has it.

    SQLAlchemy's session refers to what it has loaded weakly, and once a request is over nothing in JupyterHub
    5.5 refers to a group (it keeps its users in ``JupyterHub.users``, as they are used, but never its groups).
    So each GET /groups after a restart loaded every group again and then its members, one query per group and
    more per member: for the reconciler's read of a 1,000-group course, 2 s of every run, so of every change
    from the roster to the hub. coursehub wraps ``JupyterHub.init_db`` so that the hub's session keeps each
    group (``hold_groups``) in its ``info``, as JupyterHub keeps its users. Returns whether it was applied now.
    """
    from jupyterhub.app import JupyterHub

    def wrap(own: Any) -> Any:
        @functools.wraps(own)
        def init_db(app: Any) -> Any:
            made = own(app)
            hold_groups(app.db)
            return made

        return init_db

    return _wrap_once(JupyterHub, "init_db", GROUPS_HELD_MARK, wrap)


COLLECT_AFTER_LOAD_MARK = "coursehub_collect_after_load"  # on the wrapped JupyterHub.init_spawners


def collect_after_load() -> bool:
    """Pause Python's cyclic garbage collector from here (the hub's config) until ``JupyterHub.init_spawners``.

    Between the two JupyterHub loads its database: every user, and with ``access: roles`` every role and group,
    thousands of objects that live as long as the hub. While they are being made the collector runs again and
    again, and each of its full passes walks all of them: with 1,000 groups about 0.4 s of a 2 s restart here.
    Objects freed by reference counting are freed as usual; only reference cycles wait, until the hub starts
    polling the servers it finds running (``init_spawners``, which may take a while with many servers), where the
    collector resumes. Runs inside the hub only (not when the tooling imports this file). Returns whether it was
    applied now.
    """
    import gc

    from jupyterhub.app import JupyterHub

    def wrap(own: Any) -> Any:
        @functools.wraps(own)
        async def init_spawners(app: Any, *args: Any, **kwargs: Any) -> Any:
            gc.enable()
            return await own(app, *args, **kwargs)

        return init_spawners

    if not _wrap_once(JupyterHub, "init_spawners", COLLECT_AFTER_LOAD_MARK, wrap):
        return False
    gc.disable()
    return True
