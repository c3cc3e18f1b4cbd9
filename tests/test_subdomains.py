"""Servers on their own origins (JupyterHub.subdomain_host): rendered, validated, and on a live hub.

A shared account's home is writable by every member of its group, so code one
of them puts there (a JupyterLab extension, a ~/.jupyter config) runs in the
browser of everyone who opens the account's server. On the hub's own origin it
could act as them; with `hub.config.JupyterHub.subdomain_host` each server is an
origin of its own. The fast tests render and validate the setting; the live
ones run the local hub with it on loopback (the hub at hub.localhost, the
account's server at collab-shared-1.hub.localhost, as a browser resolves
*.localhost) and check what is served where and which cookies go where.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
import yaml
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

from coursehub import tools
from coursehub.chart.checks import check_values, effective, isolation_warnings
from coursehub.chart.helm import Helm, Release, staged_chart, value_args
from coursehub.chart.upstream import load_data
from coursehub.courses import load_course
from coursehub.errors import Problem
from coursehub.hub.local import LocalHub
from helpers import browser
from helpers.chart import find, nested, render_chart
from helpers.commands import coursehub
from helpers.files import edit
from helpers.hubs import DENIED, HubClient, live_hub, stat159_values

HOST = "stat159.example.edu"
ORIGIN = f"https://{HOST}"
KEY = "jupyterhub.hub.config.JupyterHub.subdomain_host"
SUBDOMAINS = {KEY: ORIGIN, "jupyterhub.hub.config.JupyterHub.cookie_host_prefix_enabled": True}
OPT_OUT = "jupyterhub.custom.coursehub.sameOriginAccepted"
REASON = "campus DNS has no wildcard records until the spring term"
INGRESS = {
    "jupyterhub.ingress.enabled": True,
    "jupyterhub.ingress.hosts": [HOST, f"*.{HOST}"],
    "jupyterhub.ingress.tls": [{"hosts": [HOST, f"*.{HOST}"], "secretName": "stat159-wildcard"}],
}


def hub_config(objs: list[dict[str, Any]]) -> dict[str, Any]:
    values = yaml.safe_load(base64.b64decode(find(objs, "Secret", "hub")["data"]["values.yaml"]))
    return values["hub"]["config"]["JupyterHub"]


def chp_args(objs: list[dict[str, Any]]) -> list[str]:
    (container,) = find(objs, "Deployment", "proxy")["spec"]["template"]["spec"]["containers"]
    return [*container.get("command", []), *container.get("args", [])]


# --- rendered ----------------------------------------------------------------------------------


def test_subdomain_host_reaches_the_hub_the_proxy_routes_by_host_and_the_ingress_serves_the_wildcard() -> None:
    objs = render_chart({**SUBDOMAINS, **INGRESS}, course="stat159")
    assert hub_config(objs)["subdomain_host"] == ORIGIN
    assert hub_config(objs)["cookie_host_prefix_enabled"] is True
    # z2jh turns configurable-http-proxy's host routing on from this very key (why it is the interface)
    assert "--host-routing" in chp_args(objs)
    ingress = find(objs, "Ingress", "jupyterhub")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [HOST, f"*.{HOST}"]
    assert all(rule["http"]["paths"][0]["path"] == "/" for rule in ingress["spec"]["rules"])  # every path of both
    assert ingress["spec"]["tls"] == [{"hosts": [HOST, f"*.{HOST}"], "secretName": "stat159-wildcard"}]
    # and the default: no subdomains, no host routing
    plain = render_chart({KEY: ""}, course="stat159")
    assert hub_config(plain)["subdomain_host"] == "" and "--host-routing" not in chp_args(plain)


def notes(values: dict[str, Any], tmp_path: Path) -> str:
    """NOTES.txt as `helm install` prints it. Helm 4's client-side dry run renders it without a cluster
    (Helm 3.17's still asks the cluster for its version); `helm template` never renders NOTES."""
    course = load_course("stat159")
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump(nested(values)))
    release = Release.for_course(course)
    with staged_chart() as staged:
        out = Helm(tools.helm_path(4)).run(
            [
                *("install", release.name, str(staged), "--dry-run=client", "--namespace", release.namespace),
                *value_args(course),
                *("--values", str(override)),
            ],
            "NOTES.txt",
        )
    return out[out.index("NOTES:") :]


def test_notes_say_what_dns_and_tls_subdomains_need(tmp_path: Path, upstream_chart: Path) -> None:
    text = notes({**SUBDOMAINS, **INGRESS}, tmp_path)
    assert f"https://collab-shared-1.{HOST}" in text
    assert f"the wildcard *.{HOST}" in text and "the ingress controller" in text
    assert f"one certificate for {HOST} and *.{HOST}" in text and "DNS-01" in text
    without = notes({KEY: "", OPT_OUT: REASON}, tmp_path)
    assert f"*.{HOST}" not in without and "run on the hub's own origin" in without
    assert f"accepted because: {REASON}" in without and "DNS records for\n<host> and *.<host>" in without


# --- validated ---------------------------------------------------------------------------------


def problems_for(values_dir: Path) -> list[Problem]:
    return check_values(load_course("stat159", values_dir=values_dir), load_data())


@pytest.mark.parametrize("value", [HOST, f"http://{HOST}", f"{ORIGIN}/", f"{ORIGIN}/hub", "https://localhost"])
def test_subdomain_host_must_be_an_https_origin(values_dir: Path, value: str) -> None:
    edit(values_dir / "stat159.yaml", {KEY: value})
    found = problems_for(values_dir)
    assert [(p.key, p.file.endswith("stat159.yaml")) for p in found] == [(KEY, True)], "\n".join(map(str, found))
    assert "https://" in found[0].fix


def warnings_for(values_dir: Path) -> list[Problem]:
    course = load_course("stat159", values_dir=values_dir)
    return isolation_warnings(course, effective(course, load_data()))


def test_shared_accounts_or_staff_without_subdomains_fail_naming_the_key_the_fix_and_the_opt_out(
    values_dir: Path,
) -> None:
    assert problems_for(values_dir) == [] and warnings_for(values_dir) == []  # stat159 as shipped: subdomains
    edit(values_dir / "stat159.yaml", {KEY: None})
    (found,) = problems_for(values_dir)
    assert found.key == KEY and found.file.endswith("stat159.yaml")  # the course's file, not the chart's
    assert "TAs included" in found.message and "wildcard DNS" in found.fix and OPT_OUT in found.fix
    edit(values_dir / "stat159.yaml", {"jupyterhub.custom.coursehub.sharedAccounts": []})
    edit(values_dir / "stat159.secret.example.yaml", {"jupyterhub.custom.coursehub.members": {}})
    assert [p.key for p in problems_for(values_dir)] == [KEY]  # staff alone: TAs still open others' servers
    edit(values_dir / "stat159.secret.example.yaml", {"jupyterhub.custom.coursehub.staff": []})
    assert problems_for(values_dir) == [] and warnings_for(values_dir) == []  # nobody opens another's home


def test_the_opt_out_needs_a_reason_and_is_a_warning_every_time(values_dir: Path) -> None:
    edit(values_dir / "stat159.yaml", {KEY: None, OPT_OUT: "no"})
    assert {p.key for p in problems_for(values_dir)} == {OPT_OUT}  # a reason, not a switch
    edit(values_dir / "stat159.yaml", {OPT_OUT: " " * 30})
    assert [p.key for p in problems_for(values_dir)] == [OPT_OUT]  # and not a blank one
    edit(values_dir / "stat159.yaml", {OPT_OUT: REASON})
    assert problems_for(values_dir) == []
    (warning,) = warnings_for(values_dir)
    assert warning.key == OPT_OUT and REASON in warning.message and "subdomain_host" in warning.fix


def test_subdomains_without_host_cookies_are_a_warning(values_dir: Path) -> None:
    edit(
        values_dir / "stat159.yaml", {KEY: ORIGIN, "jupyterhub.hub.config.JupyterHub.cookie_host_prefix_enabled": None}
    )
    (warning,) = warnings_for(values_dir)
    assert warning.key.endswith("cookie_host_prefix_enabled") and "cookie tossing" in warning.message
    edit(values_dir / "stat159.yaml", SUBDOMAINS)
    assert warnings_for(values_dir) == []


def test_make_validate_refuses_same_origin_and_prints_an_opt_out_at_every_run(
    values_dir: Path, upstream_chart: Path
) -> None:
    edit(values_dir / "stat159.yaml", {KEY: None})
    result = coursehub("validate", "--course", "stat159", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 1
    assert f"stat159.yaml: {KEY}: is not set" in result.stderr and OPT_OUT in result.stderr
    edit(values_dir / "stat159.yaml", {OPT_OUT: REASON})
    for _ in range(2):
        result = coursehub("validate", "--course", "stat159", values=values_dir, upstream=upstream_chart)
        assert result.returncode == 0, result.stderr
        assert "stat159: warning: " in result.stdout and REASON in result.stdout
        assert result.stdout.rstrip().endswith("stat159: ok")


@pytest.mark.parametrize(
    ("ingress", "key", "words"),
    [
        ({"hosts": [HOST]}, "jupyterhub.ingress.hosts", f"'*.{HOST}'"),
        ({"hosts": [f"*.{HOST}"]}, "jupyterhub.ingress.hosts", f"'{HOST}'"),
        ({"hosts": [HOST, f"*.{HOST}"], "tls": [{"hosts": [HOST], "secretName": "x"}]}, "jupyterhub.ingress.tls", "*."),
    ],
)
def test_an_ingress_that_does_not_serve_the_wildcard_fails_naming_file_key_and_fix(
    values_dir: Path, ingress: dict[str, Any], key: str, words: str
) -> None:
    edit(values_dir / "stat159.yaml", {**SUBDOMAINS, "jupyterhub.ingress.enabled": True})
    edit(values_dir / "stat159.yaml", {f"jupyterhub.ingress.{k}": v for k, v in ingress.items()})
    found = problems_for(values_dir)
    assert [p.key for p in found] == [key], "\n".join(map(str, found))
    assert found[0].file.endswith("stat159.yaml") and words in found[0].fix


@pytest.mark.parametrize(
    "change",
    [
        {**INGRESS},  # both hosts and a certificate for both
        {"jupyterhub.ingress.enabled": True},  # no hosts: one rule for every host
        {**INGRESS, "jupyterhub.ingress.enabled": False, "jupyterhub.ingress.hosts": [HOST]},  # no ingress at all
    ],
)
def test_an_ingress_that_serves_every_host_passes(values_dir: Path, change: dict[str, Any]) -> None:
    edit(values_dir / "stat159.yaml", {**SUBDOMAINS, **change})
    assert problems_for(values_dir) == []


def test_z2jh_lets_encrypt_cannot_serve_subdomains(values_dir: Path) -> None:
    edit(
        values_dir / "common.yaml",
        {"jupyterhub.proxy.https": {"enabled": True, "hosts": [HOST], "letsencrypt": {"contactEmail": "a@b.edu"}}},
    )
    edit(values_dir / "stat159.yaml", {KEY: None, OPT_OUT: REASON})
    assert problems_for(values_dir) == []  # on the hub's origin, HTTP-01 is fine
    edit(values_dir / "stat159.yaml", SUBDOMAINS)
    (p,) = problems_for(values_dir)
    assert p.key == "jupyterhub.proxy.https" and p.file.endswith("common.yaml") and "wildcard" in p.message


# --- live --------------------------------------------------------------------------------------

ACCOUNT, OTHER = "collab-shared-1", "collab-shared-2"
GROUPS = {"shared-1": (ACCOUNT, ["s-ana"]), "shared-2": (OTHER, ["s-cy"])}


class _LoopbackConnection(HTTPConnection):
    """Connects to 127.0.0.1 for any *.localhost name, as browsers do (glibc here does not resolve them);
    the URL, the Host header and the cookie jar keep the real names."""

    def _new_conn(self) -> Any:
        name = self._dns_host
        if name == "localhost" or name.endswith(".localhost"):
            self._dns_host = "127.0.0.1"
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _LoopbackPool(HTTPConnectionPool):
    ConnectionCls = _LoopbackConnection


class LoopbackAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {**self.poolmanager.pool_classes_by_scheme, "http": _LoopbackPool}


def browser_session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", LoopbackAdapter())
    return session


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    accounts = [{"group": g, "account": a} for g, (a, _) in GROUPS.items()]
    secret = {"jupyterhub": {"custom": {"coursehub": {"members": {g: m for g, (_, m) in GROUPS.items()}}}}}
    values = stat159_values(tmp_path_factory.mktemp("values"), secret, sharedAccounts=accounts)
    edit(values / "stat159.yaml", {KEY: ORIGIN})
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        yield local


@pytest.fixture(scope="module")
def running(hub: LocalHub) -> Iterator[HubClient]:
    """Both accounts' servers running (started by their members in their browsers), stopped at the end whatever
    happened. (The returned helper's own log-in is on 127.0.0.1: use only its admin calls here.)"""
    api = HubClient(hub)
    try:
        for account, members in GROUPS.values():
            session, _ = log_in(hub, members[0])
            xsrf = {"X-XSRFToken": session.cookies.get("_xsrf", domain="hub.localhost") or ""}
            assert session.post(f"{origin(hub)}/hub/api/users/{account}/server", headers=xsrf).status_code in {201, 202}
        for account, _ in GROUPS.values():
            api.wait(account, ready=True)
        yield api
    finally:
        for account, _ in GROUPS.values():
            requests.delete(f"{api.url}/hub/api/users/{account}/server", headers=api.admin)


def token_of(hub: LocalHub, student: str) -> dict[str, str]:
    """A student's API token, made as a student makes one (log in on the hub's origin, ask the hub)."""
    session, _ = log_in(hub, student)
    r = session.post(
        f"{origin(hub)}/hub/api/users/{student}/tokens",
        json={"note": "subdomain test"},
        headers={"X-XSRFToken": session.cookies.get("_xsrf", domain="hub.localhost") or ""},
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"token {r.json()['token']}"}


def origin(hub: LocalHub, user: str | None = None) -> str:
    return f"http://{user + '.' if user else ''}hub.localhost:{hub.plan.port}"


def log_in(hub: LocalHub, student: str) -> tuple[requests.Session, requests.Response]:
    """A student's browser after the hub's log-in form, on the hub's own origin: (session, the log-in response)."""
    session, r = browser.log_in(origin(hub), student, hub.plan.password, browser_session())
    assert r.status_code == 302, r.text
    return session, r


def open_server(session: requests.Session, url: str) -> list[requests.Response]:
    """Open a server's page as a browser does: the OAuth round trip through the hub, "Authorize" clicked
    (the server is the account's, not the student's). Every response on the way, the last one last."""
    r = session.get(url)
    trail = [*r.history, r]
    if "/hub/api/oauth2/authorize" in r.url and r.status_code == 200:
        fields = re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', r.text)
        r = session.post(r.url, data=[(k, html.unescape(v)) for k, v in fields])
        trail += [*r.history, r]
    return trail


def host_of(url: str) -> str:
    return urlparse(url).hostname or ""


def is_server_status(r: requests.Response) -> bool:
    """The response is the singleuser server's own /api/status (JSON with its kernels and connections)."""
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and {"kernels", "connections", "started"} <= set(body)


@pytest.mark.live
def test_each_server_has_its_own_host_and_no_route_on_the_hubs(hub: LocalHub, running: HubClient) -> None:
    for account in (ACCOUNT, OTHER):
        assert running.server(account)["url"] == f"{origin(hub, account)}/user/{account}/"
    routes = requests.get(
        f"http://127.0.0.1:{hub.plan.proxy_api_port}/api/routes",
        headers={"Authorization": f"token {hub.plan.proxy_token}"},
    ).json()
    # the hub is the default route; each server only under its own host name (a student's own server, started
    # by a log-in in another test of this module, is one more such route)
    assert "/" in routes and {
        f"/{ACCOUNT}.hub.localhost/user/{ACCOUNT}",
        f"/{OTHER}.hub.localhost/user/{OTHER}",
    } <= set(routes)
    for route in set(routes) - {"/"}:
        user = route.split("/")[-1]
        assert route == f"/{user}.hub.localhost/user/{user}", route


@pytest.mark.live
def test_a_member_reaches_the_account_on_its_own_host_after_the_oauth_round_trip(
    hub: LocalHub, running: HubClient
) -> None:
    session, _ = log_in(hub, "s-ana")
    trail = open_server(session, f"{origin(hub, ACCOUNT)}/user/{ACCOUNT}/lab")
    hosts = [host_of(r.url) for r in trail]
    # the server sends the browser to the hub's origin to authorize, and the hub sends it back with a code
    assert hosts[0] == f"{ACCOUNT}.hub.localhost" and "hub.localhost" in hosts[1:-1], hosts
    assert any("/oauth_callback" in r.url and host_of(r.url) == f"{ACCOUNT}.hub.localhost" for r in trail)
    assert trail[-1].status_code == 200 and host_of(trail[-1].url) == f"{ACCOUNT}.hub.localhost"
    status = session.get(f"{origin(hub, ACCOUNT)}/user/{ACCOUNT}/api/status")
    assert status.status_code == 200 and is_server_status(status)
    # a student of another group is still refused there
    outsider, _ = log_in(hub, "s-cy")
    last = open_server(outsider, f"{origin(hub, ACCOUNT)}/user/{ACCOUNT}/api/status")[-1]
    assert last.status_code in DENIED and not is_server_status(last)


@pytest.mark.live
def test_the_accounts_path_on_any_other_host_does_not_serve_the_server(hub: LocalHub, running: HubClient) -> None:
    session, _ = log_in(hub, "s-ana")
    open_server(session, f"{origin(hub, ACCOUNT)}/user/{ACCOUNT}/lab")  # s-ana holds the server's cookie now
    token = token_of(hub, "s-ana")  # and a token the server accepts
    for other in (origin(hub), origin(hub, OTHER), hub.plan.url):
        url = f"{other}/user/{ACCOUNT}/api/status"
        for headers in ({}, token):
            r = session.get(url, headers=headers, allow_redirects=False)
            assert not is_server_status(r), f"{url} served the account's server"
            assert r.status_code in {302, *DENIED}, (url, r.status_code)
            if r.status_code == 302:  # at most the hub pointing the browser at the server's own origin
                target = urlparse(r.headers["Location"])
                assert target.hostname in {None, "hub.localhost", "127.0.0.1", f"{ACCOUNT}.hub.localhost"}, target
                assert target.hostname == f"{ACCOUNT}.hub.localhost" or target.path.startswith("/hub/"), target
        # followed to the end, a browser lands on the server's own origin
        final = session.get(url)
        assert host_of(final.url) == f"{ACCOUNT}.hub.localhost" and is_server_status(final), final.url


def set_cookies(r: requests.Response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in r.raw.headers.getlist("Set-Cookie")}


@pytest.mark.live
def test_the_hubs_log_in_cookie_never_goes_to_a_servers_host(hub: LocalHub, running: HubClient) -> None:
    session, login = log_in(hub, "s-ana")
    cookies = set_cookies(login)
    # the hub's credential: host-only (no Domain) and under /hub/ only
    assert "Domain=" not in cookies["jupyterhub-hub-login"] and "Path=/hub/" in cookies["jupyterhub-hub-login"]
    assert "Domain=" not in cookies["_xsrf"] and "Path=/hub/" in cookies["_xsrf"]
    # JupyterHub shares the session id with every subdomain by design (servers use it as a cache key)
    assert "Domain=hub.localhost" in cookies["jupyterhub-session-id"]
    hub_login = session.cookies.get("jupyterhub-hub-login", domain="hub.localhost")
    hub_xsrf = session.cookies.get("_xsrf", domain="hub.localhost")
    trail = open_server(session, f"{origin(hub, ACCOUNT)}/user/{ACCOUNT}/lab")
    trail.append(session.get(f"{origin(hub, ACCOUNT)}/user/{ACCOUNT}/api/status"))
    to_server = [r.request.headers.get("Cookie", "") for r in trail if host_of(r.url) == f"{ACCOUNT}.hub.localhost"]
    to_hub = [r.request.headers.get("Cookie", "") for r in trail if host_of(r.url) == "hub.localhost"]
    assert len(to_server) >= 3 and to_hub  # the page, the OAuth callback, the API; the hub's authorize page
    assert all("jupyterhub-hub-login" not in sent and hub_xsrf not in sent for sent in to_server), to_server
    assert any("jupyterhub-hub-login" in sent for sent in to_hub)  # the jar does send it where it belongs
    assert hub_login and all(hub_login not in sent for sent in to_server)
    # the server's own cookie stays on its host: not sent to the hub, nor to another server's host
    server_cookie = f"jupyterhub-user-{ACCOUNT}"
    assert session.cookies.get(server_cookie, domain=f"{ACCOUNT}.hub.localhost")
    elsewhere = [
        session.get(url, allow_redirects=False).request.headers.get("Cookie", "")
        for url in (f"{origin(hub)}/hub/home", f"{origin(hub, OTHER)}/user/{ACCOUNT}/", f"{origin(hub, OTHER)}/")
    ]
    assert all(server_cookie not in sent for sent in elsewhere), elsewhere
    # what a server does receive, the session id, is no credential: alone it gets nothing from the hub
    visitor = browser_session()
    visitor.cookies.set("jupyterhub-session-id", session.cookies.get("jupyterhub-session-id"), domain="hub.localhost")
    assert visitor.get(f"{origin(hub)}/hub/api/user").status_code in DENIED
    home = visitor.get(f"{origin(hub)}/hub/home", allow_redirects=False)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]


@pytest.mark.live
def test_in_a_real_browser_the_servers_origin_sees_none_of_the_hubs_log_in_cookies(
    hub: LocalHub, running: HubClient, tmp_path: Path
) -> None:
    """Headless Chromium (test_browser.py's), which resolves *.localhost itself: which cookies it would send
    to each origin is what WebDriver lists for the page (HttpOnly ones included)."""
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
    from selenium.webdriver.common.by import By

    from test_browser import browsers

    with browsers(tmp_path / "screenshots", "s-ana") as (ana,):
        ana.log_in(origin(hub), "s-ana", hub.plan.password)
        ana.driver.get(f"{origin(hub)}/hub/home")
        on_hub = {c["name"] for c in ana.driver.get_cookies()}
        assert "jupyterhub-hub-login" in on_hub, on_hub  # the browser holds it, for the hub
        # the demo's URL: on to the server's own origin, through "Authorize access" unless s-ana has already
        # authorized this server (earlier tests of this module did, and the hub remembers it)
        ana.driver.get(f"{origin(hub)}/hub/spawn/{ACCOUNT}")

        def lab() -> bool:
            if ana.h1() == "Authorize access":
                ana.driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            return bool(ana.driver.find_elements(By.CSS_SELECTOR, ".jp-LabShell"))

        ana.until("JupyterLab to load", lab)
        assert host_of(ana.driver.current_url) == f"{ACCOUNT}.hub.localhost", ana.driver.current_url
        on_server = {c["name"]: c for c in ana.driver.get_cookies()}
        assert f"jupyterhub-user-{ACCOUNT}" in on_server, sorted(on_server)
        assert "jupyterhub-hub-login" not in on_server, sorted(on_server)
        # the _xsrf it gets there is the server's own, on the server's host
        assert on_server.get("_xsrf", {}).get("domain", f"{ACCOUNT}.hub.localhost").endswith(f"{ACCOUNT}.hub.localhost")
