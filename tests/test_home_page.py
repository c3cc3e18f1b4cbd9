"""The hub's home page shows each user their group servers (hub/coursehub_hub/homepage.py, templates/home.html).

Live: a real hub (helpers.hubs.live_hub: JupyterHub from the hub image's environment, configurable-http-proxy,
stat159's values) with servers on their own origins, as stat159 has them, once per access mode (roles, shares). A student in two groups sees exactly
those two, stopped and then, after a start through the page's own button, running with an Open button to the
account's own origin; a student in no group sees no group section; a TA sees every group; another group's name
never reaches a student's page, and no group name reaches the hub's log. Fast: what the hub side puts in the
hub's config, and that the hub image's environment installs the template with the package.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from traitlets.config import Config

from coursehub.hub.local import LocalHub
from coursehub_hub import config, homepage
from helpers.files import edit
from helpers.hubs import HubClient, live_hub, stat159_values
from test_subdomains import KEY, ORIGIN, log_in, origin

# s-ana is in two groups, s-bo in one of hers and in lab-c, which s-ana must never see; s-dee is in none.
GROUPS = {"lab-a": ["s-ana", "s-bo"], "lab-b": ["s-ana"], "lab-c": ["s-bo"]}
ACCOUNTS = {group: f"collab-{group}" for group in GROUPS}
TA = "ta-tom"
LONER = "s-dee"


class Rows(HTMLParser):
    """The group-server rows of a home page: (group, account, state, button text, button href) each."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.heading: list[str] = []
        self._in: str | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "tr" and "coursehub-group-server" in classes:
            self.rows.append({"group": a["data-group"], "account": a["data-account"], "state": a["data-state"]})
        elif tag == "a" and "coursehub-server-button" in classes:
            self.rows[-1].update(href=a.get("href"), button="")
            self._in = "button"
        elif tag == "time" and self.rows:
            self.rows[-1]["activity"] = a["datetime"]
        elif tag == "div" and a.get("id") == "coursehub-group-servers":
            self._in = "section"
        elif tag == "h2" and self._in == "section":
            self._in = "heading"

    def handle_endtag(self, tag: str) -> None:
        if (self._in, tag) in {("button", "a"), ("heading", "h2")}:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "button":
            self.rows[-1]["button"] += data.strip()
        elif self._in == "heading":
            self.heading.append(data.strip())


def shown(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(r["group"], r["account"], r["state"], r["button"]) for r in rows]


def named(page: str, group: str) -> bool:
    """The page names `group` on its own (not as part of its account's name, collab-<group>)."""
    return re.search(rf"(?<![\w.-]){re.escape(group)}(?![\w-])", page) is not None


@pytest.fixture(scope="module", params=["roles", "shares"], ids=lambda access: f"access-{access}")
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    """The hub, once per way access is granted: the page shows what each one lets a user reach."""
    accounts = [{"group": g, "account": a} for g, a in ACCOUNTS.items()]
    secret = {"jupyterhub": {"custom": {"coursehub": {"members": GROUPS, "staff": [TA]}}}}
    values = stat159_values(tmp_path_factory.mktemp("values"), secret, sharedAccounts=accounts, access=request.param)
    edit(values / "stat159.yaml", {KEY: ORIGIN})  # servers on their own origins, as stat159 has them
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        yield local


@pytest.fixture
def api(hub: LocalHub) -> Iterator[HubClient]:
    """Admin calls on the hub; every group account's server stopped after each test, whatever happened."""
    helper = HubClient(hub)
    try:
        yield helper
    finally:
        for account in ACCOUNTS.values():
            requests.delete(f"{helper.url}/hub/api/users/{account}/server", headers=helper.admin)
            helper.wait(account, ready=False)


def home(hub: LocalHub, user: str) -> tuple[requests.Session, str, str]:
    """`user` logs in on the hub's origin: (their browser session, where the log-in sent them, their home page)."""
    session, r = log_in(hub, user)
    page = session.get(f"{origin(hub)}/hub/home")
    assert page.status_code == 200 and page.url.endswith("/hub/home"), (page.status_code, page.url)
    return session, r.headers["Location"], page.text


def start_as(hub: LocalHub, student: str, account: str) -> None:
    """`student` starts `account`'s server through the hub's API from their browser session on the hub's origin
    (HubClient's own log-in is on 127.0.0.1, which is not the hub's origin here: only its admin calls are used)."""
    session, _ = log_in(hub, student)
    xsrf = {"X-XSRFToken": session.cookies.get("_xsrf", domain="hub.localhost") or ""}
    assert session.post(f"{origin(hub)}/hub/api/users/{account}/server", headers=xsrf).status_code in {201, 202}


@pytest.mark.live
def test_a_student_in_two_groups_sees_exactly_them_stopped_then_running(hub: LocalHub, api: HubClient) -> None:
    session, landed, page = home(hub, "s-ana")
    assert landed.endswith("/hub/home")  # her groups' servers, not a server of her own started at log-in
    rows = Rows(page)
    assert "".join(rows.heading) == "Your groups' servers"
    assert shown(rows.rows) == [
        ("lab-a", "collab-lab-a", "stopped", "Start"),
        ("lab-b", "collab-lab-b", "stopped", "Start"),
    ]
    assert [r["href"] for r in rows.rows] == ["/hub/spawn/collab-lab-a", "/hub/spawn/collab-lab-b"]
    assert not named(page, "lab-c") and "collab-lab-c" not in page

    # Start, as the button does: the hub's spawn URL, with her session (it answers with the way to the progress)
    started = session.get(f"{origin(hub)}{rows.rows[0]['href']}", allow_redirects=False)
    assert started.status_code == 302, started.status_code
    api.wait("collab-lab-a", ready=True)

    rows = Rows(session.get(f"{origin(hub)}/hub/home").text)
    assert shown(rows.rows) == [
        ("lab-a", "collab-lab-a", "running", "Open"),
        ("lab-b", "collab-lab-b", "stopped", "Start"),
    ]
    server = api.server("collab-lab-a")  # what the hub's API says about the same server
    assert rows.rows[0]["href"] == server["url"] == f"{origin(hub, 'collab-lab-a')}/user/collab-lab-a/"
    assert datetime.fromisoformat(rows.rows[0]["activity"]) == datetime.fromisoformat(server["last_activity"])
    assert "activity" not in rows.rows[1]  # never started: "never"
    assert not api.server("s-ana")  # the group's server was started, not hers


@pytest.mark.live
def test_a_student_in_no_group_sees_no_group_section_and_lands_where_jupyterhub_sends_them(
    hub: LocalHub, api: HubClient
) -> None:
    _, landed, page = home(hub, LONER)
    assert landed.endswith("/hub/spawn")  # JupyterHub's own default for a user with nothing of the course's
    assert 'id="coursehub-group-servers"' not in page and not Rows(page).rows
    assert 'id="start"' in page  # JupyterHub's own home page, with the stock "My Server" button
    assert not any(named(page, group) for group in GROUPS) and "collab-" not in page


@pytest.mark.live
def test_a_ta_sees_every_group_of_the_course(hub: LocalHub, api: HubClient) -> None:
    start_as(hub, "s-bo", "collab-lab-c")  # started by its member, seen by the TA
    api.wait("collab-lab-c", ready=True)
    _, landed, page = home(hub, TA)
    assert landed.endswith("/hub/home")
    rows = Rows(page)
    assert "".join(rows.heading) == "The course's group servers"
    assert shown(rows.rows) == [
        ("lab-a", "collab-lab-a", "stopped", "Start"),
        ("lab-b", "collab-lab-b", "stopped", "Start"),
        ("lab-c", "collab-lab-c", "running", "Open"),
    ]
    assert rows.rows[2]["href"] == api.server("collab-lab-c")["url"]


@pytest.mark.live
def test_another_groups_name_never_reaches_a_students_page_nor_any_group_the_hubs_log(
    hub: LocalHub, api: HubClient
) -> None:
    offset = hub.log.stat().st_size
    start_as(hub, "s-bo", "collab-lab-c")  # s-bo's other group's server runs: still not s-ana's
    api.wait("collab-lab-c", ready=True)
    for user, unseen in (("s-ana", "lab-c"), ("s-bo", "lab-b")):
        _, _, page = home(hub, user)
        assert Rows(page).rows and not named(page, unseen) and f"collab-{unseen}" not in page
    _, _, page = home(hub, TA)
    assert all(named(page, group) for group in GROUPS)
    logged = hub.log.read_bytes()[offset:].decode()
    assert "/hub/home" in logged  # the requests were logged, as JupyterHub does...
    assert not [g for g in GROUPS if named(logged, g)], logged  # ...naming no group
    assert "home page's group servers failed" not in logged


# --- the hub's config -----------------------------------------------------------------------------

DECLARATION = {
    "course": "stat159",
    "sharedAccounts": [{"group": "lab-a", "account": "collab-lab-a"}, {"group": "lab-b", "account": "collab-lab-b"}],
    "members": {"lab-a": ["s-ana"]},
    "staff": ["ta-tom"],
}


def configured(c: Config, declaration: dict[str, Any] = DECLARATION, names: Any = None) -> Any:
    return homepage.apply(c, declaration, config.parse(declaration), names)


def test_the_packages_templates_come_first_and_the_courses_stay() -> None:
    c = Config()
    c.JupyterHub.template_paths = ["/srv/course-templates", str(homepage.TEMPLATES)]
    c.JupyterHub.template_vars = {"course_name": "Stat 159"}
    home = configured(c)
    assert c.JupyterHub.template_paths == [str(homepage.TEMPLATES), "/srv/course-templates"]
    assert c.JupyterHub.template_vars == {"course_name": "Stat 159", homepage.TEMPLATE_VAR: home}
    assert c.JupyterHub.default_url == home.landing
    assert home.pairs == [("lab-a", "collab-lab-a"), ("lab-b", "collab-lab-b")] and home.staff == {"ta-tom"}
    assert (homepage.TEMPLATES / "home.html").read_text().startswith('{% extends "templates/home.html" %}')


def test_a_course_that_chose_where_users_land_keeps_it() -> None:
    c = Config()
    c.JupyterHub.default_url = "/hub/token"
    configured(c)
    assert c.JupyterHub.default_url == "/hub/token"
    c = Config()
    c.JupyterHub.redirect_to_server = True  # z2jh's hub.redirectToServer, set: the course wants their servers
    configured(c)
    assert "default_url" not in c.JupyterHub and c.JupyterHub.redirect_to_server is True


def test_a_course_without_shared_accounts_keeps_jupyterhubs_page() -> None:
    c = Config()
    assert configured(c, {"course": "stat159"}) is None
    assert not {"template_paths", "template_vars", "default_url"} & set(c.JupyterHub)


def test_a_group_that_collides_on_the_hub_gets_no_row() -> None:
    c = Config()
    names = config.HubNames(groups={"lab-b": {}}, users=set())  # a group of that name, not coursehub's
    assert configured(c, names=names).pairs == [("lab-a", "collab-lab-a")]


def test_a_course_template_variable_of_coursehubs_name_is_one_error_naming_it() -> None:
    c = Config()
    c.JupyterHub.template_vars = {homepage.TEMPLATE_VAR: "theirs"}
    with pytest.raises(config.DeclarationError) as e:
        configured(c)
    assert homepage.TEMPLATE_VAR in str(e.value) and "hub.templateVars" in str(e.value) and "rename" in e.value.fix
    assert c.JupyterHub.template_vars == {homepage.TEMPLATE_VAR: "theirs"} and "template_paths" not in c.JupyterHub


def test_the_hub_images_environment_installs_the_template_with_the_package() -> None:
    """The environment `make check-hub-image` builds from the files the Dockerfile copies (not this checkout)."""
    from coursehub.images.hub import deployed, ensure_hub_env

    python = ensure_hub_env(deployed()) / "bin" / "python"
    where = subprocess.run(
        [str(python), "-I", "-c", "from coursehub_hub import homepage; print(homepage.TEMPLATES / 'home.html')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    installed = Path(where)
    assert "site-packages" in installed.parts and installed.is_file(), where
    assert installed.read_text() == (homepage.TEMPLATES / "home.html").read_text()


def test_last_activity_in_words() -> None:
    now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    naive = datetime(2026, 11, 2, 11, 57)  # JupyterHub's database keeps naive UTC times
    assert homepage.ago(naive, now) == "3 minutes ago"
    assert homepage.ago(now - timedelta(seconds=59), now) == "less than a minute ago"
    assert homepage.ago(now - timedelta(hours=1, minutes=5), now) == "1 hour ago"
    assert homepage.ago(now - timedelta(days=2), now) == "2 days ago"
