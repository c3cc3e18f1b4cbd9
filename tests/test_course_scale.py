"""A whole course at scale: a Canvas export of 1,000 groups and 4,000 students, end to end.

`make groups` turns the export into the private membership file; `make sync-groups`
builds the groups, accounts and accesses on a real hub (access "shares"); the access
matrix holds for sampled groups; a second sync changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from coursehub.courses import load_course
from coursehub.hub.local import LocalHub
from coursehub.paths import VALUES
from helpers.browser import Browser
from helpers.commands import coursehub
from helpers.hubs import DENIED, HubClient, live_hub, stat159_values, sync_groups

pytestmark = [pytest.mark.live, pytest.mark.slow]

GROUPS, PER_GROUP = 1000, 4


@pytest.fixture(scope="module")
def course_values(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scale")
    values = folder / "values"
    values.mkdir()
    for name in ("common.yaml", "stat159.yaml", "stat159.secret.example.yaml"):
        (values / name).write_text((VALUES / name).read_text())
    course = yaml.safe_load((values / "stat159.yaml").read_text())
    course["jupyterhub"]["custom"]["coursehub"]["access"] = "shares"
    (values / "stat159.yaml").write_text(yaml.safe_dump(course))
    roster = folder / "canvas-groups.csv"
    with open(roster, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["name", "canvas_user_id", "user_id", "login_id", "sections", "group_name", "canvas_group_id", "group_id"]
        )
        for g in range(GROUPS):
            for j in range(PER_GROUP):
                n = g * PER_GROUP + j
                writer.writerow(
                    [
                        f"Student {n}",
                        10000 + n,
                        f"sis{n}",
                        f"stu{n:05d}",
                        "Lab",
                        f"Project Group {g + 1}",
                        500 + g,
                        f"g{g}",
                    ]
                )
    result = coursehub("groups", "--course", "stat159", "--roster", str(roster), values=values)
    assert result.returncode == 0, result.stderr
    assert f"{GROUPS} groups and their accounts written to" in result.stdout
    assert f"{GROUPS * PER_GROUP} memberships to" in result.stdout
    return values


def test_the_export_becomes_the_committed_groups_file_and_the_private_membership_file(course_values: Path) -> None:
    assert (course_values / "stat159.groups.yaml").is_file()  # the accounts, reviewed in git
    declared = load_course("stat159", values_dir=course_values).values()["jupyterhub"]["custom"]["coursehub"]
    assert len(declared["sharedAccounts"]) == GROUPS
    assert declared["sharedAccounts"][41] == {"group": "project-group-42", "account": "collab-project-group-42"}
    assert declared["members"]["project-group-42"] == [f"stu{41 * PER_GROUP + j:05d}" for j in range(PER_GROUP)]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    """A hub deployed with the course's example roster: the export reaches it through sync, not a restart."""
    values = stat159_values(tmp_path_factory.mktemp("deployed"), {}, access="shares")
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        yield local


def test_sync_builds_the_course_and_the_access_matrix_holds(hub: LocalHub, course_values: Path) -> None:
    code, out = sync_groups(hub, course_values)
    assert code == 0, out[-2000:]
    code, out = sync_groups(hub, course_values)
    assert code == 0 and "nothing to change" in out, out[-2000:]
    for g in (1, 500, 1000):  # sampled groups: every member may, a neighbour group's member may not
        account = f"collab-project-group-{g}"
        member = Browser(hub, f"stu{(g - 1) * PER_GROUP:05d}")
        other = Browser(hub, f"stu{(g % GROUPS) * PER_GROUP:05d}")
        try:
            assert other.start(account) in DENIED
            assert member.start(account) in {201, 202}
            HubClient(hub).wait(account, ready=True)
            assert member.use(account) == 200 and other.use(account) in DENIED
        finally:
            requests.delete(
                f"{hub.plan.url}/hub/api/users/{account}/server",
                headers={"Authorization": f"token {hub.plan.admin_token}"},
            )
