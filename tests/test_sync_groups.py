"""`make sync-groups` against a real hub: dry run, live membership changes, idempotence, ownership."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from conftest import live_hub, stat159_values
from coursehub.localhub import LocalHub
from coursehub.paths import ROOT

START = {"shared-1": ["s-ana", "s-bo"], "shared-2": ["s-cy"]}


def write_roster(values: Path, members: dict[str, list[str]]) -> None:
    accounts = [{"group": g, "account": f"collab-{g}"} for g in members]
    secret = {"jupyterhub": {"custom": {"coursehub": {"sharedAccounts": accounts, "members": members}}}}
    (values / "stat159.secret.yaml").write_text(yaml.safe_dump(secret))


@pytest.fixture(scope="module")
def values(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = stat159_values(tmp_path_factory.mktemp("values"), {})
    write_roster(target, START)
    return target


@pytest.fixture(scope="module")
def hub(values: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        yield local


def sync(hub: LocalHub, values: Path, *extra: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "scripts"),
        "COURSEHUB_VALUES": str(values),
        "JUPYTERHUB_API_TOKEN": token if token is not None else str(hub.plan.admin_token),
    }
    return subprocess.run(
        [sys.executable, "-m", "coursehub", "sync-groups", "--course", "stat159", "--hub-url", hub.plan.url, *extra],
        capture_output=True,
        text=True,
        env=env,
    )


def groups(hub: LocalHub) -> dict[str, dict]:
    r = requests.get(f"{hub.plan.url}/hub/api/groups", headers={"Authorization": f"token {hub.plan.admin_token}"})
    r.raise_for_status()
    return {g["name"]: g for g in r.json()}


def test_the_hub_starts_in_sync_and_owns_its_groups(hub: LocalHub, values: Path) -> None:
    result = sync(hub, values)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to change" in result.stdout
    assert groups(hub)["shared-1"]["properties"] == {"coursehub.course": "stat159"}


def test_dry_run_prints_the_exact_changes_and_changes_nothing(hub: LocalHub, values: Path) -> None:
    write_roster(values, {"shared-1": ["s-ana", "s-cy"], "shared-2": [], "shared-new": ["s-dee"]})
    before = groups(hub)
    result = sync(hub, values, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "would create-users (1 students): s-dee",
        "would add-members shared-1: s-cy",
        "would remove-members shared-1: s-bo",
        "would remove-members shared-2: s-cy",
        "would create-account collab-shared-new",
        "would create-group shared-new: s-dee",
    ]
    assert groups(hub) == before


def test_sync_applies_membership_at_once_and_a_second_run_changes_nothing(hub: LocalHub, values: Path) -> None:
    result = sync(hub, values)
    assert result.returncode == 0, result.stdout + result.stderr
    now = groups(hub)
    assert sorted(now["shared-1"]["users"]) == ["s-ana", "s-cy"] and now["shared-2"]["users"] == []
    assert now["shared-new"]["users"] == ["s-dee"] and now["shared-new"]["properties"] == {
        "coursehub.course": "stat159"
    }
    assert "new groups shared-new" in result.stdout and "make deploy" in result.stdout
    again = sync(hub, values)
    assert again.returncode == 0 and "nothing to change" in again.stdout


def test_a_group_coursehub_does_not_own_is_left_alone(hub: LocalHub, values: Path) -> None:
    admin = {"Authorization": f"token {hub.plan.admin_token}"}
    requests.post(f"{hub.plan.url}/hub/api/users/prof", headers=admin).raise_for_status()
    requests.post(
        f"{hub.plan.url}/hub/api/groups/teaching-staff", headers=admin, json={"users": ["prof"]}
    ).raise_for_status()
    write_roster(
        values, {"shared-1": ["s-ana", "s-cy"], "shared-2": [], "shared-new": ["s-dee"], "teaching-staff": ["s-eve"]}
    )
    result = sync(hub, values)
    assert result.returncode == 1
    assert "conflict: group teaching-staff exists on the hub but coursehub does not own it" in result.stdout
    assert groups(hub)["teaching-staff"]["users"] == ["prof"]


def test_a_failure_part_way_says_what_was_applied_and_a_rerun_finishes(hub: LocalHub, values: Path) -> None:
    admin = {"Authorization": f"token {hub.plan.admin_token}"}
    # a token that may change shared-1's members and create users, but not create groups: it fails part-way
    scopes = ["admin:users", "list:users", "list:groups", "read:groups", "admin:groups!group=shared-1"]
    r = requests.post(f"{hub.plan.url}/hub/api/users/instructor/tokens", headers=admin, json={"scopes": scopes})
    assert r.status_code == 201, r.text
    limited = r.json()["token"]
    write_roster(values, {"shared-1": ["s-ana"], "shared-2": [], "shared-new": ["s-dee"], "late": ["s-fay"]})
    result = sync(hub, values, token=limited)
    assert result.returncode == 1, result.stdout
    assert "done: remove-members shared-1: s-cy" in result.stdout
    assert "error: create-group late: s-fay failed" in result.stdout
    assert "applied 3 of 4 changes; not applied: create-group late: s-fay. Run the same command again" in result.stdout
    assert sorted(groups(hub)["shared-1"]["users"]) == ["s-ana"] and "late" not in groups(hub)
    result = sync(hub, values)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[0] == "create-group late: s-fay"  # only what was not applied yet
    assert groups(hub)["late"]["users"] == ["s-fay"]


def test_the_token_never_comes_from_the_command_line(hub: LocalHub, values: Path) -> None:
    result = sync(hub, values, token="")
    assert result.returncode == 1 and "JUPYTERHUB_API_TOKEN: is not set" in result.stderr
