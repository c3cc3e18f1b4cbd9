"""`make health` against a live local hub (real JupyterHub, proxy and singleuser servers on 127.0.0.1).

It runs with an operator's token of exactly the scopes the docs document (docs/how-to/deploy.md), issued to a
user that holds them through the course's hub.loadRoles, as a course would give them to its CI."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from jupyterhub.scopes import expand_scopes, reduce_scopes
from packaging.version import Version

from coursehub.courses import load_course
from coursehub.errors import Problem
from coursehub.hub.local import LocalHub
from coursehub.ops.health import HEALTH_SCOPES, OPERATOR_SCOPES, TOKEN_ENV, USER, health
from coursehub.ops.preflight import running_servers
from coursehub.paths import ROOT
from helpers.hubs import HubClient, live_hub, stat159_values

pytestmark = pytest.mark.live

ACCOUNTS = [{"group": "shared-1", "account": "collab-shared-1"}]
SECRET = {"jupyterhub": {"custom": {"coursehub": {"members": {"shared-1": ["s-ana"]}}}}}
OPERATOR = "coursehub-ops"  # the user whose token $JUPYTERHUB_API_TOKEN is


def course_values(
    folder: Path, scopes: tuple[str, ...] = OPERATOR_SCOPES, service_token: str = "", **course_keys: Any
) -> Path:
    """stat159's values, plus a role with `scopes` for the operator's user (hub.loadRoles, as a course sets it) and,
    with `service_token`, for a service of that name with that token."""
    folder.mkdir()
    values = stat159_values(folder, SECRET, sharedAccounts=ACCOUNTS, **course_keys)
    course = yaml.safe_load((values / "stat159.yaml").read_text())
    hub = course["jupyterhub"].setdefault("hub", {})
    role: dict[str, Any] = {"users": [OPERATOR], "scopes": list(scopes)}
    if service_token:
        hub.setdefault("config", {}).setdefault("JupyterHub", {})["services"] = [
            {"name": OPERATOR, "api_token": service_token}
        ]
        role["services"] = [OPERATOR]
    hub["loadRoles"] = {"coursehub-health-operator": role}
    (values / "stat159.yaml").write_text(yaml.safe_dump(course))
    return values


def held(scopes: tuple[str, ...], owner: str) -> set[str]:
    """What a token of `owner` issued with `scopes` holds, as the hub lists it: the scopes with all they include
    (JupyterHub's own expansion, reduced), and what every token may read of its owner (its name and groups)."""
    identify = {f"read:users:name!user={owner}", f"read:users:groups!user={owner}"}
    return set(reduce_scopes(expand_scopes(set(scopes)) | identify))


def operator_token(hub: HubClient, scopes: tuple[str, ...] = OPERATOR_SCOPES) -> str:
    """A token of the operator's user that holds exactly `scopes` (the hub says so), none of the user's own."""
    r = requests.post(f"{hub.url}/hub/api/users/{OPERATOR}/tokens", json={"scopes": list(scopes)}, headers=hub.admin)
    assert r.status_code == 201, r.text
    assert set(reduce_scopes(r.json()["scopes"])) == held(scopes, OPERATOR), r.json()["scopes"]
    return str(r.json()["token"])


def tokens(hub: HubClient, user: str = USER) -> list[dict[str, Any]]:
    """The user's tokens as the hub lists them (its server's own among them)."""
    r = requests.get(f"{hub.url}/hub/api/users/{user}/tokens", headers=hub.admin)
    r.raise_for_status()
    return list(r.json()["api_tokens"])


def same_tokens(listed: list[dict[str, Any]]) -> list[tuple[str, str, tuple[str, ...]]]:
    """What identifies each token (its last activity moves as its server reports in)."""
    return sorted((t["id"], t["note"], tuple(sorted(t["scopes"]))) for t in listed)


def log_since(local: LocalHub, offset: int) -> str:
    """The hub's log past `offset`: the hub's lines and its local servers' (they write to the same file)."""
    with open(local.log, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def operator_at_a_server(local: LocalHub, offset: int) -> list[str]:
    """Lines of the hub's log past `offset` that show the operator's token at a server: the server asking the hub
    whose token it is (make health itself never asks), the server turning its owner away, or serving them."""
    asked, refused, served = f"/hub/api/user ({OPERATOR}@", f"Not allowing user {OPERATOR}", f"({OPERATOR}@"
    lines = log_since(local, offset).splitlines()
    return [line for line in lines if asked in line or refused in line or ("ServerApp]" in line and served in line)]


def check(
    values: Path,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    timeout: float,
    while_running: Callable[[HubClient], None] = lambda hub: None,
    scopes: tuple[str, ...] = OPERATOR_SCOPES,
) -> tuple[list[Problem], str]:
    """Run make health with the operator's token; `while_running` looks at the hub when the server has started."""
    lines: list[str] = []
    with live_hub(values, workdir) as local:
        hub = HubClient(local)
        monkeypatch.setenv(TOKEN_ENV, operator_token(hub, scopes))

        def say(line: str) -> None:
            lines.append(line)
            if "server started" in line:
                while_running(hub)

        offset = local.log.stat().st_size
        problems = health(load_course("stat159", values_dir=values), hub.url, timeout, say)
        assert operator_at_a_server(local, offset) == []
        # (the log shows whose token a server was given: the run's, when its server ran code)
        assert problems or f"/hub/api/user ({USER}@" in log_since(local, offset)
        if not problems:  # what make deploy's plan reports with HUB_URL: servers running now (its own token)
            monkeypatch.setenv(TOKEN_ENV, hub.plan.admin_token or "")
            assert running_servers(hub.url) == 0
            requests.post(f"{hub.url}/hub/api/users/collab-shared-1/server", headers=hub.admin).raise_for_status()
            assert running_servers(hub.url) == 1
            requests.delete(f"{hub.url}/hub/api/users/collab-shared-1/server", headers=hub.admin)
        leftover = requests.get(f"{hub.url}/hub/api/users/{USER}", headers=hub.admin).status_code
    assert leftover == 404, "the health-check user was not deleted"
    return problems, "\n".join(lines)


def test_the_docs_document_the_operator_scopes_these_tests_use() -> None:
    page = ROOT / "docs" / "how-to" / "deploy.md"  # "Check the hub after a deploy"
    paragraph = next(p for p in page.read_text().split("\n\n") if p.startswith("`make health`"))
    operator = " ".join(paragraph.split()).partition("needs only ")[2].partition(", and never")[0]
    assert set(re.findall(r"`([^`]+)`", operator)) == set(OPERATOR_SCOPES), paragraph


def test_a_healthy_course_hub_passes_with_the_documented_scopes_and_the_health_users_own_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[dict[str, Any]]] = []
    problems, said = check(
        course_values(tmp_path / "values"), tmp_path / "hub", monkeypatch, 120, lambda hub: seen.append(tokens(hub))
    )
    assert problems == [], "\n".join(map(str, problems))
    assert "server started" in said and "runs code" in said and "RTC is on, its stores are off the home" in said
    assert "1 shared accounts, each startable by its group's role" in said
    assert "s-ana" not in said
    # while its server ran, the health user had one token besides its server's: its own server's scopes, expiring
    [listed] = seen
    [token] = [t for t in listed if t["note"] != f"Server at /user/{USER}/"]
    assert set(reduce_scopes(token["scopes"])) == held(HEALTH_SCOPES, USER) and token["expires_at"], token


def test_with_rtc_for_shared_accounts_only_the_health_users_server_has_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = course_values(tmp_path / "values", rtc="sharedAccounts")
    problems, said = check(values, tmp_path / "hub", monkeypatch, 120)
    assert problems == [], "\n".join(map(str, problems))
    assert "RTC is off in coursehub-health's server, as rtc: sharedAccounts wants" in said


def test_a_server_that_cannot_start_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = course_values(tmp_path / "values")
    course = yaml.safe_load((values / "stat159.yaml").read_text())
    course["jupyterhub"]["singleuser"]["cmd"] = ["false"]  # the server exits at once
    (values / "stat159.yaml").write_text(yaml.safe_dump(course))
    problems, _ = check(values, tmp_path / "hub", monkeypatch, 60)
    assert len(problems) == 1, "\n".join(map(str, problems))
    assert problems[0].key == f"users/{USER}/server" and "did not start" in problems[0].message
    assert "\n" not in str(problems[0])


def test_without_the_token_scope_it_is_one_line_and_the_user_is_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scopes = tuple(s for s in OPERATOR_SCOPES if not s.startswith("tokens"))
    problems, _ = check(course_values(tmp_path / "values", scopes), tmp_path / "hub", monkeypatch, 60, scopes=scopes)
    assert [p.key for p in problems] == [f"users/{USER}/tokens"], "\n".join(map(str, problems))
    assert f"tokens!user={USER}" in problems[0].fix and "\n" not in str(problems[0])


def test_an_existing_health_user_with_a_server_is_refused_and_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = course_values(tmp_path / "values")
    with live_hub(values, tmp_path / "hub") as local:
        hub = HubClient(local)
        # someone else's coursehub-health: a running server and a token of its own
        requests.post(f"{hub.url}/hub/api/users/{USER}", headers=hub.admin).raise_for_status()
        requests.post(f"{hub.url}/hub/api/users/{USER}/server", headers=hub.admin).raise_for_status()
        hub.wait(USER, ready=True)
        requests.post(f"{hub.url}/hub/api/users/{USER}/tokens", json={"note": "theirs"}, headers=hub.admin)
        server, theirs = hub.server(USER), tokens(hub)
        operator = operator_token(hub)
        monkeypatch.setenv(TOKEN_ENV, operator)
        offset = local.log.stat().st_size

        problems = health(load_course("stat159", values_dir=values), hub.url, 60, lambda line: None)

        assert [(p.key, "\n" in str(p)) for p in problems] == [(f"users/{USER}", False)], problems
        assert "exists already" in problems[0].message and "delete it by hand" in problems[0].fix
        after = hub.server(USER)
        assert after["ready"] and after["started"] == server["started"], after
        assert same_tokens(tokens(hub)) == same_tokens(theirs)
        # its server saw no request at all, and none with the operator's token
        assert f"/user/{USER}/" not in log_since(local, offset) and operator_at_a_server(local, offset) == []
        # (which the log shows when it happens)
        denied = requests.get(f"{hub.url}/user/{USER}/api/status", headers={"Authorization": f"token {operator}"})
        assert denied.status_code == 403
        local.wait_for_log(f"/user/{USER}/api/status", offset, 10)
        assert operator_at_a_server(local, offset) != []


def test_a_services_token_with_the_scopes_works_from_jupyterhub_5_5_3_and_before_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JupyterHub 5.5.0 to 5.5.2 check `tokens!user=` against the service, not the user, so they refuse a service's
    token the health user's token: what the README and the fix of the one line say."""
    token = secrets.token_hex(16)
    values = course_values(tmp_path / "values", service_token=token)
    with live_hub(values, tmp_path / "hub") as local:
        monkeypatch.setenv(TOKEN_ENV, token)
        version = requests.get(f"{local.plan.url}/hub/api/").json()["version"]
        problems = health(load_course("stat159", values_dir=values), local.plan.url, 120, lambda line: None)
        leftover = requests.get(f"{local.plan.url}/hub/api/users/{USER}", headers=HubClient(local).admin)
    assert leftover.status_code == 404, "the health-check user was not deleted"
    if Version(version) >= Version("5.5.3"):
        assert problems == [], "\n".join(map(str, problems))
    else:
        assert [p.key for p in problems] == [f"users/{USER}/tokens"], "\n".join(map(str, problems))
        assert "(403)" in problems[0].message and "a user's token" in problems[0].fix
