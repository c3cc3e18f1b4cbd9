"""`custom.coursehub.rtc`: real-time collaboration in every server (`everyone`) or in the shared accounts' only.

First what the hub-side Python makes of each setting, as the hub in the cluster
runs it: the chart rendered by real Helm with the real z2jh chart, the file
from the rendered ConfigMap, the values from the rendered Secret/hub, and the
pods KubeSpawner 7.0.0 (z2jh 4.4.0's) would create for a shared account and a
student. Then bad values. Then live: a real hub on each of stat159's image
stacks (JupyterLab 3.6 and JupyterLab 4 with jupyter-collaboration), where a
student starts the group's account and their own server, and each server's
JupyterLab says whether RTC is on, in the page config its frontend reads:
`collaborative` on JupyterLab 3.6 (`--LabApp.collaborative`), `disableRTC` on
JupyterLab 4 (`--YDocExtension.disable_rtc`; the collaboration endpoints are
there either way, so they do not tell).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from traitlets.config import Config

from coursehub.chart import pods
from coursehub.chart.checks import check_values
from coursehub.chart.upstream import load_data
from coursehub.courses import load_course
from coursehub.groups import hubpython
from coursehub.hub.local import LocalHub
from helpers.chart import render_chart
from helpers.files import edit
from helpers.hubs import GroupsRead, HubClient, hub_groups, live_hub, stat159_values

hub_python = hubpython.load()
reconciler = hubpython.reconciler()

LEDGER = hub_python.ledger_name("stat159")
ACCOUNT, STUDENT = "collab-shared-1", "s-ana"
# --- what the hub in the cluster makes of it -------------------------------------------------


def pod_commands(objs: list[dict[str, Any]], users: dict[str, list[str]]) -> dict[str, list[str]]:
    """The singleuser container's command line of each user's pod (user: their groups), from a rendered chart:
    z2jh's own jupyterhub_config.py with coursehub's hub-side file as the ConfigMap ships it (coursehub.chart.pods),
    then KubeSpawner 7.0.0 with JupyterHub's group overrides, as the hub applies them before every start."""
    config = pods.hub_config(objs)
    built = {
        name: pods.pod_manifest(config, pods.PodUser(name, [pods.Group(g) for g in groups]))
        for name, groups in users.items()
    }
    return {name: list(pod["spec"]["containers"][0]["args"]) for name, pod in built.items()}


@pytest.mark.parametrize("course", ["stat159", "data100"])
def test_shared_accounts_pods_get_the_courses_rtc_and_students_pods_none(course: str) -> None:
    objs = render_chart({"jupyterhub.custom.coursehub.rtc": "sharedAccounts"}, course=course)
    cmd = load_course(course).values()["jupyterhub"]["singleuser"]["cmd"]
    ledger = hub_python.ledger_name(course)
    commands = pod_commands(objs, {"collab-shared-1": [ledger], "s-ana": ["shared-1"], "instructor": []})
    switch = [arg for arg in cmd if arg.startswith(hub_python.RTC_SWITCH + "=")]
    assert switch == (["--LabApp.collaborative=true"] if course == "stat159" else [])  # JupyterLab 3.6's switch
    # the account: every flag of the course's command, RTC's switch last (Spawner.args), no off flag
    assert commands["collab-shared-1"] == [arg for arg in cmd if arg not in switch] + switch
    # a student's own server (and anyone's not in the ledger group, whatever their groups): off on both stacks
    off = [arg for arg in cmd if arg not in switch] + [hub_python.RTC_OFF]
    assert commands["s-ana"] == off and commands["instructor"] == off


def test_everyone_the_default_runs_the_courses_command_unchanged() -> None:
    objs = render_chart(course="stat159")
    cmd = load_course("stat159").values()["jupyterhub"]["singleuser"]["cmd"]
    commands = pod_commands(objs, {"collab-shared-1": [LEDGER], "s-ana": ["shared-1"]})
    assert commands == {"collab-shared-1": cmd, "s-ana": cmd}


def test_the_settings_keep_the_hubs_own_args_and_group_overrides() -> None:
    c = Config()
    c.Spawner.cmd = ["jupyterhub-singleuser", "--LabApp.collaborative=true", "--x=1"]
    c.Spawner.args = ["--debug"]
    theirs = {"groups": ["tas"], "spawner_override": {"mem_limit": "4G"}}
    c.Spawner.group_overrides = {"big": theirs}
    hub_python.apply(c, {"course": "stat159", "rtc": "sharedAccounts"})
    assert c.Spawner.cmd == ["jupyterhub-singleuser", "--x=1"]
    assert c.Spawner.args == ["--debug", hub_python.RTC_OFF]
    assert c.Spawner.group_overrides == {
        "big": theirs,
        hub_python.RTC_OVERRIDE: {
            "groups": [LEDGER],
            "spawner_override": {"args": ["--debug", "--LabApp.collaborative=true"]},
        },
    }
    c = Config()
    c.Spawner.cmd = ["jupyterhub-singleuser"]
    hub_python.apply(c, {"course": "stat159"})
    assert dict(c.Spawner) == {"cmd": ["jupyterhub-singleuser"]}  # everyone: nothing added


# --- bad values --------------------------------------------------------------------------------


def test_a_bad_value_is_named_with_the_file_the_key_and_the_fix(values_dir: Path) -> None:
    edit(values_dir / "stat159.yaml", {"jupyterhub.custom.coursehub.rtc": "students"})
    found = check_values(load_course("stat159", values_dir=values_dir), load_data())
    assert found and all(p.key == "jupyterhub.custom.coursehub.rtc" for p in found), "\n".join(map(str, found))
    assert all(p.file.endswith("stat159.yaml") and "sharedAccounts" in p.fix for p in found)
    assert any("is not one of ['everyone', 'sharedAccounts']" in p.message for p in found)  # the schema's
    with pytest.raises(hub_python.DeclarationError) as caught:  # and the hub's, were it to get there
        hub_python.apply(Config(), {"course": "stat159", "rtc": "students"})
    assert caught.value.key == "rtc" and "everyone" in caught.value.fix


def test_shared_accounts_only_needs_a_singleuser_command(values_dir: Path) -> None:
    edit(values_dir / "stat159.yaml", {"jupyterhub.custom.coursehub.rtc": "sharedAccounts"})
    assert check_values(load_course("stat159", values_dir=values_dir), load_data()) == []
    c = Config()
    c.Spawner.cmd = None  # the image's own command: KubeSpawner would drop Spawner.args, and the off flag with them
    with pytest.raises(hub_python.DeclarationError) as caught:
        hub_python.apply(c, {"course": "stat159", "rtc": "sharedAccounts"})
    assert caught.value.key == "rtc" and "needs a singleuser command" in caught.value.problem
    assert "jupyterhub.singleuser.cmd" in caught.value.fix


# --- the reconciler keeps the accounts in the ledger group ---------------------------------------


_Hub = GroupsRead


def _hub(ledger_members: list[str]) -> _Hub:
    """A hub where coursehub made shared-1 and shared-2 and their accounts, the ledger with these members."""
    ledger = {
        "coursehub.course": "stat159",
        "groups": {"shared-1": "collab-shared-1", "shared-2": "collab-shared-2"},
        "accounts": ["collab-shared-1", "collab-shared-2"],
    }
    return _Hub(
        {
            LEDGER: {"users": ledger_members, "properties": ledger},
            "shared-1": {"users": ["s-ana"], "roles": ["coursehub-access-shared-1"]},
            "shared-2": {"users": ["s-bo"], "roles": ["coursehub-access-shared-2"]},
        }
    )


DECLARED = {
    "course": "stat159",
    "sharedAccounts": [{"group": "shared-1", "account": "collab-shared-1"}],  # shared-2 is dropped
    "members": {"shared-1": ["s-ana"]},
}


@pytest.mark.parametrize(
    ("rtc", "members", "changes"),
    [
        ("sharedAccounts", [], [("add-members", LEDGER, ("collab-shared-1",))]),
        ("sharedAccounts", ["collab-shared-1"], []),
        ("sharedAccounts", ["collab-shared-1", "collab-shared-2"], [("remove-members", LEDGER, ("collab-shared-2",))]),
        (
            "everyone",
            ["collab-shared-1", "collab-shared-2"],
            [("remove-members", LEDGER, ("collab-shared-1", "collab-shared-2"))],
        ),
        ("everyone", [], []),
    ],
)
def test_the_ledger_groups_members_are_the_accounts_exactly_when_only_they_get_rtc(
    rtc: str, members: list[str], changes: list[tuple[str, str, tuple[str, ...]]]
) -> None:
    result = reconciler.plan({**DECLARED, "rtc": rtc}, _hub(members))
    ledger_changes = [(c.action, c.target, c.users) for c in result.changes if c.target == LEDGER]
    assert ledger_changes == changes
    # nothing else moves: the dropped group goes, and its account's server is stopped (its token with it)
    assert [c.action for c in result.changes if c.target != LEDGER] == ["drop-group", "stop-server"]


# --- live: both image stacks ---------------------------------------------------------------------

STACKS = {"2023.03.1": "jupyterlab3.6", "2026.11.1": "jupyterlab4"}
CASES = [(tag, rtc) for tag in STACKS for rtc in ("sharedAccounts", None)]  # None: the default, everyone


@dataclass
class Live:
    hub: LocalHub
    stack: str
    rtc: str


@pytest.fixture(scope="module", params=CASES, ids=lambda case: f"{STACKS[case[0]]}-{case[1] or 'default'}")
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tag, rtc = request.param
    secret = {"jupyterhub": {"custom": {"coursehub": {"members": {"shared-1": [STUDENT]}}}}}
    keys: dict[str, Any] = {"sharedAccounts": [{"group": "shared-1", "account": ACCOUNT}]}
    if rtc:
        keys["rtc"] = rtc
    values = stat159_values(tmp_path_factory.mktemp("values"), secret, **keys)
    edit(values / "stat159.yaml", {"jupyterhub.singleuser.image.tag": tag})
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        yield Live(local, STACKS[tag], rtc or "everyone")


def page_config(api: HubClient, user: str) -> dict[str, Any]:
    page = requests.get(f"{api.url}/user/{user}/lab", headers=api.admin)
    assert page.status_code == 200, page.text[:300]
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page.text, re.S)
    assert found, page.text[:300]
    return dict(json.loads(found.group(1)))


def rtc_on(stack: str, config: dict[str, Any]) -> bool:
    """What the stack's frontend reads to decide whether documents are collaborative."""
    if stack == "jupyterlab3.6":
        return config["collaborative"] is True
    return config["disableRTC"] is False  # jupyter-collaboration's server extension sets it, True or False


@pytest.mark.live
def test_rtc_is_on_exactly_where_the_course_wants_it(live: Live) -> None:
    api = HubClient(live.hub)
    offset = live.hub.log.stat().st_size
    try:
        # the student starts the account (whose groups count: not hers) and her own server
        assert api.start(STUDENT, ACCOUNT) in {201, 202}
        assert api.start(STUDENT, STUDENT) in {201, 202}
        api.wait(ACCOUNT, ready=True)
        api.wait(STUDENT, ready=True)
        assert api.use(STUDENT, ACCOUNT) == 200 and api.use(STUDENT, STUDENT) == 200
        have = {user: rtc_on(live.stack, page_config(api, user)) for user in (ACCOUNT, STUDENT)}
    finally:
        for user in (ACCOUNT, STUDENT):
            requests.delete(f"{api.url}/hub/api/users/{user}/server", headers=api.admin)
            api.wait(user, ready=False)
    assert have == {ACCOUNT: True, STUDENT: live.rtc == "everyone"}
    expected = [ACCOUNT] if live.rtc == "sharedAccounts" else []
    assert sorted(hub_groups(live.hub)[LEDGER]["users"]) == expected
    with open(live.hub.log, "rb") as log:
        log.seek(offset)
        assert b"error linking extension" not in log.read()  # every server's JupyterLab took its flags
