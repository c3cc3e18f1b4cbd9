"""The hub side (the coursehub_hub package, hub/), run against JupyterHub's real classes.

Where shared accounts become roles, a log-in refusal and the reconciler service
is that file; this is where that is tested, first as Python, then inside a real
JupyterHub app to see the permissions the hub actually derives. The reconciler
itself is tested on a live hub (test_semester.py, test_sync_groups.py).
"""

from __future__ import annotations

import ast
import asyncio
import gc
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jupyterhub
import pytest
from jupyterhub import orm, scopes
from jupyterhub.apihandlers import base as api_base
from jupyterhub.app import JupyterHub
from jupyterhub.user import UserDict
from sqlalchemy import event
from traitlets.config import Config

from coursehub.groups import hubpython
from coursehub.groups.sharing_db import SharingDB, server_scopes
from coursehub.paths import HUB_CONFIG_FILE, HUB_PACKAGE

hub_python = hubpython.load()
hub_patches = hubpython.patches()

DECLARATION = {
    "course": "stat159",
    "sharedAccounts": [
        {"group": "shared-1", "account": "collab-shared-1"},
        {"group": "shared-2", "account": "collab-shared-2"},
        {"group": "empty.group_3", "account": "collab-empty"},
    ],
    "members": {
        "shared-1": ["ana", "bo"],
        "shared-2": ["bo", "cy@campus.edu"],  # bo is in two groups
    },
}
STUDENTS = ["ana", "bo", "cy@campus.edu"]
ACCOUNTS = ["collab-shared-1", "collab-shared-2", "collab-empty"]
ACCESS = {
    "ana": {"collab-shared-1"},
    "bo": {"collab-shared-1", "collab-shared-2"},
    "cy@campus.edu": {"collab-shared-2"},
}


def test_each_group_gets_exactly_the_tutorial_scopes_for_its_own_account() -> None:
    (account,) = [a for a in hub_python.parse(DECLARATION) if a.group == "shared-1"]
    role = account.role()
    assert role["name"] == "coursehub-access-shared-1"
    assert role["groups"] == ["shared-1"]
    assert "users" not in role
    assert sorted(role["scopes"]) == sorted(
        [
            "access:servers!user=collab-shared-1",
            "admin:servers!user=collab-shared-1",
            "admin-ui",
            "list:users!user=collab-shared-1",
        ]
    )


def test_hub_settings_give_each_group_its_role_and_the_reconciler_only_what_it_needs() -> None:
    settings = hub_python.hub_settings(hub_python.parse(DECLARATION), "stat159")
    roles = {r["name"]: r for r in settings["load_roles"]}
    assert set(roles) == {
        "coursehub-access-shared-1",
        "coursehub-access-shared-2",
        "coursehub-access-empty.group_3",
    } | {hub_python.RECONCILER}
    reconciler = roles[hub_python.RECONCILER]
    assert reconciler["services"] == [hub_python.RECONCILER]
    # and stop an account's server (a group that loses a member), on the course's accounts only
    assert reconciler["scopes"] == ["admin:users", "admin:groups"] + [f"servers!user={a}" for a in sorted(ACCOUNTS)]
    assert settings["refused"] == {}


def test_apply_keeps_the_hubs_own_roles_services_and_blocked_users_and_blocks_no_account() -> None:
    c = Config()
    c.JupyterHub.load_roles = [{"name": "graders", "scopes": ["list:users"], "users": ["ta"]}]
    c.JupyterHub.services = [{"name": "idle-culler", "command": ["cull"]}]
    c.Authenticator.blocked_users = ["banned"]  # as YAML gives it: a list
    hub_python.apply(c, DECLARATION)
    assert [r["name"] for r in c.JupyterHub.load_roles][:1] == ["graders"]
    assert [s["name"] for s in c.JupyterHub.services] == ["idle-culler", hub_python.RECONCILER]
    # the reconciler reaches the hub on its own container's loopback, at the hub's port (z2jh: 8081)
    assert c.JupyterHub.services[1]["environment"]["COURSEHUB_API_URL"] == "http://127.0.0.1:8081/hub/api"
    assert c.Authenticator.blocked_users == ["banned"]  # shared accounts are never blocked users
    assert "load_groups" not in c.JupyterHub  # groups and members are the reconciler's


def test_apply_resolves_lazy_config_values() -> None:
    c = Config()
    c.JupyterHub.services.append({"name": "idle-culler", "command": ["cull"]})  # a traitlets LazyConfigValue
    c.JupyterHub.load_roles.append({"name": "graders", "scopes": ["list:users"]})
    hub_python.apply(c, DECLARATION)
    assert [s["name"] for s in c.JupyterHub.services] == ["idle-culler", hub_python.RECONCILER]
    assert c.JupyterHub.load_roles[0]["name"] == "graders"


def test_a_group_declared_twice_over_and_a_role_named_like_coursehubs_are_refused() -> None:
    c = Config()
    c.JupyterHub.load_groups = {"shared-1": {"users": []}}
    with pytest.raises(hub_python.DeclarationError, match=r"also in hub\.config\.JupyterHub\.load_groups"):
        hub_python.apply(c, DECLARATION)
    c = Config()
    c.JupyterHub.load_roles = [{"name": "coursehub-access-shared-1", "scopes": ["admin-ui"]}]
    with pytest.raises(hub_python.DeclarationError, match=r"also in hub\.loadRoles"):
        hub_python.apply(c, DECLARATION)


def test_names_already_on_the_hub_get_no_role_unless_coursehub_owns_them() -> None:
    accounts = hub_python.parse(DECLARATION)
    names = hub_python.HubNames(
        groups={
            "shared-1": {},  # someone else's group of that name
            "shared-2": {},  # coursehub's: in the ledger
            hub_python.ledger_name("stat159"): {"groups": {"shared-2": "collab-shared-2"}},
        },
        users={"collab-empty", "collab-shared-2"},  # collab-empty is a real user coursehub did not create
    )
    settings = hub_python.hub_settings(accounts, "stat159", "roles", names)
    assert set(settings["refused"]) == {"shared-1", "empty.group_3"}
    assert "not coursehub's" in settings["refused"]["shared-1"]
    assert "did not create" in settings["refused"]["empty.group_3"]
    assert {r["name"] for r in settings["load_roles"]} == {"coursehub-access-shared-2", hub_python.RECONCILER}
    # a group that holds the role coursehub gave it, or carries coursehub's old property, is coursehub's
    names = hub_python.HubNames(
        groups={"shared-1": {"coursehub.course": "stat159"}, "shared-2": {}}, with_role={"shared-2"}
    )
    assert hub_python.hub_settings(accounts, "stat159", "roles", names)["refused"] == {}


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (
            {"sharedAccounts": [{"group": "g1", "account": "collab-a"}, {"group": "g1", "account": "collab-b"}]},
            "sharedAccounts[1].group",
            "declared twice",
        ),
        (
            {"sharedAccounts": [{"group": "g1", "account": "collab-a"}, {"group": "g2", "account": "collab-a"}]},
            "sharedAccounts[1].account",
            "shared by two groups",
        ),
        (
            {"sharedAccounts": [{"group": "Shared 1", "account": "collab-a"}]},
            "sharedAccounts[0].group",
            "not a valid group",
        ),
        (
            {"sharedAccounts": [{"group": "g1", "account": "Collab/1"}]},
            "sharedAccounts[0].account",
            "not a valid account",
        ),
        (
            {"sharedAccounts": [{"group": "collab-g1", "account": "collab-g1"}]},
            "sharedAccounts[0].account",
            "both a group and an account",
        ),
        ({"sharedAccounts": [{"group": "g1"}]}, "sharedAccounts[0]", "exactly the keys"),
        ({"members": {"nope": ["ana"]}}, "members.nope", "not declared in sharedAccounts"),
        ({"members": {"shared-1": ["ana", "ana"]}}, "members.shared-1[1]", "listed twice"),
        ({"members": {"shared-1": ["collab-shared-2"]}}, "members.shared-1[0]", "is a shared account"),
        ({"members": {"shared-1": ["Ana"]}}, "members.shared-1[0]", "not a valid user"),
        ({"members": {"shared-1": "ana"}}, "members.shared-1", "must be a list"),
        (
            {"sharedAccounts": [{"group": "g1", "account": "team-g1"}]},
            "sharedAccounts[0].account",
            "does not start with the course's account prefix 'collab-'",
        ),
    ],
)
def test_bad_declarations_name_the_key_and_the_fix(change: dict[str, Any], key: str, message: str) -> None:
    declaration = {**DECLARATION, "members": {}, **change}
    with pytest.raises(hub_python.DeclarationError) as caught:
        hub_python.parse(declaration)
    assert caught.value.key == key
    assert message in caught.value.problem
    assert caught.value.fix


def test_the_file_runs_as_z2jh_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """z2jh exec()s config.d files with `c` and its get_config() in scope; nothing else is needed. Inside a hub
    (a JupyterHub instance is loading its config) the collector pauses until the hub polls its servers and JupyterHub's
    lookups are wrapped; run by the tooling (no JupyterHub instance) the file only builds settings."""
    monkeypatch.chdir(tmp_path)  # the default database, jupyterhub.sqlite, does not exist here: a new hub
    values = {"custom.coursehub": DECLARATION}

    async def init_spawners(app: Any) -> bool:  # stands in for JupyterHub's: is the collector on when it runs?
        return gc.isenabled()

    monkeypatch.setattr(JupyterHub, "init_spawners", init_spawners)
    c = Config()
    exec(compile(HUB_CONFIG_FILE.read_text(), HUB_CONFIG_FILE.name, "exec"), {"c": c, "get_config": values.get})
    assert gc.isenabled() and not getattr(JupyterHub.init_spawners, hub_patches.COLLECT_AFTER_LOAD_MARK, False)
    assert not getattr(JupyterHub.init_role_creation, hub_patches.ROLES_BY_NAME_MARK, False)
    assert {r["name"] for r in c.JupyterHub.load_roles} >= {"coursehub-access-shared-1", hub_python.RECONCILER}

    JupyterHub.instance()  # what JupyterHub's launch makes before it loads the config file
    try:
        c = Config()
        exec(compile(HUB_CONFIG_FILE.read_text(), HUB_CONFIG_FILE.name, "exec"), {"c": c, "get_config": values.get})
        assert not gc.isenabled()  # while the hub loads its database
        assert getattr(JupyterHub.init_role_creation, hub_patches.ROLES_BY_NAME_MARK, False)
        assert asyncio.run(JupyterHub.init_spawners(None)) is True and gc.isenabled()  # type: ignore[arg-type]
    finally:
        gc.enable()
        JupyterHub.clear_instance()
    assert {r["name"] for r in c.JupyterHub.load_roles} >= {"coursehub-access-shared-1", hub_python.RECONCILER}
    assert not (tmp_path / "jupyterhub.sqlite").exists()  # reading the database never creates one


def test_the_hub_package_needs_nothing_beyond_the_hub_image_and_importing_it_changes_nothing() -> None:
    """Top-level imports: the standard library and the package's own modules. (JupyterHub, traitlets, sqlalchemy
    and yaml, imported where they are used, are the hub image's own.) Importing it wraps nothing and leaves the
    collector on: in a fresh interpreter, after importing every module."""
    import subprocess

    for path in sorted((HUB_PACKAGE / "coursehub_hub").glob("*.py")):
        tree = ast.parse(path.read_text())
        imports = {
            alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names
        }
        imports |= {str(node.module).split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom)}
        assert imports - {"__future__", "coursehub_hub"} <= sys.stdlib_module_names, path.name
    check = (
        "import gc, coursehub_hub, coursehub_hub.config, coursehub_hub.patches, coursehub_hub.reconcile\n"
        "from jupyterhub.app import JupyterHub\n"
        "from jupyterhub import scopes\n"
        "print(gc.isenabled(), any(hasattr(f, '__wrapped__') for f in (JupyterHub.init_db, JupyterHub.start, "
        "JupyterHub.init_role_creation, scopes.get_scopes_for)))\n"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "False"]


def test_the_hubs_database_is_read_for_names_without_being_changed(tmp_path: Path) -> None:
    """read_hub_names on a database made by JupyterHub itself (its own schema)."""
    db = tmp_path / "jupyterhub.sqlite"
    c = Config()
    c.JupyterHub.db_url = f"sqlite:///{db}"
    c.JupyterHub.authenticator_class = "dummy"
    c.JupyterHub.load_roles = [
        {"name": "coursehub-access-shared-2", "scopes": ["admin-ui"], "groups": ["shared-2"]},
        {"name": "coursehub-access-other", "scopes": ["admin-ui"], "groups": ["shared-1"]},
    ]
    c.JupyterHub.load_groups = {"shared-1": {"users": ["ana"], "properties": {"coursehub.course": "stat159"}}}
    asyncio.run(_start_hub(c))
    before = db.read_bytes()
    names = hub_python.read_hub_names(f"sqlite:///{db}")
    assert names.groups == {"shared-1": {"coursehub.course": "stat159"}, "shared-2": {}}
    assert names.users == {"ana"}
    assert names.with_role == {"shared-2"}  # only the role coursehub gives a group counts
    assert db.read_bytes() == before
    assert hub_python.read_hub_names(f"sqlite:///{tmp_path / 'none.sqlite'}") == hub_python.HubNames()
    assert not (tmp_path / "none.sqlite").exists()


# What apply() wraps in-process, and the mark each of its wrappers carries: token scopes (access "shares"), the
# steps that load the roles (access "roles"), the hub's session (every course).
WRAPPED = (
    (scopes, "get_scopes_for", hub_patches.GROUP_SHARES_MARK),
    (api_base, "get_scopes_for", hub_patches.GROUP_SHARES_MARK),
    (JupyterHub, "init_role_creation", hub_patches.ROLES_BY_NAME_MARK),
    (JupyterHub, "init_role_assignment", hub_patches.ROLES_BY_NAME_MARK),
    (JupyterHub, "init_db", hub_patches.GROUPS_HELD_MARK),
    (JupyterHub, "init_spawners", hub_patches.COLLECT_AFTER_LOAD_MARK),
)
ROLE_STEPS = ("init_role_creation", "init_role_assignment")


def _jupyterhubs_own(owner: Any, name: str, mark: str) -> Any:
    """JupyterHub's own ``owner.name``, from under however many of coursehub's wrappers (marked ``mark``)."""
    function = getattr(owner, name)
    while getattr(function, mark, False):
        function = function.__wrapped__
    return function


@pytest.fixture(autouse=True)
def jupyterhubs_own_code(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with JupyterHub's own code, whatever an earlier apply() wrapped in this process, and ends
    with the garbage collector on, whatever a test of collect_after_load left."""
    for owner, name, mark in WRAPPED:
        monkeypatch.setattr(owner, name, _jupyterhubs_own(owner, name, mark))
    yield
    gc.enable()


# --- inside a real JupyterHub -------------------------------------------------------------


async def _start_hub(
    c: Config, log_handler: logging.Handler | None = None, role_queries: list[str] | None = None
) -> JupyterHub:
    """JupyterHub's own start-up steps that load users, groups and roles (no proxy, no HTTP). ``role_queries``
    collects the SQL statements of the two steps that load the roles."""
    if "db_url" not in c.JupyterHub:
        c.JupyterHub.db_url = "sqlite://"
    # no services start here (no HTTP): leave out the reconciler and its role, whose scopes are tested above
    c.JupyterHub.services = [s for s in c.JupyterHub.get("services", []) if s["name"] != hub_python.RECONCILER]
    c.JupyterHub.load_roles = [r for r in c.JupyterHub.get("load_roles", []) if r["name"] != hub_python.RECONCILER]
    c.JupyterHub.authenticator_class = "dummy"
    app = JupyterHub(config=c)
    app.init_logging()  # (re)configures the JupyterHub logger's handlers
    if log_handler:
        app.log.addHandler(log_handler)
    app.init_db()
    statements: list[str] = []
    event.listen(app.db.get_bind(), "before_cursor_execute", lambda *query: statements.append(query[2]))
    await app.init_role_creation()
    creation = len(statements)
    await app.init_users()
    await app.init_groups()
    assignment = len(statements)
    await app.init_role_assignment()
    if role_queries is not None:
        role_queries += statements[:creation] + statements[assignment:]
    await app.init_blocked_users()
    return app


@pytest.fixture(scope="module")
def hub() -> JupyterHub:
    """The config's roles, with the groups, members and accounts the reconciler keeps (here: load_groups)."""
    c = Config()
    c.Authenticator.manage_groups = False
    hub_python.apply(c, DECLARATION)
    c.JupyterHub.load_groups = {a.group: {"users": list(a.members)} for a in hub_python.parse(DECLARATION)}
    c.JupyterHub.load_roles = [*c.JupyterHub.load_roles, {"name": "accounts", "scopes": [], "users": ACCOUNTS}]
    return asyncio.run(_start_hub(c))


def _scopes(app: JupyterHub, name: str) -> set[str]:
    user = orm.User.find(app.db, name)
    assert user is not None, f"{name} was not created"
    return set(scopes.get_scopes_for(user))


@pytest.mark.parametrize("student", STUDENTS)
@pytest.mark.parametrize("account", ACCOUNTS)
def test_a_student_may_start_and_use_an_account_exactly_when_in_its_group(
    hub: JupyterHub, student: str, account: str
) -> None:
    granted = _scopes(hub, student)
    allowed = account in ACCESS[student]
    for scope in (f"access:servers!user={account}", f"servers!user={account}", f"list:users!user={account}"):
        assert (scope in granted) is allowed, scope


@pytest.mark.parametrize("student", STUDENTS)
def test_students_get_nothing_over_other_students_or_the_whole_hub(hub: JupyterHub, student: str) -> None:
    others = (set(STUDENTS) | set(ACCOUNTS)) - {student} - ACCESS[student]
    for scope in _scopes(hub, student):
        assert "!" in scope or scope in {"admin-ui"}, f"{student} has unfiltered {scope}"
        _, _, target = scope.partition("!user=")
        assert target not in others, f"{student} has {scope}"


def test_a_shared_account_keeps_its_own_scopes_at_start(hub: JupyterHub) -> None:
    """Not a blocked user: JupyterHub would revoke its roles at every start, and its server's activity reports
    would get 403."""
    for account in ACCOUNTS:
        assert hub.authenticator.check_blocked_users(account) is True
        assert f"users:activity!user={account}" in _scopes(hub, account)


class _Auth:
    """The two things the hook asks of an authenticator (any authenticator has them)."""

    log = logging.getLogger("test")

    def normalize_username(self, name: str) -> str:
        return name.lower()


def test_nobody_can_log_in_as_a_shared_account_or_under_its_prefix_and_the_courses_hook_still_runs() -> None:
    seen = []

    def course_hook(authenticator: object, handler: object, authentication: dict) -> dict:
        seen.append(authentication["name"])
        return {**authentication, "checked": True}

    for access in ("roles", "shares"):
        seen.clear()
        c = Config()
        c.Authenticator.post_auth_hook = course_hook
        hub_python.apply(c, {**DECLARATION, "access": access})
        hook = c.Authenticator.post_auth_hook
        for name in (*ACCOUNTS, "Collab-Shared-1", "collab-not-yet-declared"):
            assert asyncio.run(hook(_Auth(), None, {"name": name})) is None, name
        assert asyncio.run(hook(_Auth(), None, {"name": "ana"})) == {"name": "ana", "checked": True}
        assert seen == ["ana"]


def test_the_refusal_is_in_the_courses_authenticator_class_which_extra_config_hooks_cannot_replace() -> None:
    from jupyterhub.auth import DummyAuthenticator
    from oauthenticator.generic import GenericOAuthenticator

    c = Config()
    c.JupyterHub.authenticator_class = "generic-oauth"  # an entry point name, as values/common.yaml gives it
    c.GenericOAuthenticator.login_service = "bCourses"
    hub_python.apply(c, DECLARATION)
    chosen = c.JupyterHub.authenticator_class
    assert issubclass(chosen, GenericOAuthenticator) and chosen is not GenericOAuthenticator
    assert chosen(config=c).login_service == "bCourses"  # the course's section still configures it

    c = Config()
    c.JupyterHub.authenticator_class = DummyAuthenticator
    hub_python.apply(c, DECLARATION)
    c.Authenticator.post_auth_hook = lambda auth, handler, authentication: authentication  # extraConfig's own
    auth = c.JupyterHub.authenticator_class(config=c)
    for name in (*ACCOUNTS, "Collab-Shared-1", "collab-not-yet-declared", hub_python.HEALTH_USER):
        assert asyncio.run(auth.get_authenticated_user(None, {"username": name, "password": ""})) is None, name
    assert asyncio.run(auth.get_authenticated_user(None, {"username": "ana", "password": ""}))["name"] == "ana"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_membership_stays_out_of_the_hub_log() -> None:
    c = Config()
    c.JupyterHub.log_level = "DEBUG"
    hub_python.apply(c, DECLARATION)
    c.JupyterHub.load_groups = {a.group: {"users": list(a.members)} for a in hub_python.parse(DECLARATION)}
    lines = _Lines()
    app = asyncio.run(_start_hub(c, lines))
    app.log.removeHandler(lines)
    assert "Creating user ana found in a group" in lines.lines  # the line is kept, without the group
    for line in lines.lines:
        for student in STUDENTS:
            if student in line.split():
                assert not any(group in line for group in ("shared-1", "shared-2")), line
    record = logging.LogRecord("tornado.application", logging.INFO, "", 0, "", (), None)
    record.msg = "Sharing scopes ['access:servers!server=collab-shared-1/'] for user:ana on collab-shared-1/"
    hub_python.HideMembership().filter(record)
    assert "ana" not in record.getMessage()
    # the groups API's debug lines, at every sync that changes members
    for msg, args in (
        ("Adding: %s", (["ana", "bo"],)),
        ("Removing: %s", (["ana"],)),
        ("Users: %s", (["ana"],)),
        ("User %s already not in group %s", ("ana", "shared-1")),
    ):
        record = logging.LogRecord("JupyterHub", logging.DEBUG, "", 0, msg, args, None)
        hub_python.HideMembership().filter(record)
        assert "ana" not in record.getMessage() and "shared-1" not in record.getMessage(), record.getMessage()


def test_access_shares_loads_no_per_group_role_and_lets_the_reconciler_share_only_the_accounts() -> None:
    c = Config()
    accounts = hub_python.apply(c, {**DECLARATION, "access": "shares"})
    assert len(accounts) == 3
    (role,) = c.JupyterHub.load_roles
    assert role["name"] == hub_python.RECONCILER
    assert sorted(role["scopes"]) == sorted(
        [
            "admin:users",
            "admin:groups",
            *(f"shares!user={a}" for a in ACCOUNTS),
            *(f"servers!user={a}" for a in ACCOUNTS),
        ]
    )


# --- access "shares": a group's share reaches the OAuth token its server checks -------------------

SHARED = "collab-team-a"
ACCESS_SCOPE, START_SCOPE, READ_SCOPE = server_scopes(SHARED)


class SharedServer(SharingDB):
    """A server shared with a group, as the reconciler shares it: ana is in the group, cy is not."""

    def __init__(self) -> None:
        super().__init__()
        self.ana, self.cy = self.student("ana"), self.student("cy")
        self.group = self.share(SHARED, "team-a", [self.ana])

    def token(self, user: orm.User, token_scopes: list[str], client: str = "") -> orm.APIToken:
        """By default, the token the server's own OAuth log-in gives."""
        return super().token(user, token_scopes, client or self.client(SHARED))


@pytest.fixture
def shared() -> SharedServer:
    return SharedServer()


def test_jupyterhub_alone_leaves_a_group_share_out_of_a_members_token(shared: SharedServer) -> None:
    """Why count_group_shares_in_tokens exists: the member's session has the share, the token a server checks
    does not. When JupyterHub counts group shares for tokens itself this fails, and the wrapper can go."""
    assert ACCESS_SCOPE in scopes.get_scopes_for(shared.ana)
    assert ACCESS_SCOPE not in scopes.get_scopes_for(shared.token(shared.ana, []))


def test_with_the_fix_a_members_token_gets_what_it_asks_of_the_share_and_nobody_else_gets_anything(
    shared: SharedServer,
) -> None:
    assert hub_patches.count_group_shares_in_tokens() is True
    assert hub_patches.count_group_shares_in_tokens() is False  # once per process, however often the config runs
    server_token = scopes.get_scopes_for(shared.token(shared.ana, []))  # what the server's OAuth log-in gives
    assert ACCESS_SCOPE in server_token and not {START_SCOPE, READ_SCOPE} & server_token
    assert {ACCESS_SCOPE, START_SCOPE, READ_SCOPE} <= scopes.get_scopes_for(shared.token(shared.ana, ["inherit"]))
    api_token = scopes.get_scopes_for(shared.token(shared.ana, [START_SCOPE], client="jupyterhub"))
    assert START_SCOPE in api_token and ACCESS_SCOPE not in api_token
    for token_scopes in ([], ["inherit"]):  # not in the group: nothing of the share, whatever the token asks
        assert not {ACCESS_SCOPE, START_SCOPE, READ_SCOPE} & scopes.get_scopes_for(
            shared.token(shared.cy, token_scopes)
        )
    # the REST API's token model (the token page) lists what the token can do, the group's server included
    assert api_base.get_scopes_for(shared.token(shared.ana, [])) == server_token
    token = shared.token(shared.ana, [])
    shared.group.users.remove(shared.ana)  # removed from the group: the same token loses the server
    shared.db.commit()
    assert ACCESS_SCOPE not in scopes.get_scopes_for(token)


def test_a_members_token_gets_the_share_expanded_as_jupyterhub_checks_it(shared: SharedServer) -> None:
    """JupyterHub 6 checks start:servers (and 5.5 delete:servers) to start and stop a server, scopes that
    ``servers`` implies: the group share's scopes reach the token expanded, as the member's own session has them."""
    hub_patches.count_group_shares_in_tokens()
    session = scopes.get_scopes_for(shared.ana)
    token = scopes.get_scopes_for(shared.token(shared.ana, ["inherit"]))
    shared_with_group = {s for s in session if s.endswith(f"!server={SHARED}/")}
    assert scopes.expand_scopes({START_SCOPE}) <= shared_with_group  # start:servers on 6.x, delete:servers on both
    assert shared_with_group <= token


def test_the_fix_adds_nothing_when_jupyterhubs_internals_move(
    shared: SharedServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hub_patches.count_group_shares_in_tokens()

    def moved(token: Any) -> set[str]:
        raise TypeError("expand_scopes() got an unexpected keyword argument 'owner'")

    monkeypatch.setattr(hub_patches, "group_share_scopes", moved)
    with caplog.at_level(logging.ERROR, logger="JupyterHub"):
        assert ACCESS_SCOPE not in scopes.get_scopes_for(shared.token(shared.ana, []))
    assert "could not add group shares to a token's scopes" in caplog.text


def test_a_members_token_checks_leave_the_groups_server_out_of_the_hub_log(
    shared: SharedServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JupyterHub warns at every check of a member's token that it discards the group's server (which the fix
    then adds), naming the member with it; the hub's membership filter leaves that scope out, and the rest of
    a token's discarded scopes are still reported."""
    hub_patches.count_group_shares_in_tokens()
    beyond = shared.token(shared.ana, [])
    beyond.scopes = ["admin:users"]  # a scope ana does not hold (as if her roles had shrunk since)
    shared.db.commit()
    logger, hide = logging.getLogger("tornado.application"), hub_python.HideMembership()
    # other tests' apply() left the hub's filters on this logger: this test adds its own, and then none
    monkeypatch.setattr(logger, "filters", [f for f in logger.filters if type(f).__name__ != "HideMembership"])
    logger.addFilter(hide)
    try:
        with caplog.at_level(logging.DEBUG):
            assert ACCESS_SCOPE in scopes.get_scopes_for(shared.token(shared.ana, []))
            assert "discarding" not in caplog.text
            assert ACCESS_SCOPE in scopes.get_scopes_for(beyond) and "admin:users" not in scopes.get_scopes_for(beyond)
    finally:
        logger.removeFilter(hide)
    assert "discarding scopes" in caplog.text and "admin:users" in caplog.text
    assert SHARED not in caplog.text, caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # without the filter: what JupyterHub logs, and why it is needed
        scopes.get_scopes_for(shared.token(shared.ana, []))
    assert "discarding scopes" in caplog.text and SHARED in caplog.text and "ana" in caplog.text


def test_every_wrapper_is_proven_on_the_jupyterhub_these_tests_run() -> None:
    """`make test` runs this file on the hub image's JupyterHub and on the newest 6.x: each must be in PROVEN_ON,
    so moving to a new JupyterHub fails here until its equivalence tests pass on it and it is added."""
    assert jupyterhub.__version__ in hub_patches.PROVEN_ON


def test_on_an_unproven_jupyterhub_nothing_is_wrapped_and_access_shares_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_patches, "running_jupyterhub", lambda: "5.6.0")
    lines = _Lines()
    log = logging.getLogger("JupyterHub")
    log.addHandler(lines)
    try:
        assert hub_patches.install_patches("roles") is False
        for owner, name, mark in WRAPPED:
            assert not getattr(getattr(owner, name), mark, False), name
        with pytest.raises(SystemExit) as stopped:
            hub_patches.install_patches("shares")
    finally:
        log.removeHandler(lines)
    assert stopped.value.code == 1 and not getattr(scopes.get_scopes_for, hub_patches.GROUP_SHARES_MARK, False)
    warning, critical = lines.lines
    assert "JupyterHub 5.6.0" in warning and "none is installed" in warning and "\n" not in warning
    assert "access: shares" in critical and "this hub runs 5.6.0: not starting" in critical and "\n" not in critical


def test_an_operator_can_leave_out_a_wrapper_by_name_and_a_name_that_is_none_stops_the_hub() -> None:
    """$COURSEHUB_HUB_WRAPPERS_OFF (hub.extraEnv): what make bench turns off to measure what each wrapper buys."""
    off = {hub_patches.WRAPPERS_OFF_ENV: " keep_groups_in_memory,find_roles_by_name_at_start "}
    assert hub_patches.install_patches("roles", off) is True
    assert not getattr(JupyterHub.init_db, hub_patches.GROUPS_HELD_MARK, False)
    assert not getattr(JupyterHub.init_role_creation, hub_patches.ROLES_BY_NAME_MARK, False)
    lines = _Lines()
    log = logging.getLogger("JupyterHub")
    log.addHandler(lines)
    try:
        with pytest.raises(SystemExit) as stopped:  # a typo would leave on what the operator meant to turn off
            hub_patches.install_patches("shares", {hub_patches.WRAPPERS_OFF_ENV: "count_group_shares_in_tokens"})
    finally:
        log.removeHandler(lines)
    assert stopped.value.code == 1 and not getattr(scopes.get_scopes_for, hub_patches.GROUP_SHARES_MARK, False)
    (line,) = lines.lines
    assert "COURSEHUB_HUB_WRAPPERS_OFF names count_group_shares_in_tokens" in line and "collect_after_load" in line


def test_only_access_shares_changes_how_jupyterhub_counts_token_scopes(shared: SharedServer) -> None:
    hub_patches.install_patches("roles")
    assert not getattr(scopes.get_scopes_for, hub_patches.GROUP_SHARES_MARK, False)
    hub_patches.install_patches("shares")
    assert getattr(scopes.get_scopes_for, hub_patches.GROUP_SHARES_MARK, False)


def test_building_settings_wraps_nothing_of_jupyterhubs() -> None:
    for access in ("roles", "shares"):
        hub_python.apply(Config(), {**DECLARATION, "access": access})
        for owner, name, mark in WRAPPED:
            assert not getattr(getattr(owner, name), mark, False), (access, name)
    assert gc.isenabled()


# --- the course's staff (TAs): one role ----------------------------------------------------

STAFF = ["ta-x", "ta-y@campus.edu"]
STAFFED = {**DECLARATION, "staff": STAFF}
GROUPS = ["shared-1", "shared-2", "empty.group_3"]


def _staff_role(settings_roles: list[dict[str, Any]]) -> dict[str, Any]:
    (role,) = [r for r in settings_roles if r["name"] == hub_python.STAFF_ROLE]
    return role


def test_the_staff_role_has_exactly_the_ta_scopes_for_every_account_and_declared_group() -> None:
    c = Config()
    hub_python.apply(c, STAFFED)
    role = _staff_role(c.JupyterHub.load_roles)
    assert role["users"] == STAFF and "groups" not in role and "services" not in role
    expected = ["admin-ui"]
    for group, account in zip(GROUPS, ACCOUNTS, strict=True):
        expected += [
            f"access:servers!user={account}",  # use the server
            f"servers!user={account}",  # start, stop, read it (not admin:servers: no server state)
            f"list:users!user={account}",  # see it in the admin page
            f"groups!group={group}",  # see the group and its members, add and remove members
            f"list:users!group={group}",  # see its students by name in the admin page
        ]
    assert sorted(role["scopes"]) == sorted(expected)


def test_no_staff_no_role_and_the_course_without_staff_is_unchanged() -> None:
    with_staff, without = Config(), Config()
    hub_python.apply(with_staff, STAFFED)
    hub_python.apply(without, {**DECLARATION, "staff": []})
    assert [r for r in with_staff.JupyterHub.load_roles if r["name"] != hub_python.STAFF_ROLE] == list(
        without.JupyterHub.load_roles
    )
    assert hub_python.STAFF_ROLE not in {r["name"] for r in without.JupyterHub.load_roles}


def test_a_group_whose_name_is_taken_on_the_hub_is_not_the_staffs() -> None:
    """Another course's group of the same name gets no role: the TAs get nothing on it, nor on its account."""
    names = hub_python.HubNames(groups={"shared-1": {}})
    role = _staff_role(hub_python.staff_roles(STAFFED, hub_python.parse(STAFFED), {"shared-1": "not coursehub's"}))
    assert not [s for s in role["scopes"] if s.endswith(("=shared-1", "=collab-shared-1"))]
    c = Config()
    hub_python.apply(c, STAFFED, names)
    assert _staff_role(c.JupyterHub.load_roles) == role


@pytest.mark.parametrize(
    ("staff", "key", "message"),
    [
        ("ta-x", "staff", "must be a list"),
        (["TA X"], "staff[0]", "not a valid user"),
        (["ta-x", "collab-shared-2"], "staff[1]", "is the shared account of group shared-2"),
        (["collab-someone"], "staff[0]", "starts with the course's account prefix 'collab-'"),
        (["ta-x", "ta-x"], "staff[1]", "listed twice"),
    ],
)
def test_bad_staff_lists_name_the_key_and_the_fix(staff: Any, key: str, message: str) -> None:
    c = Config()
    with pytest.raises(hub_python.DeclarationError) as caught:
        hub_python.apply(c, {**DECLARATION, "staff": staff})
    assert caught.value.key == key
    assert message in caught.value.problem
    assert caught.value.fix
    assert "load_roles" not in c.JupyterHub  # nothing was applied


def test_a_role_in_hub_load_roles_named_like_the_staff_role_is_refused() -> None:
    c = Config()
    c.JupyterHub.load_roles = [{"name": hub_python.STAFF_ROLE, "scopes": ["admin:users"], "users": ["ta-x"]}]
    with pytest.raises(hub_python.DeclarationError, match=r"'coursehub-staff' is also in hub\.loadRoles"):
        hub_python.apply(c, STAFFED)


@pytest.fixture(scope="module")
def staffed_hub() -> JupyterHub:
    """The staffed course in JupyterHub's own classes, with a foreign group beside the course's."""
    c = Config()
    c.Authenticator.manage_groups = False
    hub_python.apply(c, STAFFED)
    c.JupyterHub.load_groups = {
        **{a.group: {"users": list(a.members)} for a in hub_python.parse(STAFFED)},
        "other-course": {"users": ["ana"]},
    }
    c.JupyterHub.load_roles = [*c.JupyterHub.load_roles, {"name": "accounts", "scopes": [], "users": ACCOUNTS}]
    return asyncio.run(_start_hub(c))


# What JupyterHub 5.5 gives a user for themselves (scopes._expand_self_scope): every TA has it as a user.
_SELF = {"read:users", "read:users:name", "read:users:groups", "users:shares", "read:users:shares", "read:shares"}
_SELF |= {"users:activity", "read:users:activity", "servers", "delete:servers", "read:servers", "tokens"}
_SELF |= {"read:tokens", "access:servers"}


@pytest.mark.parametrize("ta", STAFF)
def test_a_tas_expanded_scopes_reach_only_the_accounts_the_declared_groups_and_themselves(
    staffed_hub: JupyterHub, ta: str
) -> None:
    """Expanded by JupyterHub itself (subscopes included): the admin page, their own things as any user has them,
    and only filtered scopes on the accounts and the declared groups; nothing on another user or group, and no
    scope that creates, deletes or administers users or groups, or reads anyone else's tokens."""
    on_account = {"access:servers", "servers", "read:servers", "delete:servers", "list:users", "read:users:name"}
    on_group = {"groups", "read:groups", "list:groups", "read:groups:name", "list:users", "read:users:name"}
    own = set(_SELF)
    if int(jupyterhub.__version__.split(".")[0]) >= 6:  # JupyterHub 6 expands `servers` to `start:servers` too
        on_account.add("start:servers")
        own.add("start:servers")
    expected = {"admin-ui"} | {f"{s}!user={ta}" for s in own}
    expected |= {f"{s}!user={a}" for s in on_account for a in ACCOUNTS}
    expected |= {f"{s}!group={g}" for s in on_group for g in GROUPS}
    granted = _scopes(staffed_hub, ta)
    assert granted == expected, (sorted(granted - expected), sorted(expected - granted))
    bases = {s.partition("!")[0] for s in granted}
    for never in ("admin:users", "admin:groups", "delete:groups", "delete:users", "admin:servers", "shares"):
        assert never not in bases, never
    assert not [s for s in granted if s.endswith(("=other-course", "=ana", "=bo"))]


def test_a_student_gets_nothing_from_the_staff_role(staffed_hub: JupyterHub) -> None:
    assert "admin-ui" in _scopes(staffed_hub, "ana")  # from the group role: the tutorial's limited admin page
    assert not [s for s in _scopes(staffed_hub, "ana") if s.startswith(("groups", "list:users!group"))]


def test_staff_names_stay_out_of_the_hub_log() -> None:
    """JupyterHub creates a role's users it does not know yet and says so, with the role: not for the staff."""
    c = Config()
    c.JupyterHub.log_level = "DEBUG"
    hub_python.apply(c, STAFFED)
    lines = _Lines()
    app = asyncio.run(_start_hub(c, lines))
    app.log.removeHandler(lines)
    assert lines.lines.count(f"Creating user a TA found in role: {hub_python.STAFF_ROLE}") == len(STAFF)
    for name in STAFF:
        assert orm.User.find(app.db, name) is not None  # created, holding the role
        assert not [line for line in lines.lines if name in line]


@pytest.mark.parametrize(
    ("message", "hidden"),
    [
        ("Creating user ta-x found in role: coursehub-staff", "Creating user a TA found in role: coursehub-staff"),
        ("200 GET /hub/api/users (ta-x@127.0.0.1) 3.1ms", "200 GET /hub/api/users (a TA@127.0.0.1) 3.1ms"),
        ("User logged in: ta-y@campus.edu", "User logged in: a TA"),
        ("User logged in: ta-xy", "User logged in: ta-xy"),  # another user, whose name begins like a TA's
        ("User logged in: ta-x.", "User logged in: a TA."),
    ],
)
def test_the_staff_filter_hides_whole_names_only(message: str, hidden: str) -> None:
    record = logging.LogRecord("JupyterHub", logging.INFO, "", 0, message, (), None)
    hub_python.HideStaff(STAFF).filter(record)
    assert record.getMessage() == hidden


# --- many groups: their roles at every start ------------------------------------------------


def _course_of(groups: range, staff: list[str]) -> dict[str, Any]:
    return {
        "course": "stat159",
        "sharedAccounts": [{"group": f"g-{i:03}", "account": f"collab-g-{i:03}"} for i in groups],
        "members": {f"g-{i:03}": [f"s-{i:03}"] for i in groups},
        "staff": staff,
    }


# A semester's starts: the first, a restart, a deploy that drops ten groups, adds five and changes the TAs, and
# a restart after it.
SEMESTER = [
    _course_of(range(60), ["ta-1", "ta-2"]),
    _course_of(range(60), ["ta-1", "ta-2"]),
    _course_of(range(10, 65), ["ta-2", "ta-3"]),
    _course_of(range(10, 65), ["ta-2", "ta-3"]),
]


def _roles_in(app: JupyterHub) -> dict[str, Any]:
    """Every role in the hub's database: its description, its scopes and who holds it."""
    return {
        role.name: (
            role.description,
            sorted(role.scopes),
            sorted(u.name for u in role.users),
            sorted(g.name for g in role.groups),
            sorted(s.name for s in role.services),
        )
        for role in app.db.query(orm.Role)
    }


def _semester_of_starts(
    db: Path, monkeypatch: pytest.MonkeyPatch, *, coursehubs_lookups: bool
) -> list[tuple[dict[str, Any], int]]:
    """Each start of SEMESTER on one database: the roles it leaves there and the queries that loaded them."""
    starts = []
    for declaration in SEMESTER:
        c = Config()
        c.JupyterHub.db_url = f"sqlite:///{db}"
        c.JupyterHub.load_roles = [{"name": "hub-own", "scopes": ["read:users"], "users": ["ops"]}]
        hub_python.apply(c, declaration)
        hub_patches.install_patches("roles")  # as the config file does inside a hub
        if not coursehubs_lookups:
            for step in ROLE_STEPS:
                monkeypatch.setattr(
                    JupyterHub, step, _jupyterhubs_own(JupyterHub, step, hub_patches.ROLES_BY_NAME_MARK)
                )
        queries: list[str] = []
        app = asyncio.run(_start_hub(c, role_queries=queries))
        starts.append((_roles_in(app), len(queries)))
        app.db.close()
    return starts


def test_the_hub_loads_its_roles_in_a_few_queries_to_exactly_what_jupyterhub_alone_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A course of 1,000 groups with access "roles" has 1,000 roles to load at every start, so at every deploy:
    JupyterHub alone makes about seven queries for each. With coursehub's lookups (find_roles_by_name_at_start)
    the same starts write the same roles, scopes and holders, and a restart's queries do not grow with the groups."""
    alone = _semester_of_starts(tmp_path / "alone.sqlite", monkeypatch, coursehubs_lookups=False)
    indexed = _semester_of_starts(tmp_path / "indexed.sqlite", monkeypatch, coursehubs_lookups=True)
    for start, ((expected, _), (found, _)) in enumerate(zip(alone, indexed, strict=True)):
        assert found == expected, f"start {start}"
    # the deploy changed what there was to change
    before, after = indexed[1][0], indexed[2][0]
    assert "coursehub-access-g-000" in before and "coursehub-access-g-000" not in after
    assert after["coursehub-access-g-064"][3] == ["g-064"] and after["hub-own"][2] == ["ops"]
    assert (before[hub_python.STAFF_ROLE][2], after[hub_python.STAFF_ROLE][2]) == (["ta-1", "ta-2"], ["ta-2", "ta-3"])
    for start in (1, 3):  # the restarts: JupyterHub alone, several per role; with the index, about thirty in all
        groups = len(SEMESTER[start]["sharedAccounts"])
        assert alone[start][1] >= 5 * groups, alone[start][1]
        assert indexed[start][1] <= alone[start][1] / 10, (indexed[start][1], alone[start][1])


def test_when_jupyterhubs_lookups_move_the_hub_loads_its_roles_its_own_way_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orm.Role, "find", staticmethod(orm.Role.find))  # what coursehub indexes is not there
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    c = Config()
    c.JupyterHub.db_url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    hub_python.apply(c, SEMESTER[0])
    hub_patches.install_patches("roles")
    queries: list[str] = []
    app = asyncio.run(_start_hub(c, handler, role_queries=queries))
    roles = _roles_in(app)
    app.db.close()
    assert roles["coursehub-access-g-059"][3] == ["g-059"]
    assert records.count("coursehub: roles are looked up one by one at this start") == 2  # both steps
    assert len(queries) >= 5 * len(SEMESTER[0]["sharedAccounts"])


# --- the hub's groups between requests --------------------------------------------------------


def _read_every_groups_members(app: JupyterHub) -> int:
    """What GET /groups reads (each group and its members) in a request of its own; returns the queries made."""
    gc.collect()  # what the request before left behind, as the collector would have by then
    statements: list[str] = []
    listener = lambda *query: statements.append(query[2])  # noqa: E731
    event.listen(app.db.get_bind(), "before_cursor_execute", listener)
    try:
        models = {group.name: [user.name for user in group.users] for group in app.db.query(orm.Group)}
    finally:
        event.remove(app.db.get_bind(), "before_cursor_execute", listener)
    assert models["g-007"] == ["s-007"]
    return len(statements)


def test_the_hub_reads_its_groups_members_once_not_at_every_request(tmp_path: Path) -> None:
    """After a start nothing in JupyterHub refers to a group (its users are loaded as they are used): alone, each
    read of the groups loads every group's members again; with coursehub's config, once."""
    course = {**_course_of(range(40), []), "access": "shares"}
    db_url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    first = Config()
    first.JupyterHub.db_url = db_url
    first.JupyterHub.load_groups = {a.group: {"users": list(a.members)} for a in hub_python.parse(course)}
    asyncio.run(_start_hub(first)).db.close()  # the groups and members, as the reconciler would have made them

    alone = asyncio.run(_start_hub(Config({"JupyterHub": {"db_url": db_url}})))  # a restart, JupyterHub's own
    _read_every_groups_members(alone)
    assert _read_every_groups_members(alone) >= 40
    alone.db.close()

    c = Config()
    c.JupyterHub.db_url = db_url
    hub_python.apply(c, course)
    hub_patches.install_patches(str(course.get("access", "roles")))
    app = asyncio.run(_start_hub(c))  # a restart with coursehub's config
    _read_every_groups_members(app)
    assert _read_every_groups_members(app) <= 3  # the groups and what they refer to, nothing per group
    held = app.db.info[hub_patches.HELD_GROUPS]
    assert len(held) == 40
    app.db.close()
    assert not held  # the session closed: nothing is kept beyond it


# --- the collector while the database loads ---------------------------------------------------


def _collections_during(start: Any) -> tuple[Any, list[int]]:
    """``start()``'s result, and the generation of each cyclic-collector pass made while it ran."""
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(count)
    try:
        return start(), passes
    finally:
        gc.callbacks.remove(count)


def test_jupyterhub_alone_runs_the_collector_while_it_loads_and_the_hubs_pause_holds_until_its_servers_are_polled(
    tmp_path: Path,
) -> None:
    """What collect_after_load buys, and the day it buys nothing: JupyterHub alone runs the cyclic collector again
    and again while a restart loads a course's users, groups and roles (each full pass walks everything loaded so
    far). If JupyterHub ever pauses or tunes the collector itself, the first assertion fails: drop the wrapper.
    With it, no pass runs until ``init_spawners``, and the collector is on again from there."""
    course = _course_of(range(300), [])
    db_url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    first = Config()
    first.JupyterHub.db_url = db_url
    first.JupyterHub.load_groups = {a.group: {"users": list(a.members)} for a in hub_python.parse(course)}
    asyncio.run(_start_hub(first)).db.close()

    def restart_config() -> Config:
        c = Config()
        c.JupyterHub.db_url = db_url
        hub_python.apply(c, course)
        return c

    c = restart_config()
    gc.collect()
    alone, passes = _collections_during(lambda: asyncio.run(_start_hub(c)))
    alone.db.close()
    assert passes.count(1) + passes.count(2) >= 3, passes  # JupyterHub alone: older generations walked, repeatedly

    c = restart_config()
    assert hub_patches.collect_after_load()  # as the config file calls it, before JupyterHub loads anything
    paused, passes = _collections_during(lambda: asyncio.run(_start_hub(c)))
    assert passes == [] and not gc.isenabled()
    # where the hub starts polling the servers it finds running (none here: the users need only their settings)
    paused.users = UserDict(db_factory=lambda: paused.db, settings={"statsd": None, "hub": None})
    asyncio.run(paused.init_spawners())
    assert gc.isenabled()
    paused.db.close()
