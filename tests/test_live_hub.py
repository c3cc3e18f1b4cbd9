"""Shared accounts on a live JupyterHub: the access matrix, log-in, live membership changes and RTC.

A real JupyterHub (the hub image's, 5.5.4) with configurable-http-proxy on 127.0.0.1 (free ports),
configured from stat159's values through the chart's own path (hub/local.py),
with a generated roster: a student in two groups, an empty group, a group whose
name needs care, and a student in no group. Singleuser servers are real
JupyterLab 3.6 servers from stat159's image environment, started with the
course's command. Everything is stopped at the end, whatever happened.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from coursehub.groups import hubpython
from coursehub.hub.local import LocalHub, leftovers, processes, server_dirs
from helpers.hubs import DENIED, HubClient, live_hub, stat159_values, until

pytestmark = pytest.mark.live

GROUPS = {  # group -> (account, members)
    "shared-1": ("collab-shared-1", ["s-ana", "s-bo"]),
    "shared-2": ("collab-shared-2", ["s-bo", "s-cy"]),  # s-bo is in two groups
    "lab.team_b-2": ("collab-lab.team_b-2", ["s-dee"]),  # a name with . and _ in it
    "shared-empty": ("collab-shared-empty", []),
}
STUDENTS = ["s-ana", "s-bo", "s-cy", "s-dee", "s-fay"]  # s-fay is in no group
ACCOUNTS = [account for account, _ in GROUPS.values()]


def members_of(account: str) -> set[str]:
    return {m for acc, members in GROUPS.values() if acc == account for m in members}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, values_dir_module: Path) -> Iterator[LocalHub]:
    with live_hub(values_dir_module, tmp_path_factory.mktemp("hub")) as local:
        yield local


@pytest.fixture(scope="module")
def values_dir_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """stat159's values with the generated roster above."""
    accounts = [{"group": g, "account": a} for g, (a, _) in GROUPS.items()]
    secret = {"jupyterhub": {"custom": {"coursehub": {"members": {g: m for g, (_, m) in GROUPS.items()}}}}}
    return stat159_values(tmp_path_factory.mktemp("values"), secret, sharedAccounts=accounts)


@pytest.fixture(scope="module")
def api(hub: LocalHub) -> HubClient:
    return HubClient(hub)


@pytest.mark.parametrize("account", ACCOUNTS)
def test_access_matrix_start_use_stop_exactly_for_the_group(api: HubClient, account: str) -> None:
    members, outsiders = sorted(members_of(account)), sorted(set(STUDENTS) - members_of(account))
    try:
        for student in outsiders:
            assert api.start(student, account) in DENIED, student
            assert not api.server(account), f"{student} started {account}"
        if not members:
            return
        assert api.start(members[0], account) in {201, 202}
        api.wait(account, ready=True)
        for student in members[1:]:
            assert api.start(student, account) == 400  # allowed: it is already running
        for student in members:
            assert api.use(student, account) == 200, student
        for student in outsiders:
            assert api.use(student, account) in DENIED, student
            assert api.stop(student, account) in DENIED, student
        assert api.server(account).get("ready") is True
        assert api.stop(members[-1], account) in {202, 204}
        api.wait(account, ready=False)
    finally:  # leave no server behind for the other tests, even on failure
        requests.delete(f"{api.url}/hub/api/users/{account}/server", headers=api.admin)


def test_no_student_reaches_another_students_server(api: HubClient) -> None:
    assert api.start("s-ana", "s-ana") in {201, 202}
    api.wait("s-ana", ready=True)
    try:
        for student in set(STUDENTS) - {"s-ana"}:  # s-bo shares a group with s-ana: still no access
            assert api.use(student, "s-ana") in DENIED, student
            assert api.stop(student, "s-ana") in DENIED, student
            assert api.start(student, "s-ana") in DENIED, student  # (a permitted start would get 400: running)
    finally:
        api.stop("s-ana", "s-ana")
        api.wait("s-ana", ready=False)


@pytest.mark.parametrize("student", STUDENTS)
def test_the_users_list_holds_only_the_students_group_accounts(api: HubClient, student: str) -> None:
    r = requests.get(f"{api.url}/hub/api/users", headers=api.as_(student))
    expected = {account for account in ACCOUNTS if student in members_of(account)}
    if not expected:  # in no group: no list:users scope at all
        assert r.status_code == 403
        return
    assert r.status_code == 200
    assert {u["name"] for u in r.json()} == expected


@pytest.mark.parametrize("student", STUDENTS)
def test_students_cannot_use_the_hubs_admin_apis_for_others(api: HubClient, student: str) -> None:
    other = "s-cy" if student != "s-cy" else "s-ana"
    h = api.as_(student)
    assert requests.get(f"{api.url}/hub/api/users/{other}", headers=h).status_code in DENIED
    assert requests.post(f"{api.url}/hub/api/users/{other}/tokens", headers=h, json={}).status_code in DENIED
    groups = requests.get(f"{api.url}/hub/api/groups", headers=h)
    assert groups.status_code in DENIED or groups.json() == []  # membership is private
    assert (
        requests.post(f"{api.url}/hub/api/groups/shared-2/users", headers=h, json={"users": [student]}).status_code
        in DENIED
    )
    assert requests.patch(f"{api.url}/hub/api/users/{other}", headers=h, json={"admin": True}).status_code in DENIED


@pytest.mark.parametrize("account", ACCOUNTS)
def test_nobody_can_log_in_as_a_shared_account(api: HubClient, account: str) -> None:
    for password in (api.plan.password, "", account, "password"):
        assert api.login(account, password).status_code == 403
    assert api.login("s-ana", api.plan.password).status_code == 302  # the same password works for a student


def test_membership_changes_through_the_admin_api_apply_at_once(api: HubClient, hub: LocalHub) -> None:
    """A removal made outside a run (the admin page, the REST API): the hub refuses the student at once, and the
    reconciler's membership watch restarts the group's running server within its 10 s look, which ends the
    server's cached answers and the server token the student could have read; the other members get it back
    without starting it."""
    groups = f"{api.url}/hub/api/groups/shared-1/users"
    assert api.start("s-bo", "collab-shared-1") in {201, 202}
    api.wait("collab-shared-1", ready=True)
    try:
        assert api.use("s-ana", "collab-shared-1") == 200  # the server now keeps its answer about s-ana
        assert api.use("s-fay", "collab-shared-1") in DENIED
        pid, token = api.pid("collab-shared-1"), api.server_token("collab-shared-1")
        r = requests.delete(groups, headers=api.admin, json={"users": ["s-ana"]})
        assert r.status_code == 200
        r = requests.post(groups, headers=api.admin, json={"users": ["s-fay"]})
        assert r.status_code == 200
        assert api.stop("s-ana", "collab-shared-1") in DENIED  # the hub itself: at once
        until(lambda: api.pid("collab-shared-1") not in (None, pid), what="the server started again")
        assert api.whoami(token) == 403  # the old server's token died with it
        api.wait("collab-shared-1", ready=True)
        assert api.use("s-ana", "collab-shared-1") in DENIED  # long before the visitor cache would have expired
        assert api.use("s-fay", "collab-shared-1") == 200 and api.use("s-bo", "collab-shared-1") == 200
    finally:  # stopped first, and the watch's look at s-fay's removal awaited: it restarts nothing a later test runs
        api.stop_server("collab-shared-1")
        offset = Path(hub.log).stat().st_size
        requests.post(groups, headers=api.admin, json={"users": ["s-ana"]})
        requests.delete(groups, headers=api.admin, json={"users": ["s-fay"]})
        hub.wait_for_log(hubpython.reconciler().WATCH_SAW, after=offset, timeout=30)


def test_two_members_edit_one_document_and_the_y_store_is_off_home(api: HubClient, hub: LocalHub) -> None:
    account = "collab-shared-1"
    assert api.start("s-ana", account) in {201, 202}
    api.wait(account, ready=True)
    try:
        r = requests.put(
            f"{api.url}/user/{account}/api/contents/notes.txt",
            headers=api.as_("s-ana"),
            json={"type": "file", "format": "text", "content": ""},
        )
        assert r.status_code in {200, 201}, r.text
        text = f"written by s-ana {secrets.token_hex(4)}"
        python = Path(hub.plan.singleuser_bin) / "python"
        result = subprocess.run(
            [
                str(python),
                str(Path(__file__).with_name("rtc_client.py")),
                api.url,
                account,
                "notes.txt",
                api.token("s-ana"),
                api.token("s-bo"),
                text,
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        assert seen["room"].startswith("text:file:") and text in seen["b_sees"]
        tmp, home = server_dirs(Path(hub.plan.workdir), account)
        assert (tmp / "ystore.db").is_file() and (tmp / "ystore.db").stat().st_size > 0
        assert (tmp / "jupyter_file_id.db").is_file()
        assert not [p for p in home.rglob("*") if p.suffix == ".db" or "ystore" in p.name]
        # the server finds on its PATH what its image has: no Node.js (JupyterLab would run yarn with it), though
        # this machine has it (the proxy runs on it)
        assert shutil.which("node")
        (server,) = [
            pid
            for pid, _, cmd in processes()
            if "jupyterhub-singleuser" in cmd and Path(f"/proc/{pid}/cwd").resolve() == home.resolve()
        ]
        environ = dict(v.split(b"=", 1) for v in Path(f"/proc/{server}/environ").read_bytes().split(b"\0") if v)
        search_path = environ[b"PATH"].decode()
        assert shutil.which("node", path=search_path) is None and shutil.which("npm", path=search_path) is None
        assert shutil.which("sh", path=search_path) and shutil.which("python", path=search_path) == str(python)
    finally:
        api.stop("s-ana", account)
        api.wait(account, ready=False)


def test_a_hub_that_is_killed_leaves_no_reconciler_behind(values_dir_module: Path, tmp_path: Path) -> None:
    """A hub stops its services when it stops; one that is killed (out of memory, SIGKILL) cannot. Its
    reconciler, idle after its run, sees that its hub has ended and stops."""
    with live_hub(values_dir_module, tmp_path / "hub") as hub:
        assert hub.process is not None
        (reconciler,) = [
            pid
            for pid, parent, cmdline in processes()
            if parent == hub.process.pid and "coursehub_hub.reconcile" in cmdline
        ]
        hub.process.kill()
        hub.process.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and reconciler in {pid for pid, _, _ in processes()}:
            time.sleep(0.2)
        assert reconciler not in {pid for pid, _, _ in processes()}
        assert "the hub that started this service has ended; stopping" in hub.log.read_text()


def test_stopping_the_hub_leaves_nothing_running(values_dir_module: Path, tmp_path: Path) -> None:
    """On a hub of its own: stopping it is the end of it.

    The hub is started with SIGINT ignored, as a shell's background job or a CI runner starts it, and it passes
    that on. JupyterHub stops its reconciler service with SIGINT (with SIGTERM only 10 s later), and the service
    still stops at the first signal."""
    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with live_hub(values_dir_module, tmp_path / "hub") as hub:
            signal.signal(signal.SIGINT, inherited)  # the hub has it now; this process need not keep it
            api = HubClient(hub)
            assert api.start("s-dee", "collab-lab.team_b-2") in {201, 202}
            api.wait("collab-lab.team_b-2", ready=True)
            assert leftovers(Path(hub.plan.workdir))  # the server and the reconciler service are running...
            proxy = hub.proxy
            assert proxy is not None and proxy.poll() is None  # ...and the proxy
            hub.stop()
            assert leftovers(Path(hub.plan.workdir)) == []  # ...and are gone
            assert proxy.poll() is not None
            with pytest.raises(requests.ConnectionError):
                requests.get(f"{api.url}/hub/api/", timeout=2)
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert f"{hubpython.reconciler().STOPPED} (SIGINT)" in hub.log.read_text()


def test_the_hub_runs_from_the_hub_images_environment(hub: LocalHub) -> None:
    """What runs here is what the hub pod runs: the hub image's packages (image/hub/<tag>/local-requirements.txt,
    built with uv) and coursehub-hub installed into them, not the tooling's venv. (`make test-jupyterhub-6` points
    COURSEHUB_HUB_PYTHON at JupyterHub 6.1.1's environment instead.)"""
    import os
    import sys

    from coursehub.hub.local import HUB_PYTHON_ENV
    from coursehub.images import hub as hub_image

    assert hub.process is not None
    argv = Path(f"/proc/{hub.process.pid}/cmdline").read_bytes().split(b"\0")
    assert argv[0].decode() == hub.plan.hub_python
    version = subprocess.run(
        [hub.plan.hub_python, "-c", "import jupyterhub, coursehub_hub; print(jupyterhub.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f"Running JupyterHub version {version}" in hub.log.read_text()
    if not os.environ.get(HUB_PYTHON_ENV):
        assert hub.plan.hub_python != sys.executable  # not the tooling's venv
        assert version == hub_image.deployed().pins()["jupyterhub"].split()[0] == "5.5.4"
        assert str(hub_image.deployed().env) in hub.plan.hub_python
