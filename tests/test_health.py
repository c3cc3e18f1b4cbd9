"""`make health` against a live local hub (real JupyterHub, proxy and singleuser servers on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from conftest import live_hub, stat159_values
from coursehub.courses import load_course
from coursehub.errors import Problem
from coursehub.ops.health import TOKEN_ENV, USER, health
from coursehub.ops.preflight import running_servers

pytestmark = pytest.mark.live

ACCOUNTS = [{"group": "shared-1", "account": "collab-shared-1"}]
SECRET = {"jupyterhub": {"custom": {"coursehub": {"members": {"shared-1": ["s-ana"]}}}}}


def check(values: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, timeout: float) -> tuple[list[Problem], str]:
    lines: list[str] = []
    with live_hub(values, workdir) as hub:
        monkeypatch.setenv(TOKEN_ENV, hub.plan.admin_token or "")
        problems = health(load_course("stat159", values_dir=values), hub.plan.url, timeout, lines.append)
        if not problems:  # what make deploy's plan reports with HUB_URL: servers running now
            admin = {"Authorization": f"token {hub.plan.admin_token}"}
            assert running_servers(hub.plan.url) == 0
            requests.post(f"{hub.plan.url}/hub/api/users/collab-shared-1/server", headers=admin).raise_for_status()
            assert running_servers(hub.plan.url) == 1
            requests.delete(f"{hub.plan.url}/hub/api/users/collab-shared-1/server", headers=admin)
        leftover = requests.get(
            f"{hub.plan.url}/hub/api/users/{USER}", headers={"Authorization": f"token {hub.plan.admin_token}"}
        ).status_code
    assert leftover == 404, "the health-check user was not deleted"
    return problems, "\n".join(lines)


def test_a_healthy_course_hub_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "values").mkdir()
    values = stat159_values(tmp_path / "values", SECRET, sharedAccounts=ACCOUNTS)
    problems, said = check(values, tmp_path / "hub", monkeypatch, 120)
    assert problems == [], "\n".join(map(str, problems))
    assert "server started" in said and "runs code" in said and "RTC is on, its stores are off the home" in said
    assert "1 shared accounts, each startable by its group's role" in said
    assert "s-ana" not in said


def test_with_rtc_for_shared_accounts_only_the_health_users_server_has_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "values").mkdir()
    values = stat159_values(tmp_path / "values", SECRET, sharedAccounts=ACCOUNTS, rtc="sharedAccounts")
    problems, said = check(values, tmp_path / "hub", monkeypatch, 120)
    assert problems == [], "\n".join(map(str, problems))
    assert "RTC is off in coursehub-health's server, as rtc: sharedAccounts wants" in said


def test_a_server_that_cannot_start_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "values").mkdir()
    values = stat159_values(tmp_path / "values", SECRET, sharedAccounts=ACCOUNTS)
    course = yaml.safe_load((values / "stat159.yaml").read_text())
    course["jupyterhub"]["singleuser"]["cmd"] = ["false"]  # the server exits at once
    (values / "stat159.yaml").write_text(yaml.safe_dump(course))
    problems, _ = check(values, tmp_path / "hub", monkeypatch, 60)
    assert len(problems) == 1, "\n".join(map(str, problems))
    assert problems[0].key == f"users/{USER}/server" and "did not start" in problems[0].message
    assert "\n" not in str(problems[0])
