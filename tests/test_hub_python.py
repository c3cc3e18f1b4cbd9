"""The hub-side Python (chart/files/hub/coursehub_config.py), run against JupyterHub's real classes.

Where shared accounts become groups, roles and blocked users is that file; this
is where that is tested, first as Python, then inside a real JupyterHub app
(in-memory database) to see the permissions the hub actually derives.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from jupyterhub import orm, scopes
from jupyterhub.app import JupyterHub
from traitlets.config import Config

from coursehub import hubpython
from coursehub.paths import HUB_PYTHON

hub_python = hubpython.load()

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


def test_hub_settings_name_every_group_member_and_block_every_account() -> None:
    settings = hub_python.hub_settings(hub_python.parse(DECLARATION), "stat159")
    owned = {"coursehub.course": "stat159"}  # tells make sync-groups that coursehub owns the group
    assert settings["load_groups"] == {
        "shared-1": {"users": ["ana", "bo"], "properties": owned},
        "shared-2": {"users": ["bo", "cy@campus.edu"], "properties": owned},
        "empty.group_3": {"users": [], "properties": owned},
    }
    assert settings["blocked_users"] == set(ACCOUNTS)
    (accounts_role,) = [r for r in settings["load_roles"] if r["name"] == hub_python.ACCOUNTS_ROLE]
    assert accounts_role["users"] == ACCOUNTS and accounts_role["scopes"] == []


def test_apply_keeps_the_hubs_own_groups_roles_and_blocked_users() -> None:
    c = Config()
    c.JupyterHub.load_groups = {"instructors": {"users": ["prof"]}}
    c.JupyterHub.load_roles = [{"name": "graders", "scopes": ["list:users"], "users": ["ta"]}]
    c.Authenticator.blocked_users = ["banned"]  # as YAML gives it: a list
    hub_python.apply(c, DECLARATION)
    assert set(c.JupyterHub.load_groups) == {"instructors", "shared-1", "shared-2", "empty.group_3"}
    assert [r["name"] for r in c.JupyterHub.load_roles][:1] == ["graders"]
    assert c.Authenticator.blocked_users == {"banned", *ACCOUNTS}


def test_apply_resolves_lazy_config_values() -> None:
    c = Config()
    c.Authenticator.blocked_users.add("banned")  # a traitlets LazyConfigValue
    hub_python.apply(c, DECLARATION)
    assert c.Authenticator.blocked_users == {"banned", *ACCOUNTS}


def test_a_group_declared_twice_over_is_refused() -> None:
    c = Config()
    c.JupyterHub.load_groups = {"shared-1": {"users": []}}
    with pytest.raises(hub_python.DeclarationError, match=r"also in hub\.config\.JupyterHub\.load_groups"):
        hub_python.apply(c, DECLARATION)


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (
            {"sharedAccounts": [{"group": "g1", "account": "a"}, {"group": "g1", "account": "b"}]},
            "sharedAccounts[1].group",
            "declared twice",
        ),
        (
            {"sharedAccounts": [{"group": "g1", "account": "a"}, {"group": "g2", "account": "a"}]},
            "sharedAccounts[1].account",
            "shared by two groups",
        ),
        ({"sharedAccounts": [{"group": "Shared 1", "account": "a"}]}, "sharedAccounts[0].group", "not a valid group"),
        (
            {"sharedAccounts": [{"group": "g1", "account": "Collab/1"}]},
            "sharedAccounts[0].account",
            "not a valid account",
        ),
        (
            {"sharedAccounts": [{"group": "g1", "account": "g1"}]},
            "sharedAccounts[0].account",
            "both a group and an account",
        ),
        ({"sharedAccounts": [{"group": "g1"}]}, "sharedAccounts[0]", "exactly the keys"),
        ({"members": {"nope": ["ana"]}}, "members.nope", "not declared in sharedAccounts"),
        ({"members": {"shared-1": ["ana", "ana"]}}, "members.shared-1[1]", "listed twice"),
        ({"members": {"shared-1": ["collab-shared-2"]}}, "members.shared-1[0]", "is a shared account"),
        ({"members": {"shared-1": ["Ana"]}}, "members.shared-1[0]", "not a valid user"),
        ({"members": {"shared-1": "ana"}}, "members.shared-1", "must be a list"),
    ],
)
def test_bad_declarations_name_the_key_and_the_fix(change: dict[str, Any], key: str, message: str) -> None:
    declaration = {**DECLARATION, "members": {}, **change}
    with pytest.raises(hub_python.DeclarationError) as caught:
        hub_python.parse(declaration)
    assert caught.value.key == key
    assert message in caught.value.problem
    assert caught.value.fix


def test_the_file_runs_as_z2jh_runs_it() -> None:
    """z2jh exec()s config.d files with `c` and its get_config() in scope; nothing else is needed."""
    c = Config()
    values = {"custom.coursehub": DECLARATION}
    namespace = {"c": c, "get_config": lambda key, default=None: values.get(key, default)}
    exec(compile(HUB_PYTHON.read_text(), HUB_PYTHON.name, "exec"), namespace)
    assert set(c.JupyterHub.load_groups) == {"shared-1", "shared-2", "empty.group_3"}
    assert c.Authenticator.blocked_users == set(ACCOUNTS)


def test_the_file_needs_nothing_beyond_the_hub_image() -> None:
    imports = [line.split()[1] for line in HUB_PYTHON.read_text().splitlines() if line.startswith(("import ", "from "))]
    assert set(imports) <= {"__future__", "logging", "re", "collections.abc", "dataclasses", "typing"}


# --- inside a real JupyterHub -------------------------------------------------------------


async def _start_hub(c: Config, log_handler: logging.Handler | None = None) -> JupyterHub:
    """JupyterHub's own start-up steps that load users, groups and roles (no proxy, no HTTP)."""
    c.JupyterHub.db_url = "sqlite://"
    c.JupyterHub.authenticator_class = "dummy"
    app = JupyterHub(config=c)
    app.init_logging()  # (re)configures the JupyterHub logger's handlers
    if log_handler:
        app.log.addHandler(log_handler)
    app.init_db()
    await app.init_role_creation()
    await app.init_users()
    await app.init_groups()
    await app.init_role_assignment()
    await app.init_blocked_users()
    return app


@pytest.fixture(scope="module")
def hub() -> JupyterHub:
    c = Config()
    c.Authenticator.manage_groups = False
    hub_python.apply(c, DECLARATION)
    return asyncio.run(_start_hub(c))


def _scopes(app: JupyterHub, name: str) -> set[str]:
    user = orm.User.find(app.db, name)
    assert user is not None, f"{name} was not created"
    return set(scopes.get_scopes_for(user))


def test_the_hub_creates_every_account_and_group(hub: JupyterHub) -> None:
    names = {u.name for u in hub.db.query(orm.User)}
    assert set(ACCOUNTS) | set(STUDENTS) <= names
    groups = {g.name: sorted(u.name for u in g.users) for g in hub.db.query(orm.Group)}
    assert groups == {"shared-1": ["ana", "bo"], "shared-2": ["bo", "cy@campus.edu"], "empty.group_3": []}


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


def test_nobody_can_log_in_as_a_shared_account(hub: JupyterHub) -> None:
    for account in ACCOUNTS:
        assert hub.authenticator.check_blocked_users(account) is False
    assert hub.authenticator.check_blocked_users("ana") is True


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
    lines = _Lines()
    app = asyncio.run(_start_hub(c, lines))
    app.log.removeHandler(lines)
    assert "Creating user ana found in a group" in lines.lines  # the line is kept, without the group
    for line in lines.lines:
        for student in STUDENTS:
            if student in line.split():
                assert not any(group in line for group in ("shared-1", "shared-2")), line


def test_access_shares_leaves_groups_and_roles_to_sync_and_still_blocks_accounts() -> None:
    c = Config()
    accounts = hub_python.apply(c, {**DECLARATION, "access": "shares"})
    assert len(accounts) == 3
    assert "load_groups" not in c.JupyterHub or c.JupyterHub.load_groups == {}
    assert [r["name"] for r in c.JupyterHub.load_roles] == []
    assert c.Authenticator.blocked_users == set(ACCOUNTS)


def test_access_shares_refuses_log_in_under_the_account_prefix_and_keeps_the_courses_hook() -> None:
    seen = []

    def course_hook(authenticator: object, handler: object, authentication: dict) -> dict:
        seen.append(authentication["name"])
        return {**authentication, "checked": True}

    c = Config()
    c.Authenticator.post_auth_hook = course_hook
    hub_python.apply(c, {**DECLARATION, "access": "shares", "roster": {"accountPrefix": "collab-"}})
    hook = c.Authenticator.post_auth_hook

    class _Auth:
        log = logging.getLogger("test")

    assert asyncio.run(hook(_Auth(), None, {"name": "collab-new-group"})) is None
    assert asyncio.run(hook(_Auth(), None, {"name": "ana"})) == {"name": "ana", "checked": True}
    assert seen == ["ana"]
