"""Large courses (`access: shares`): no per-group config at all; the reconciler shares each account's server
with its group, so membership alone decides who may use it.

A new group works as soon as sync has run, with no restart; a student removed
from the roster, or a whole group dropped from it, loses the account's server.
Every test starts its own hub.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from coursehub.hub.local import LocalHub
from helpers.browser import Browser, log_in
from helpers.hubs import (
    DENIED,
    HubClient,
    hub_groups,
    live_hub,
    redeploy,
    stat159_values,
    sync_groups,
    until,
    write_roster,
)

pytestmark = pytest.mark.live

START = {"team-a": ["s-ana", "s-bo"], "team-b": ["s-cy"]}


@pytest.fixture
def values(tmp_path: Path) -> Path:
    (tmp_path / "values").mkdir()
    target = stat159_values(tmp_path / "values", {})
    write_roster(target, START, access="shares")
    return target


@pytest.fixture
def hub(values: Path, tmp_path: Path) -> Iterator[LocalHub]:
    with live_hub(values, tmp_path / "hub") as local:
        yield local


def shares_of(hub: LocalHub, account: str) -> list[tuple[str, str | None]]:
    """The shares of the account's server on the hub: (kind, group name)."""
    r = requests.get(f"{hub.plan.url}/hub/api/shares/{account}", headers=HubClient(hub).admin)
    r.raise_for_status()
    return [(s["kind"], (s["group"] or {}).get("name")) for s in r.json()["items"]]


def stop(hub: LocalHub, account: str) -> None:
    requests.delete(f"{hub.plan.url}/hub/api/users/{account}/server", headers=HubClient(hub).admin)


def test_the_config_loads_no_group_role_and_the_reconciler_shares_each_account_with_its_group(
    hub: LocalHub, values: Path
) -> None:
    groups = hub_groups(hub)
    assert not any(r.startswith("coursehub-access-") for g in groups.values() for r in g.get("roles") or ())
    assert sorted(groups["team-a"]["users"]) == ["s-ana", "s-bo"]
    code, out = sync_groups(hub, values)
    assert code == 0 and "nothing to change" in out, out
    account = "collab-team-a"
    ana, bo, cy = Browser(hub, "s-ana"), Browser(hub, "s-bo"), Browser(hub, "s-cy")
    try:
        assert cy.start(account) in DENIED
        assert bo.start(account) in {201, 202}
        HubClient(hub).wait(account, ready=True)
        assert ana.use(account) == 200 and bo.use(account) == 200
        # ana's tokens as the token page lists them: the one her log-in to the server made can use the server
        listed = requests.get(f"{hub.plan.url}/hub/api/users/s-ana/tokens", headers=HubClient(hub).admin)
        assert any(f"access:servers!server={account}/" in t["scopes"] for t in listed.json()["api_tokens"])
        assert cy.use(account) in DENIED and cy.stop(account) in DENIED
        assert ana.stop(account) in {202, 204}
        HubClient(hub).wait(account, ready=False)
    finally:
        stop(hub, account)


def test_a_new_group_works_at_once_and_removals_take_access_away(hub: LocalHub, values: Path) -> None:
    write_roster(values, {"team-a": ["s-ana"], "team-new": ["s-dee"]}, access="shares")  # team-b dropped
    code, out = sync_groups(hub, values)
    assert code == 0, out
    assert "remove-members team-a: s-bo" in out and "unshare-all collab-team-b" in out
    assert "share collab-team-new with group team-new" in out and "unshare-all collab-team-a" not in out
    assert "drop-group team-b" in out and "make deploy" not in out
    dee, ana, bo, cy = (Browser(hub, s) for s in ("s-dee", "s-ana", "s-bo", "s-cy"))
    try:
        assert dee.start("collab-team-new") in {201, 202}
        HubClient(hub).wait("collab-team-new", ready=True)
        assert dee.use("collab-team-new") == 200 and ana.use("collab-team-new") in DENIED
        assert bo.start("collab-team-a") in DENIED
        assert cy.start("collab-team-b") in DENIED
    finally:
        stop(hub, "collab-team-new")
    # nobody can log in as the new account, though the hub has not restarted since it was made
    _, r = log_in(hub.plan.url, "collab-team-new", hub.plan.password)
    assert r.status_code == 403
    code, out = sync_groups(hub, values)
    assert code == 0 and "nothing to change" in out, out


def test_shares_with_single_students_give_way_to_the_groups_share(hub: LocalHub, values: Path) -> None:
    """An account shared student by student (by hand, or by coursehub before it shared with groups): the next
    sync leaves the group's share alone on it, and a student it was shared with outside the group loses it."""
    url, admin = f"{hub.plan.url}/hub/api", HubClient(hub).admin
    r = requests.post(f"{url}/shares/collab-team-a/", headers=admin, json={"user": "s-cy"})
    assert r.status_code == 200, r.text
    ledger = hub_groups(hub)["coursehub:stat159"]["properties"]
    ledger["shared"]["collab-team-a"] = "0123456789abcdef"  # how coursehub before group shares recorded it
    requests.put(f"{url}/groups/coursehub:stat159/properties", headers=admin, json=ledger).raise_for_status()
    code, out = sync_groups(hub, values)
    assert code == 0, out
    assert "unshare-all collab-team-a" in out and "share collab-team-a with group team-a" in out
    assert shares_of(hub, "collab-team-a") == [("group", "team-a")]
    ana, cy = Browser(hub, "s-ana"), Browser(hub, "s-cy")
    try:
        assert ana.start("collab-team-a") in {201, 202}
        HubClient(hub).wait("collab-team-a", ready=True)
        assert ana.use("collab-team-a") == 200 and cy.use("collab-team-a") in DENIED
    finally:
        stop(hub, "collab-team-a")
    code, out = sync_groups(hub, values)
    assert code == 0 and "nothing to change" in out, out


def test_a_group_renamed_with_its_account_kept_stays_shared_with_the_new_name(hub: LocalHub, values: Path) -> None:
    """team-b becomes team-z, keeping collab-team-b: the dropped name's share goes with its group, and the
    account is shared with team-z at the end of that same sync (not unshared again as the dropped group's)."""
    renamed = [{"group": "team-a", "account": "collab-team-a"}, {"group": "team-z", "account": "collab-team-b"}]
    members = {"team-a": START["team-a"], "team-z": START["team-b"]}
    write_roster(values, members, access="shares", sharedAccounts=renamed)
    code, out = sync_groups(hub, values)
    assert code == 0, out
    planned = [line for line in out.splitlines() if not line.startswith("done: ")]
    assert "drop-group team-b" in planned and "share collab-team-b with group team-z" in planned, out
    assert "unshare-all collab-team-b" not in planned[planned.index("share collab-team-b with group team-z") :], out
    assert shares_of(hub, "collab-team-b") == [("group", "team-z")]
    code, out = sync_groups(hub, values)
    assert code == 0 and "nothing to change" in out, out


def test_a_group_an_admin_deleted_and_made_again_is_shared_again_on_recheck(hub: LocalHub, values: Path) -> None:
    """JupyterHub deletes a group's shares with the group. A group made again by hand between two runs is not
    noticed by a sync that trusts its ledger (README, access `shares`); `make sync-groups RECHECK=1` reads every
    account's shares and shares it again."""
    url, admin = f"{hub.plan.url}/hub/api", HubClient(hub).admin
    requests.delete(f"{url}/groups/team-a", headers=admin).raise_for_status()
    r = requests.post(f"{url}/groups/team-a", headers=admin, json={"users": ["s-ana", "s-bo"]})
    assert r.status_code == 201, r.text
    assert shares_of(hub, "collab-team-a") == []
    code, out = sync_groups(hub, values)
    assert code == 0 and "nothing to change" in out, out
    code, out = sync_groups(hub, values, recheck=True)
    assert code == 0 and "share collab-team-a with group team-a" in out and "collab-team-b" not in out, out
    ana = Browser(hub, "s-ana")
    try:
        assert ana.start("collab-team-a") in {201, 202}
        HubClient(hub).wait("collab-team-a", ready=True)
        assert ana.use("collab-team-a") == 200
    finally:
        stop(hub, "collab-team-a")


def test_a_deploy_keeps_the_groups_server_usable_by_its_members_and_only_them(hub: LocalHub, values: Path) -> None:
    """The token wrapper is applied at every hub start: after a deploy (a restart with changed values), the
    running server still takes its members' tokens and a student moved in may use it; a student moved out is
    refused, and the group's server is restarted then (its token, which they could have read, dies with the old
    one) for the members who stay."""
    ana, bo, cy = Browser(hub, "s-ana"), Browser(hub, "s-bo"), Browser(hub, "s-cy")
    client = HubClient(hub)
    try:
        assert ana.start("collab-team-a") in {201, 202}
        client.wait("collab-team-a", ready=True)
        assert ana.use("collab-team-a") == 200 and bo.use("collab-team-a") == 200
        write_roster(values, {"team-a": ["s-ana", "s-bo", "s-cy"], "team-b": []}, access="shares")  # cy joins
        redeploy(hub, values)
        assert client.server("collab-team-a").get("ready"), "the deploy stopped the group's server"
        assert ana.use("collab-team-a") == 200 and cy.use("collab-team-a") == 200
        pid = client.pid("collab-team-a")
        write_roster(values, {"team-a": ["s-ana", "s-cy"], "team-b": ["s-bo"]}, access="shares")  # bo moves out
        redeploy(hub, values)
        until(lambda: client.pid("collab-team-a") not in (None, pid), what="restarted: the group lost a member")
        client.wait("collab-team-a", ready=True)
        assert bo.start("collab-team-a") in DENIED and bo.stop("collab-team-a") in DENIED
        assert cy.use("collab-team-a") == 200 and ana.use("collab-team-a") == 200  # nobody had to start it
    finally:
        stop(hub, "collab-team-a")
