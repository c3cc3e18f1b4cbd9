"""A student at a hub over HTTP: the one log-in every test goes through (`log_in`), and a browser's session."""

from __future__ import annotations

import html
import re
from typing import NamedTuple

import requests

from coursehub.hub.local import LocalHub


class LogIn(NamedTuple):
    session: requests.Session  # the hub's log-in cookie in its jar (when the hub took the log-in)
    response: requests.Response  # the form's answer, not followed: 302 on to the hub, 403 refused


def log_in(url: str, user: str, password: str, session: requests.Session | None = None) -> LogIn:
    """The hub's log-in form at `url` (the hub's origin), as a browser fills it in: GET /hub/login for the _xsrf
    cookie, POST the form with it. `session` is one of the caller's (a transport of its own); a new one if none."""
    session = session or requests.Session()
    session.get(f"{url}/hub/login")
    response = session.post(
        f"{url}/hub/login",
        data={"username": user, "password": password, "_xsrf": session.cookies.get("_xsrf")},
        allow_redirects=False,
    )
    return LogIn(session, response)


def xsrf_header(session: requests.Session) -> dict[str, str]:
    """The header the hub's API wants beside a log-in cookie (JupyterHub's XSRF check)."""
    return {"X-XSRFToken": session.cookies.get("_xsrf") or ""}


class Browser:
    """A student in a web browser: a log-in session, and the consent page a server not their own asks for once.

    `use` goes through the server's own OAuth log-in, so it checks the token a server is given, not only the
    hub session (with access "shares" they differ in JupyterHub alone: see count_group_shares_in_tokens).
    """

    def __init__(self, hub: LocalHub, user: str) -> None:
        self.url = hub.plan.url
        self.session, r = log_in(self.url, user, hub.plan.password)
        assert r.status_code == 302, r.text
        self.xsrf = xsrf_header(self.session)

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
