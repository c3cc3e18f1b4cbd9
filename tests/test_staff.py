"""The course's staff (TAs) on a live JupyterHub: one role, exactly what a TA needs.

A real JupyterHub (the hub image's) with configurable-http-proxy and real singleuser
servers (hub/local.py), configured from stat159's values with a generated
roster, two TAs in `staff`, and, beside the course, another course's group
with its own student, as on a shared hub. Through the proxy, with the TA's own
API token: every allowed action succeeds, every other one is refused; a
widened staff role makes those checks fail; and a semester of deploys shows
what a change to `staff` does at the next hub start.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from coursehub.errors import CoursehubError
from coursehub.groups import hubpython
from coursehub.hub.local import LocalHub
from helpers.browser import Browser
from helpers.files import edit
from helpers.hubs import DENIED, HubClient, live_hub, redeploy, stat159_values, write_roster

pytestmark = pytest.mark.live

ROSTER = {"shared-1": ["s-ana", "s-bo"], "shared-2": ["s-cy"]}
ADMIN_PAGE = ("open",)  # declared without members: the admin page (or a TA) sets them
GROUPS = [*ROSTER, *ADMIN_PAGE]
ACCOUNTS = [f"collab-{g}" for g in GROUPS]
STAFF = ["ta-tess", "ta-uma"]
TA = STAFF[0]
FOREIGN, OUTSIDER = "other-course", "s-oz"  # another course's group and student on the same hub
LATE = "s-dee"  # a student the admin puts in the admin-page group
LEDGER = "coursehub:stat159"
STARTED, STOPPED = {201, 202}, {202, 204}


def course_values(folder: Path, staff: list[str], widen: str = "") -> Path:
    """stat159's values with the roster above, `staff` in the secrets file, and (`widen`) a hub.extraConfig
    snippet that changes the loaded roles, as a course's own snippet could: it runs after coursehub's."""
    folder.mkdir(exist_ok=True)
    values = stat159_values(folder, {})
    write_roster(values, ROSTER, ADMIN_PAGE, staff=staff)
    if widen:
        edit(values / "stat159.yaml", {"jupyterhub.hub.extraConfig": {"zz-widen": widen}})
    return values


def another_course(api: HubClient) -> None:
    """What the admin does on the hub besides the course: another course's group, a student in the open group."""
    for user in (OUTSIDER, LATE):
        requests.post(f"{api.url}/hub/api/users/{user}", headers=api.admin).raise_for_status()
    r = requests.post(f"{api.url}/hub/api/groups/{FOREIGN}", headers=api.admin, json={"users": [OUTSIDER]})
    r.raise_for_status()
    r = requests.post(f"{api.url}/hub/api/groups/open/users", headers=api.admin, json={"users": [LATE]})
    r.raise_for_status()


def course_students() -> set[str]:
    return {s for members in ROSTER.values() for s in members} | {LATE}


def running(api: HubClient, user: str) -> None:
    """`user`'s own server is up (started by the admin), so that refusals are about access, not absence."""
    if not api.server(user).get("ready"):
        r = requests.post(f"{api.url}/hub/api/users/{user}/server", headers=api.admin)
        assert r.status_code in STARTED, r.text
        api.wait(user, ready=True)


def refused_actions(api: HubClient, ta: str) -> list[str]:
    """Every action a TA must not have, tried with the TA's token: the ones that were NOT refused.

    Reads first, then changes, the destructive ones last (under a widened role they do happen).
    """
    url, h = f"{api.url}/hub/api", api.as_(ta)
    running(api, "s-ana")  # a student's own server
    running(api, "instructor")  # an admin's own server
    leaks = []
    users = requests.get(f"{url}/users", headers=h)
    if users.status_code == 200:
        extra = {u["name"] for u in users.json()} - set(ACCOUNTS) - course_students()
        if extra:
            leaks.append(f"lists users outside the course: {sorted(extra)}")
        if any("roles" in u or "groups" in u or "auth_state" in u for u in users.json() if u["name"] not in ACCOUNTS):
            leaks.append("reads students' roles, other groups or auth state")
    groups = requests.get(f"{url}/groups", headers=h)
    if groups.status_code == 200 and {g["name"] for g in groups.json()} - set(GROUPS):
        leaks.append(f"lists groups outside the course: {sorted({g['name'] for g in groups.json()} - set(GROUPS))}")
    attempts: list[tuple[str, Callable[[], requests.Response]]] = [
        ("reads the instructor", lambda: requests.get(f"{url}/users/instructor", headers=h)),
        ("reads another course's student", lambda: requests.get(f"{url}/users/{OUTSIDER}", headers=h)),
        ("reads another course's group", lambda: requests.get(f"{url}/groups/{FOREIGN}", headers=h)),
        ("reads the course's ledger", lambda: requests.get(f"{url}/groups/{LEDGER}", headers=h)),
        ("reads a student's tokens", lambda: requests.get(f"{url}/users/s-ana/tokens", headers=h)),
        ("reads the instructor's tokens", lambda: requests.get(f"{url}/users/instructor/tokens", headers=h)),
        ("uses a student's own server", lambda: requests.get(f"{api.url}/user/s-ana/api/status", headers=h)),
        ("uses the instructor's server", lambda: requests.get(f"{api.url}/user/instructor/api/status", headers=h)),
        ("makes a token for a student", lambda: requests.post(f"{url}/users/s-ana/tokens", headers=h, json={})),
        ("creates a user", lambda: requests.post(f"{url}/users/s-new", headers=h)),
        ("makes a student an admin", lambda: requests.patch(f"{url}/users/s-ana", headers=h, json={"admin": True})),
        ("makes themselves an admin", lambda: requests.patch(f"{url}/users/{ta}", headers=h, json={"admin": True})),
        ("creates a group", lambda: requests.post(f"{url}/groups/ta-made", headers=h)),
        (
            "adds to another course's group",
            lambda: requests.post(f"{url}/groups/{FOREIGN}/users", headers=h, json={"users": [ta]}),
        ),
        (
            "changes another course's group's properties",
            lambda: requests.put(f"{url}/groups/{FOREIGN}/properties", headers=h, json={"x": 1}),
        ),
        (
            "changes the course's ledger",
            lambda: requests.put(f"{url}/groups/{LEDGER}/properties", headers=h, json={}),
        ),
        ("starts a student's own server", lambda: requests.post(f"{url}/users/s-bo/server", headers=h)),
        ("stops a student's own server", lambda: requests.delete(f"{url}/users/s-ana/server", headers=h)),
        ("stops the instructor's server", lambda: requests.delete(f"{url}/users/instructor/server", headers=h)),
        (
            "removes another course's student from their group",
            lambda: requests.delete(f"{url}/groups/{FOREIGN}/users", headers=h, json={"users": [OUTSIDER]}),
        ),
        ("deletes a course group", lambda: requests.delete(f"{url}/groups/shared-2", headers=h)),
        ("deletes a user", lambda: requests.delete(f"{url}/users/{OUTSIDER}", headers=h)),
    ]
    for what, attempt in attempts:
        status = attempt().status_code
        if status not in DENIED:
            leaks.append(f"{what} (HTTP {status})")
    return leaks


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    values = course_values(tmp_path_factory.mktemp("values"), STAFF)
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        another_course(HubClient(local))
        yield local


@pytest.fixture(scope="module")
def api(hub: LocalHub) -> HubClient:
    return HubClient(hub)


def roles_of(api: HubClient, user: str) -> list[str]:
    r = requests.get(f"{api.url}/hub/api/users/{user}", headers=api.admin)
    r.raise_for_status()
    return sorted(r.json()["roles"])


def test_a_ta_not_yet_on_the_hub_is_created_at_start_holding_the_role(api: HubClient) -> None:
    """JupyterHub's load_roles creates the users a role lists: the TA need not have logged in before."""
    for ta in STAFF:
        assert roles_of(api, ta) == ["coursehub-staff", "user"]
    assert roles_of(api, "s-ana") == ["user"]  # students do not hold it (their access comes from their group)


@pytest.mark.parametrize("account", ACCOUNTS)
def test_a_ta_starts_uses_and_stops_every_shared_account(api: HubClient, account: str) -> None:
    try:
        assert api.start(TA, account) in STARTED
        api.wait(account, ready=True)
        assert api.use(TA, account) == 200
        assert api.use(STAFF[1], account) == 200  # the other TA joins the same server
        assert api.stop(TA, account) in STOPPED
        api.wait(account, ready=False)
    finally:
        requests.delete(f"{api.url}/hub/api/users/{account}/server", headers=api.admin)


def test_the_admin_page_shows_a_ta_exactly_the_courses_accounts_students_and_groups(
    api: HubClient, hub: LocalHub
) -> None:
    assert Browser(hub, TA).session.get(f"{api.url}/hub/admin").status_code == 200
    assert Browser(hub, OUTSIDER).session.get(f"{api.url}/hub/admin").status_code == 403  # not for everyone
    # what the admin page asks the API for (JupyterHub 5.5's admin-react.js: /users and /groups, paginated)
    h = {**api.as_(TA), "Accept": "application/jupyterhub-pagination+json"}
    users = requests.get(f"{api.url}/hub/api/users?include_stopped_servers=1&offset=0&limit=50", headers=h)
    assert users.status_code == 200
    assert {u["name"] for u in users.json()["items"]} == set(ACCOUNTS) | course_students()
    groups = requests.get(f"{api.url}/hub/api/groups?offset=0&limit=50", headers=h)
    assert groups.status_code == 200
    seen = {g["name"]: sorted(g["users"]) for g in groups.json()["items"]}
    assert seen == {**{g: sorted(m) for g, m in ROSTER.items()}, "open": [LATE]}
    # each account's row carries its server (start/stop buttons); a student's row only the name
    rows = {u["name"]: u for u in users.json()["items"]}
    assert all("servers" in rows[a] for a in ACCOUNTS)
    assert set(rows["s-ana"]) <= {"kind", "name", "admin"}
    # the group editor checks a name with GET /users/<name> before adding it: a course student passes; a student
    # in none of the course's groups does not (add them by name through the API, or in the values)
    assert requests.get(f"{api.url}/hub/api/users/s-bo", headers=h).status_code == 200
    assert requests.get(f"{api.url}/hub/api/users/{OUTSIDER}", headers=h).status_code in DENIED


def test_a_ta_changes_a_course_groups_members_and_it_applies_at_once(api: HubClient, hub: LocalHub) -> None:
    members = f"{api.url}/hub/api/groups/shared-2/users"
    try:
        assert requests.post(members, headers=api.as_(TA), json={"users": ["s-bo"]}).status_code == 200
        assert api.start("s-bo", "collab-shared-2") in STARTED  # the new member's access: at once
        api.wait("collab-shared-2", ready=True)
        assert api.use("s-bo", "collab-shared-2") == 200
        pid, offset = api.pid("collab-shared-2"), Path(hub.log).stat().st_size
        assert requests.delete(members, headers=api.as_(TA), json={"users": ["s-cy"]}).status_code == 200
        assert api.stop("s-cy", "collab-shared-2") in DENIED  # the removed member's: gone at once
        # and the server s-cy could have read the token of: restarted by the reconciler's membership watch
        hub.wait_for_log(hubpython.reconciler().WATCH_SAW, after=offset, timeout=30)
        api.wait("collab-shared-2", ready=True)
        assert api.pid("collab-shared-2") != pid and api.use("s-bo", "collab-shared-2") == 200
    finally:  # stopped first, and the watch's look at s-bo's removal awaited: it restarts nothing a later test runs
        api.stop_server("collab-shared-2")
        offset = Path(hub.log).stat().st_size
        requests.post(members, headers=api.admin, json={"users": ["s-cy"]})
        requests.delete(members, headers=api.admin, json={"users": ["s-bo"]})
        hub.wait_for_log(hubpython.reconciler().WATCH_SAW, after=offset, timeout=30)
    assert sorted(requests.get(f"{api.url}/hub/api/groups/shared-2", headers=api.admin).json()["users"]) == ["s-cy"]


@pytest.mark.parametrize("ta", STAFF)
def test_everything_else_is_refused_to_a_ta(api: HubClient, ta: str) -> None:
    # the own servers it starts stay up for the next TA's checks (a server start is 2 s of CPU), and go with
    # the module's hub
    assert refused_actions(api, ta) == []


def test_a_student_gets_nothing_of_the_staff_role(api: HubClient) -> None:
    h = api.as_("s-ana")
    assert (
        requests.post(f"{api.url}/hub/api/groups/shared-1/users", headers=h, json={"users": ["s-cy"]}).status_code
        in DENIED
    )
    assert api.start("s-ana", "collab-shared-2") in DENIED
    assert {u["name"] for u in requests.get(f"{api.url}/hub/api/users", headers=h).json()} == {"collab-shared-1"}


def test_no_ta_is_named_in_the_hubs_log(api: HubClient, hub: LocalHub) -> None:
    """Not when the hub creates them for the role, nor when they log in and act (the hub's own lines; the local
    servers also write into this file, as pods write their own logs in the cluster)."""
    assert requests.get(f"{api.url}/hub/api/users", headers=api.as_(TA)).status_code == 200  # a TA acted
    hub_lines = [
        line for line in Path(hub.log).read_text().splitlines() if re.match(r"^\[\w \S+ \S+ JupyterHub ", line)
    ]
    assert any("a TA" in line for line in hub_lines)  # the lines are there, without the name
    for ta in STAFF:
        assert not [line for line in hub_lines if ta in line], ta


# --- a widened staff role fails the checks above (mutation test) ----------------------------

WIDENED = [  # (id, the staff role's scope replaced, what replaces it, scopes added, the leak the checks name)
    ("admin-users", "", "", ["admin:users"], "creates a user"),
    ("groups-unfiltered", "groups!group=shared-1", "groups", [], "adds to another course's group"),
    ("list-users-unfiltered", "list:users!group=shared-1", "list:users", [], "lists users outside the course"),
    ("access-unfiltered", "access:servers!user=collab-shared-1", "access:servers", [], "uses a student's own server"),
    ("servers-on-group", "servers!user=collab-shared-1", "servers!group=shared-1", [], "starts a student's own server"),
    ("read-users", "", "", ["read:users!group=shared-1"], "reads students' roles, other groups"),
]

# A hub.extraConfig snippet, as a course's own could be (it runs after coursehub's): per mutation, a copy of the
# staff role coursehub loaded, widened one way, held by a TA of its own. One hub serves every mutation.
WIDEN = """
import copy
staff = [role for role in c.JupyterHub.load_roles if role["name"] == "coursehub-staff"]
if not staff:
    raise RuntimeError("no coursehub-staff role to widen")
for name, old, new, extra, _ in {widened!r}:
    role = copy.deepcopy(staff[0])
    if old and old not in role["scopes"]:
        raise RuntimeError(f"the staff role has no {{old}} to widen")
    role.update(name="widened-" + name, scopes=[new if s == old else s for s in role["scopes"]] + extra)
    role.update(users=["ta-w-" + name], groups=[])
    c.JupyterHub.load_roles.append(role)
"""


@pytest.fixture(scope="module")
def widened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubClient]:
    """The course's hub with one widened copy of the staff role per mutation; the mutations' TAs act on it in
    turn (each one's leak is its own: what one mutation changes does not take another's target away)."""
    values = course_values(tmp_path_factory.mktemp("values"), STAFF, WIDEN.format(widened=WIDENED))
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        api = HubClient(local)
        another_course(api)
        yield api


@pytest.mark.parametrize(("name", "caught"), [(w[0], w[-1]) for w in WIDENED], ids=[w[0] for w in WIDENED])
def test_a_widened_staff_role_fails_the_checks(widened: HubClient, name: str, caught: str) -> None:
    ta = f"ta-w-{name}"
    assert roles_of(widened, ta) == ["user", f"widened-{name}"]  # the copy, and only it: the leak is its own
    leaks = refused_actions(widened, ta)
    assert any(caught in leak for leak in leaks), leaks
    assert refused_actions(widened, TA) == []  # the TA with the course's own role, on the same hub: nothing


# --- through a semester ---------------------------------------------------------------------


def test_staff_changes_apply_at_the_next_start_and_a_bad_staff_list_stops_the_start(tmp_path: Path) -> None:
    values = course_values(tmp_path / "values", STAFF)
    with live_hub(values, tmp_path / "hub") as local:
        api = HubClient(local)
        for ta in STAFF:  # week 1: both TAs see the course
            assert requests.get(f"{api.url}/hub/api/users", headers=api.as_(ta)).status_code == 200

        # week 4: ta-uma leaves the staff list; the deploy restarts the hub and the role is gone
        course_values(tmp_path / "values", [TA])
        redeploy(local, values)
        assert roles_of(api, "ta-uma") == ["user"]
        h = api.as_("ta-uma")  # the token made in week 1: still valid, now with a user's rights only
        assert api.start("ta-uma", "collab-shared-1") in DENIED
        assert requests.get(f"{api.url}/hub/api/users", headers=h).status_code in DENIED
        r = requests.post(f"{api.url}/hub/api/groups/shared-1/users", headers=h, json={"users": ["ta-uma"]})
        assert r.status_code in DENIED
        assert Browser(local, "ta-uma").session.get(f"{api.url}/hub/admin").status_code == 403
        assert roles_of(api, TA) == ["coursehub-staff", "user"]  # the other TA keeps it
        assert api.start(TA, "collab-shared-1") in STARTED
        api.wait("collab-shared-1", ready=True)
        assert api.stop(TA, "collab-shared-1") in STOPPED
        api.wait("collab-shared-1", ready=False)

        # week 5: a TA who has never logged in is added: JupyterHub creates them, holding the role
        course_values(tmp_path / "values", [TA, "ta-vic"])
        redeploy(local, values)
        assert roles_of(api, "ta-vic") == ["coursehub-staff", "user"]
        assert requests.get(f"{api.url}/hub/api/groups", headers=api.as_("ta-vic")).status_code == 200

        # end of term: no staff; the role leaves the config and JupyterHub deletes it with its assignments
        course_values(tmp_path / "values", [])
        redeploy(local, values)
        assert roles_of(api, TA) == ["user"] and roles_of(api, "ta-vic") == ["user"]
        assert api.start(TA, "collab-shared-1") in DENIED

        # a staff list naming a shared account: the hub does not start, and its log names the key and the fix
        course_values(tmp_path / "values", ["collab-shared-1"])
        offset = Path(local.log).stat().st_size
        with pytest.raises(CoursehubError, match="the hub exited at start-up"):
            redeploy(local, values)
        since = Path(local.log).read_text()[offset:]
        assert "custom.coursehub.staff[0]: 'collab-shared-1' is the shared account of group shared-1" in since
        assert "list the TA's own log-in name" in since
