"""A live hub for stat159 (hub/local.py: real JupyterHub and configurable-http-proxy), its values folder, its
groups, and a client of its API as the admin and as students."""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from coursehub.chart.upstream import load_data
from coursehub.courses import load_course
from coursehub.hub.local import LocalHub, Plan, classify, make_plan
from coursehub.images.build import deployed, ensure_env
from coursehub.paths import VALUES
from helpers.browser import log_in, xsrf_header

# What the hub answers a request it refuses: 403, or 404 where it does not say whether the thing exists.
DENIED = {403, 404}


@contextmanager
def live_hub(values: Path, workdir: Path) -> Iterator[LocalHub]:
    """A real hub (hub/local.py) for stat159 with the values in `values`, stopped whatever happens."""
    course = load_course("stat159", values_dir=values)
    env = ensure_env(deployed("stat159", course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    plan = make_plan(course, load_data(), workdir, env, classify(course), admin_token=secrets.token_hex(16))
    hub = LocalHub(plan)
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()


def stat159_values(folder: Path, secret: dict[str, Any], **course_keys: Any) -> Path:
    """A values folder with common.yaml, stat159.yaml (plus `course_keys` in custom.coursehub) and a secrets file.

    Servers on the hub's own origin: the live tests of who may do what talk to the hub and the servers by path on
    127.0.0.1. Servers on their own origins (stat159's subdomain_host) are tested in test_subdomains.py."""
    for name in ("common.yaml", "stat159.yaml"):
        (folder / name).write_text((VALUES / name).read_text())
    course = yaml.safe_load((folder / "stat159.yaml").read_text())
    course["jupyterhub"]["hub"]["config"].pop("JupyterHub")
    course["jupyterhub"]["custom"]["coursehub"].update(course_keys)
    (folder / "stat159.yaml").write_text(yaml.safe_dump(course))
    (folder / "stat159.secret.yaml").write_text(yaml.safe_dump(secret))
    return folder


def write_roster(
    values: Path, members: dict[str, list[str]], admin_page: tuple[str, ...] = (), **declaration: Any
) -> None:
    """The course's secrets file with one shared account per group (collab-<group>) and these members; the
    `admin_page` groups are declared without members (the admin page manages theirs)."""
    accounts = [{"group": g, "account": f"collab-{g}"} for g in (*members, *admin_page)]
    secret = {"jupyterhub": {"custom": {"coursehub": {"sharedAccounts": accounts, "members": members, **declaration}}}}
    (values / "stat159.secret.yaml").write_text(yaml.safe_dump(secret))


def redeploy(hub: LocalHub, values: Path) -> float:
    """What `make deploy` does to a running hub when the values changed: z2jh restarts the hub with them."""
    course = load_course("stat159", values_dir=values)
    hub.plan.values = make_plan(
        course, load_data(), Path(hub.plan.workdir), Path(hub.plan.singleuser_bin).parent, classify(course)
    ).values
    return hub.restart()


def sync_groups(
    hub: LocalHub, values: Path, *, dry_run: bool = False, token: str | None = None, recheck: bool = False
) -> tuple[int, str]:
    """`make sync-groups` in-process against the live hub: (exit code, what it printed)."""
    from coursehub.groups import sync

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        env.setenv(sync.TOKEN_ENV, token if token is not None else str(hub.plan.admin_token))
        code = sync.sync(load_course("stat159", values_dir=values), hub.plan.url, dry_run, out, recheck=recheck)
    return code, out.getvalue()


def hub_groups(hub: LocalHub) -> dict[str, dict[str, Any]]:
    """Every group on the hub with its members and properties (the admin's view)."""
    r = requests.get(f"{hub.plan.url}/hub/api/groups", headers={"Authorization": f"token {hub.plan.admin_token}"})
    r.raise_for_status()
    return {g["name"]: g for g in r.json()}


class HubClient:
    """A live hub through its proxy: log-ins, students' tokens, start/use/stop, waits."""

    def __init__(self, local: LocalHub) -> None:
        self.plan: Plan = local.plan
        self.url = self.plan.url
        self.admin = {"Authorization": f"token {self.plan.admin_token}"}
        self._tokens: dict[str, str] = {}

    def login(self, username: str, password: str) -> requests.Response:
        return log_in(self.url, username, password).response

    def token(self, student: str) -> str:
        """A student's API token, made the way a student makes one: log in, then ask the hub."""
        if student not in self._tokens:
            session, r = log_in(self.url, student, self.plan.password)
            assert r.status_code == 302, r.text
            r = session.post(
                f"{self.url}/hub/api/users/{student}/tokens", json={"note": "live test"}, headers=xsrf_header(session)
            )
            assert r.status_code == 201, r.text
            self._tokens[student] = r.json()["token"]
        return self._tokens[student]

    def as_(self, student: str) -> dict[str, str]:
        return {"Authorization": f"token {self.token(student)}"}

    def server(self, user: str) -> dict:
        r = requests.get(f"{self.url}/hub/api/users/{user}", headers=self.admin)
        r.raise_for_status()
        return r.json()["servers"].get("", {})

    def wait(self, user: str, ready: bool, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server(user)
            if (server.get("ready") is True) == ready and not server.get("pending"):
                return
            time.sleep(0.25)
        raise AssertionError(f"{user}'s server did not become {'ready' if ready else 'stopped'}: {self.server(user)}")

    def pid(self, user: str) -> int | None:
        """The process of the user's running server (SimpleLocalProcessSpawner's state), None when none runs."""
        return (self.server(user).get("state") or {}).get("pid")

    def server_token(self, user: str) -> str:
        """The token a running server holds, as code run in it reads it (its environment)."""
        environ = Path(f"/proc/{self.pid(user)}/environ").read_bytes().split(b"\0")
        return next(v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"JUPYTERHUB_API_TOKEN="))

    def whoami(self, token: str) -> int:
        return requests.get(f"{self.url}/hub/api/user", headers={"Authorization": f"token {token}"}).status_code

    def stop_server(self, user: str, timeout: float = 120) -> None:
        """Stop the user's server as an admin and wait until it is stopped, whatever it is doing (a start under way,
        such as the reconciler's restart after a member left, is let finish and stopped then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server(user)
            if not server:
                return
            if not server.get("pending"):
                requests.delete(f"{self.url}/hub/api/users/{user}/server", headers=self.admin)
            time.sleep(0.25)
        raise AssertionError(f"{user}'s server did not stop: {self.server(user)}")

    def start(self, who: str, user: str) -> int:
        return requests.post(f"{self.url}/hub/api/users/{user}/server", headers=self.as_(who)).status_code

    def stop(self, who: str, user: str) -> int:
        return requests.delete(f"{self.url}/hub/api/users/{user}/server", headers=self.as_(who)).status_code

    def use(self, who: str, user: str) -> int:
        return requests.get(
            f"{self.url}/user/{user}/api/status", headers=self.as_(who), allow_redirects=False
        ).status_code


def until(check: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    """Wait for `check()` to be true (every 0.2 s); AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what or 'the check'}: not within {timeout} s")


class GroupsRead:
    """The reconciler's view of a hub for plan(), which only reads: GET /groups, answered from these groups."""

    def __init__(self, groups: dict[str, dict[str, Any]]) -> None:
        self.groups = [{"name": name, **group} for name, group in groups.items()]

    def pages(self, path: str) -> Iterator[dict[str, Any]]:
        assert path == "/groups", path
        yield from self.groups
