"""Shared accounts in a real browser: two students of a group co-edit a notebook in their account's JupyterLab.

Headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
Selenium; nothing is downloaded) against the live hub the other live tests use
(helpers.hubs.live_hub: real JupyterHub, configurable-http-proxy, stat159's values),
once on each image stack stat159 has: JupyterLab 3.6 (the seed's, 2023.03.1) and
JupyterLab 4 with jupyter-collaboration (2026.11.1), both with the course's own
singleuser command. Students log in through the hub's log-in form, open the
account through `/hub/spawn/<account>` as the demo tells them, click through
JupyterHub's "Authorize access" page, open one notebook from JupyterLab's file
browser and type into it; each must see the other's text and the other in the
collaborators panel. A student of another group and a log-in as the account
itself are refused. On stat159's own hub settings (servers on their own origins)
and image, two members go from the log-in page to the account's JupyterLab with
clicks only: the hub's home page lists their group's account with a Start, then
an Open button (coursehub_hub/homepage.py). Browsers and hubs are stopped
whatever happens; a failing test leaves screenshots in its tmp folder.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import pytest
import requests
import yaml

from coursehub.hub.local import LocalHub
from coursehub.paths import VALUES
from helpers.files import edit
from helpers.hubs import HubClient, live_hub, stat159_values

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402  (only once the browser is known to be there)
from selenium.common.exceptions import ElementClickInterceptedException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

pytestmark = pytest.mark.live

GROUPS = {"shared-1": ("collab-shared-1", ["s-ana", "s-bo"]), "shared-2": ("collab-shared-2", ["s-cy"])}
ACCOUNT = "collab-shared-1"
NOTEBOOK = "together.ipynb"
MARKER = "# our group's notebook"
STACKS = {"2023.03.1": "jupyterlab3.6", "2026.11.1": "jupyterlab4"}
WAIT = 120.0  # seconds: JupyterLab's first load on a busy 2-core machine is slow
# Chromium must not reach out: the machine's network is closed, and a test must not depend on it.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)

T = TypeVar("T")


@pytest.fixture(scope="module", params=sorted(STACKS), ids=lambda tag: STACKS[tag])
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    """The live hub with a two-group roster, its servers on one of stat159's image variants."""
    accounts = [{"group": g, "account": a} for g, (a, _) in GROUPS.items()]
    secret = {"jupyterhub": {"custom": {"coursehub": {"members": {g: m for g, (_, m) in GROUPS.items()}}}}}
    values = stat159_values(tmp_path_factory.mktemp("values"), secret, sharedAccounts=accounts)
    edit(values / "stat159.yaml", {"jupyterhub.singleuser.image.tag": request.param})
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        yield local


@pytest.fixture
def stat159_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    """The live hub with the two-group roster and stat159's own hub settings (servers on their own origins,
    <user>.hub.localhost here) and image (JupyterLab 3.6); stopped with its servers after the test."""
    accounts = [{"group": g, "account": a} for g, (a, _) in GROUPS.items()]
    secret = {"jupyterhub": {"custom": {"coursehub": {"members": {g: m for g, (_, m) in GROUPS.items()}}}}}
    values = stat159_values(tmp_path_factory.mktemp("values"), secret, sharedAccounts=accounts)
    stat159 = yaml.safe_load((VALUES / "stat159.yaml").read_text())["jupyterhub"]["hub"]["config"]["JupyterHub"]
    assert stat159.get("subdomain_host"), stat159  # the point of this hub: stat159's servers on their own origins
    edit(values / "stat159.yaml", {"jupyterhub.hub.config.JupyterHub": stat159})
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        yield local


@pytest.fixture
def api(hub: LocalHub) -> Iterator[HubClient]:
    """HTTP helpers; the shared account's server is stopped after each test, whatever happened."""
    helper = HubClient(hub)
    try:
        yield helper
    finally:
        requests.delete(f"{helper.url}/hub/api/users/{ACCOUNT}/server", headers=helper.admin)
        helper.wait(ACCOUNT, ready=False)


class Browser:
    """One headless Chromium with a fresh profile: one student's browser."""

    def __init__(self, name: str, shots: Path) -> None:
        self.name, self.shots = name, shots
        self.profile = Path(tempfile.mkdtemp(prefix="coursehub-chromium-"))
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        try:  # an explicit driver path: Selenium Manager never runs (it would try to download one)
            self.driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        except BaseException:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(WAIT)

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def screenshot(self, why: str) -> None:
        try:
            self.shots.mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(self.shots / f"{self.name}-{why}.png"))
            (self.shots / f"{self.name}-{why}.html").write_text(self.driver.page_source)
        except WebDriverException:
            pass  # the browser itself is gone: nothing to show

    def until(self, what: str, check: Callable[[], T | None], timeout: float = WAIT) -> T:
        """Poll `check` until it returns something truthy; fail naming `what` and the page."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = check()
            except WebDriverException:
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {what} within {timeout:.0f} s (at {self.driver.current_url})")
            time.sleep(0.2)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def log_in(self, url: str, username: str, password: str) -> None:
        self.driver.get(f"{url}/hub/login")
        self.until("the log-in form", lambda: self.driver.find_elements(By.ID, "username_input"))
        self.driver.find_element(By.ID, "username_input").send_keys(username)
        self.driver.find_element(By.ID, "password_input").send_keys(password)
        self.driver.find_element(By.ID, "login_submit").click()
        self.until("the log-in form to be submitted", lambda: "/hub/login" not in self.driver.current_url or self.h1())

    def body(self) -> str:
        return str(self.js("return document.body ? document.body.innerText : '';"))

    def h1(self) -> str:
        return str(self.js("const h = document.querySelector('h1'); return h ? h.textContent.trim() : '';"))

    def open_lab(self, url: str) -> None:
        """Go to `url` and on to JupyterLab, through JupyterHub's Authorize page (the server is not our own)."""
        self.driver.get(url)
        self.reach_lab()

    def reach_lab(self) -> None:
        """From where the browser is (a spawn or server URL), on to JupyterLab, clicking through JupyterHub's
        Authorize page (the server is not our own)."""
        authorized = False

        def lab_or_authorize() -> bool:
            nonlocal authorized
            if self.driver.find_elements(By.CSS_SELECTOR, ".jp-LabShell"):
                return True
            if not authorized and self.h1() == "Authorize access":
                self.driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
                authorized = True
            return False

        self.until("JupyterLab to load", lab_or_authorize)
        assert authorized, f"{self.name} was not asked to authorize access to another user's server"

    def open_from_file_browser(self, name: str) -> None:
        """Open `name` as a student does, with a double-click in JupyterLab's file browser. A file made since the
        page loaded shows up at the file browser's next refresh (JupyterLab polls every 10 s)."""

        def opened() -> bool:  # found and double-clicked in one go: a refresh in between would make it stale
            items = self.driver.find_elements(By.CSS_SELECTOR, ".jp-DirListing-item .jp-DirListing-itemText")
            item = next((item for item in items if item.text.strip() == name), None)
            if item is None:
                return False
            ActionChains(self.driver).double_click(item).perform()
            return True

        self.until(f"{name} in the file browser", opened)

    def cell_text(self) -> str:
        """The first cell's source as its editor shows it (CodeMirror 5 on JupyterLab 3.6, 6 on 4)."""
        return str(
            self.js(
                "const cm5 = document.querySelector('.jp-Notebook .jp-Cell .CodeMirror');"
                "if (cm5 && cm5.CodeMirror) return cm5.CodeMirror.getValue();"
                "const cm6 = document.querySelector('.jp-Notebook .jp-Cell .cm-content');"
                "return cm6 ? cm6.innerText : '';"
            )
        )

    def close_dialogs(self) -> None:
        """Accept what JupyterLab asks when a notebook opens (the kernel to start): it would take the clicks."""
        self.js("document.querySelectorAll('.jp-Dialog .jp-Dialog-button.jp-mod-accept').forEach(b => b.click());")
        self.until(
            "JupyterLab's dialogs to close", lambda: not self.driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
        )

    def type_at_end_of_cell(self, text: str) -> None:
        """Type `text` on a new last line of the first cell, again if a late dialog took the keys."""
        for _ in range(3):
            self.close_dialogs()
            try:
                self.driver.find_element(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .jp-InputArea-editor").click()
                ActionChains(self.driver).key_down(Keys.CONTROL).send_keys(Keys.END).key_up(Keys.CONTROL).perform()
                ActionChains(self.driver).send_keys(Keys.ENTER, text).perform()
                self.until(f"its own text {text!r} in the cell", lambda: text in self.cell_text(), 10)
                return
            except (AssertionError, ElementClickInterceptedException):
                continue
        raise AssertionError(f"{self.name}: could not type into the cell (at {self.driver.current_url})")

    def collaborators(self) -> list[str]:
        """Names in the collaborators panel (JupyterLab's RTC side panel), opened if needed."""
        self.js(
            "const panel = document.querySelector('.jp-RTCPanel');"
            "if (panel && panel.classList.contains('lm-mod-hidden')) {"
            "  const tab = document.querySelector(`.lm-TabBar-tab[data-id='${panel.id}']`);"
            "  if (tab) tab.click();"
            "}"
        )
        names = self.js(
            "return [...document.querySelectorAll('.jp-RTCPanel .jp-CollaboratorsList .jp-Collaborator')]"
            ".map(e => e.textContent.trim());"
        )
        return [str(n) for n in names or []]


@contextmanager
def browsers(shots: Path, *names: str) -> Iterator[list[Browser]]:
    """One browser per name; screenshots of each on failure; every browser quit whatever happens."""
    with ExitStack() as stack:
        opened = []
        for name in names:
            browser = Browser(name, shots)
            stack.callback(browser.quit)
            opened.append(browser)
        try:
            yield opened
        except BaseException:
            for browser in opened:
                browser.screenshot("failure")
            print(f"screenshots and pages of the failure: {shots}")
            raise


def create_notebook(api: HubClient, student: str) -> None:
    """One notebook with one code cell, made through the server's contents API as the student."""
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {
                "cell_type": "code",
                "id": "shared",
                "metadata": {},
                "source": MARKER,
                "outputs": [],
                "execution_count": None,
            }
        ],
    }
    r = requests.put(
        f"{api.url}/user/{ACCOUNT}/api/contents/{NOTEBOOK}",
        headers=api.as_(student),
        json={"type": "notebook", "format": "json", "content": notebook},
    )
    assert r.status_code in {200, 201}, r.text


def test_two_members_co_edit_a_notebook_in_their_accounts_jupyterlab(
    hub: LocalHub, api: HubClient, tmp_path: Path
) -> None:
    with browsers(tmp_path / "screenshots", "s-ana", "s-bo") as (ana, bo):
        ana.log_in(api.url, "s-ana", api.plan.password)
        bo.log_in(api.url, "s-bo", api.plan.password)
        # The admin page the demo points to lists the group's account, with its start button, and no other.
        ana.driver.get(f"{api.url}/hub/admin")
        page = ana.until("the admin page's list", lambda: ana.body() if ACCOUNT in ana.body() else None)
        assert "Start Server" in page and "collab-shared-2" not in page, page
        # The URL the demo prints: the hub starts the account's server and sends s-ana on to its JupyterLab...
        ana.open_lab(f"{api.url}/hub/spawn/{ACCOUNT}")
        assert f"/user/{ACCOUNT}/" in ana.driver.current_url
        create_notebook(api, "s-ana")
        # ...and the same URL takes s-bo to the running one.
        bo.open_lab(f"{api.url}/hub/spawn/{ACCOUNT}")
        assert f"/user/{ACCOUNT}/" in bo.driver.current_url
        for browser in (ana, bo):  # the cell came from the server's copy of the document
            browser.open_from_file_browser(NOTEBOOK)
            browser.until("the notebook's cell", lambda b=browser: MARKER in b.cell_text())

        for writer, reader in ((ana, bo), (bo, ana)):
            text = f"x_{writer.name.replace('-', '_')} = {secrets.token_hex(4)!r}"
            started = time.monotonic()
            writer.type_at_end_of_cell(text)
            reader.until(f"{writer.name}'s text {text!r} to arrive", lambda r=reader, t=text: t in r.cell_text(), 30)
            print(f"{writer.name} -> {reader.name}: typed and seen in {time.monotonic() - started:.2f} s")

        ana.until("s-bo among the collaborators", lambda: any("s-bo" in n for n in ana.collaborators()))
        bo.until("s-ana among the collaborators", lambda: any("s-ana" in n for n in bo.collaborators()))


def test_students_go_from_log_in_to_their_groups_jupyterlab_by_clicks_on_the_home_page(
    stat159_hub: LocalHub, tmp_path: Path
) -> None:
    """The log-in page is the only URL anyone types: the hub sends each member to its home page, which lists
    their group's account with one button (Start for the first, Open once it runs), and the button leads, through
    "Authorize access", to the account's JupyterLab on the account's own origin."""
    hub_origin = f"http://hub.localhost:{stat159_hub.plan.port}"
    server_host = f"{ACCOUNT}.hub.localhost"

    def group_button(browser: Browser, state: str, label: str) -> Any:
        """The home page's one row, for the group's account in `state`, and its button `label`."""
        browser.until("the hub's home page", lambda: browser.driver.current_url.endswith("/hub/home"))
        rows = browser.driver.find_elements(By.CSS_SELECTOR, "#coursehub-group-servers tr.coursehub-group-server")
        assert [(r.get_attribute("data-group"), r.get_attribute("data-account")) for r in rows] == [
            ("shared-1", ACCOUNT)
        ], browser.body()
        assert rows[0].get_attribute("data-state") == state and "collab-shared-2" not in browser.body()
        button = rows[0].find_element(By.CSS_SELECTOR, "a.coursehub-server-button")
        assert button.text.strip() == label, button.text
        return button

    with browsers(tmp_path / "screenshots", "s-ana", "s-bo") as (ana, bo):
        ana.log_in(hub_origin, "s-ana", stat159_hub.plan.password)
        group_button(ana, "stopped", "Start").click()
        ana.reach_lab()  # the hub's progress page, the server's own origin, "Authorize access", JupyterLab
        assert urlparse(ana.driver.current_url).hostname == server_host, ana.driver.current_url
        assert f"/user/{ACCOUNT}/" in ana.driver.current_url

        bo.log_in(hub_origin, "s-bo", stat159_hub.plan.password)
        group_button(bo, "running", "Open").click()
        bo.reach_lab()
        assert urlparse(bo.driver.current_url).hostname == server_host, bo.driver.current_url
    assert HubClient(stat159_hub).server(ACCOUNT).get("ready") is True  # the group's one server, both in it


def test_a_student_of_another_group_is_refused_on_the_accounts_server(
    hub: LocalHub, api: HubClient, tmp_path: Path
) -> None:
    assert api.start("s-ana", ACCOUNT) in {201, 202}
    api.wait(ACCOUNT, ready=True)
    with browsers(tmp_path / "screenshots", "s-cy") as (cy,):
        cy.log_in(api.url, "s-cy", api.plan.password)
        assert "/hub/login" not in cy.driver.current_url  # s-cy is a student of the hub, logged in
        for url in (f"{api.url}/user/{ACCOUNT}/lab", f"{api.url}/hub/spawn/{ACCOUNT}"):
            cy.driver.get(url)
            heading = cy.until(f"an error page at {url}", lambda: cy.h1() if cy.h1()[:3] in {"403", "404"} else None)
            assert heading.startswith(("403", "404")), heading
            assert not cy.js("return !!document.querySelector('.jp-LabShell')")
    assert api.server(ACCOUNT).get("ready") is True  # refused, and the group's server untouched


def test_nobody_logs_in_as_the_account_in_a_browser(hub: LocalHub, api: HubClient, tmp_path: Path) -> None:
    with browsers(tmp_path / "screenshots", "account") as (browser,):
        browser.log_in(api.url, ACCOUNT, api.plan.password)  # the password every student uses
        browser.driver.get(f"{api.url}/hub/home")
        browser.until(
            "the hub to send an anonymous visitor to log in", lambda: "/hub/login" in browser.driver.current_url
        )
        browser.driver.get(f"{api.url}/user/{ACCOUNT}/lab")
        browser.until(
            "the account's server to send the visitor to log in", lambda: "/hub/login" in browser.driver.current_url
        )
        assert not browser.driver.find_elements(By.CSS_SELECTOR, ".jp-LabShell")
    assert not api.server(ACCOUNT)  # and nothing was started
