"""Large courses (`access: shares`): groups, members and access live in the hub's database, kept by sync.

A real hub whose config holds no per-group settings at all; `make sync-groups`
creates the groups, accounts, members and one share per group. A new group then
works at once, with no restart, and nobody can log in as its account.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from conftest import live_hub, stat159_values
from coursehub.localhub import LocalHub
from test_live_hub import DENIED
from test_sync_groups import groups, sync


class Browser:
    """A student in a web browser: a log-in session, and the consent page a shared server asks for once.

    Shares count for the student's own session; JupyterHub 5.5 does not add them to API tokens.
    """

    def __init__(self, hub: LocalHub, user: str) -> None:
        self.url, self.session = hub.plan.url, requests.Session()
        self.session.get(f"{self.url}/hub/login")
        r = self.session.post(
            f"{self.url}/hub/login",
            allow_redirects=False,
            data={"username": user, "password": hub.plan.password, "_xsrf": self.session.cookies.get("_xsrf")},
        )
        assert r.status_code == 302, r.text
        self.xsrf = {"X-XSRFToken": self.session.cookies.get("_xsrf")}

    def start(self, account: str) -> int:
        return self.session.post(f"{self.url}/hub/api/users/{account}/server", headers=self.xsrf).status_code

    def stop(self, account: str) -> int:
        return self.session.delete(f"{self.url}/hub/api/users/{account}/server", headers=self.xsrf).status_code

    def use(self, account: str) -> int:
        page = self.session.get(f"{self.url}/user/{account}/lab")
        if "/hub/api/oauth2/authorize" in page.url and page.status_code == 200:  # "allow access to ...?"
            fields = re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text)
            self.session.post(page.url, data=[(k, html.unescape(v)) for k, v in fields])
        return self.session.get(f"{self.url}/user/{account}/api/status").status_code


def wait_ready(hub: LocalHub, account: str, ready: bool) -> None:
    admin = {"Authorization": f"token {hub.plan.admin_token}"}
    for _ in range(240):
        server = requests.get(f"{hub.plan.url}/hub/api/users/{account}", headers=admin).json()["servers"].get("", {})
        if bool(server.get("ready")) == ready and not server.get("pending"):
            return
        time.sleep(0.25)
    raise AssertionError(f"{account} did not become {'ready' if ready else 'stopped'}")


def write_roster(values: Path, members: dict[str, list[str]]) -> None:
    accounts = [{"group": g, "account": f"collab-{g}"} for g in members]
    declaration = {"access": "shares", "sharedAccounts": accounts, "members": members}
    (values / "stat159.secret.yaml").write_text(yaml.safe_dump({"jupyterhub": {"custom": {"coursehub": declaration}}}))


@pytest.fixture(scope="module")
def values(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = stat159_values(tmp_path_factory.mktemp("values"), {})
    write_roster(target, {"team-a": ["s-ana", "s-bo"], "team-b": ["s-cy"]})
    return target


@pytest.fixture(scope="module")
def hub(values: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        yield local


def test_the_config_holds_no_groups_and_sync_builds_them(hub: LocalHub, values: Path) -> None:
    assert groups(hub) == {}
    result = sync(hub, values)
    assert result.returncode == 0, result.stdout
    assert "share collab-team-a: s-ana, s-bo" in result.stdout and "make deploy" not in result.stdout
    assert sorted(groups(hub)["team-a"]["users"]) == ["s-ana", "s-bo"]
    assert "nothing to change" in sync(hub, values).stdout


def test_members_start_use_and_stop_the_account_and_nobody_else_can(hub: LocalHub) -> None:
    account = "collab-team-a"
    ana, bo, cy = Browser(hub, "s-ana"), Browser(hub, "s-bo"), Browser(hub, "s-cy")
    try:
        assert cy.start(account) in DENIED
        assert bo.start(account) in {201, 202}
        wait_ready(hub, account, ready=True)
        assert ana.use(account) == 200 and bo.use(account) == 200
        assert cy.use(account) in DENIED and cy.stop(account) in DENIED
        assert ana.stop(account) in {202, 204}
        wait_ready(hub, account, ready=False)
    finally:
        requests.delete(
            f"{hub.plan.url}/hub/api/users/{account}/server", headers={"Authorization": f"token {hub.plan.admin_token}"}
        )


def test_a_new_group_works_at_once_and_a_removed_student_loses_access(hub: LocalHub, values: Path) -> None:
    write_roster(values, {"team-a": ["s-ana"], "team-b": ["s-cy"], "team-new": ["s-dee"]})
    result = sync(hub, values)
    assert result.returncode == 0, result.stdout
    assert "unshare collab-team-a: s-bo" in result.stdout
    dee, ana, bo = Browser(hub, "s-dee"), Browser(hub, "s-ana"), Browser(hub, "s-bo")
    try:
        assert dee.start("collab-team-new") in {201, 202}
        wait_ready(hub, "collab-team-new", ready=True)
        assert dee.use("collab-team-new") == 200 and ana.use("collab-team-new") in DENIED
        assert bo.start("collab-team-a") in DENIED
    finally:
        requests.delete(
            f"{hub.plan.url}/hub/api/users/collab-team-new/server",
            headers={"Authorization": f"token {hub.plan.admin_token}"},
        )
    # the account is not in blocked_users until the next start, and still nobody can log in as it
    login = requests.Session()
    login.get(f"{hub.plan.url}/hub/login")
    r = login.post(
        f"{hub.plan.url}/hub/login",
        allow_redirects=False,
        data={"username": "collab-team-new", "password": hub.plan.password, "_xsrf": login.cookies.get("_xsrf")},
    )
    assert r.status_code == 403
