"""The surge's students, as locust users: what a browser does in the first minutes of a lab section.

Locust runs this file headless from the tooling venv (``coursehub.surge.run``), against one hub on 127.0.0.1.
Each user is one student of the roster the runner wrote (``$SURGE_PLAN``), in its order of arrival:

1. the hub's log-in page and form (as the browser posts it, with the hub's XSRF cookie);
2. the home page, then the group's account through the hub's spawn URL (what coursehub's home page buttons link
   to): the first member's visit starts the server, the others find it starting (the progress stream, as the
   spawn-pending page reads it) or running; then the server's own OAuth log-in through the hub (the consent page
   for a server not the student's own) and JupyterLab's page;
3. from the first contents listing that answers (the moment "log-in to server" ends), JupyterLab's rhythm against
   the server for ``rhythm`` seconds: every ~10 s the polls JupyterLab makes (kernels, sessions, terminals, the
   open folder's contents), every third poll a save of the student's own notebook, every sixth the kernel specs
   and the identity; a session with a kernel once at the start.

A request that fails is recorded with its time and the student waits and tries again, as a person reloading
would: a 403 from the server means the student's group changed, so they ask the hub for their groups and open
the new group's account. Everything the runner reads is written to ``results`` when locust quits: per student the
seconds from the log-in page to the first answer of their server, every failure, every successful log-in's time,
and the last notebook version each student saved (the runner checks it on disk).

Bounded: the users (the roster), the time (``--run-time``, given by the runner) and the requests
(``max_requests``: locust quits at that count); it quits by itself when every student's rhythm is over.
"""

from __future__ import annotations

import html
import json
import os
import random
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlparse

import gevent
from locust import HttpUser, events, task
from locust.exception import StopUser

PLAN: dict[str, Any] = json.loads(open(os.environ["SURGE_PLAN"]).read()) if "SURGE_PLAN" in os.environ else {}
POLL = 10.0  # seconds between JupyterLab's polls (its kernel, session and file browser models poll every 10 s)
PAGE = {"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}  # a page the browser opens
HOPS = 20  # redirects followed on one way in, at most

_arrivals: Iterator[dict[str, Any]] = iter(PLAN.get("students", ()))
RESULTS: dict[str, Any] = {
    "students": {},
    "failures": [],
    "logins": [],
    "requests": 0,
    "capped": False,
    # per second: [server requests answered, server requests failed, hub requests answered, hub requests failed]
    "timeline": {},
}
_done: set[str] = set()


def _record_failure(student: str, what: str, status: Any, elapsed: float = 0.0) -> None:
    RESULTS["failures"].append(
        {"t": time.time(), "student": student, "what": what, "status": status, "elapsed": round(elapsed, 3)}
    )


@events.request.add_listener
def _count(name: str, response: Any = None, exception: Any = None, **_: Any) -> None:
    RESULTS["requests"] += 1
    # a server's API answers 2xx; a redirect there means the hub answered instead (no route to the server)
    ceiling = 300 if name.startswith("/user/[account]/api/") else 400
    answered = exception is None and response is not None and 0 < response.status_code < ceiling
    second = RESULTS["timeline"].setdefault(str(int(time.time())), [0, 0, 0, 0])
    second[(0 if name.startswith("/user/") else 2) + (0 if answered else 1)] += 1
    if RESULTS["requests"] >= int(PLAN.get("max_requests", 10**9)) and not RESULTS["capped"]:
        RESULTS["capped"] = True
        _quit_soon()


def _quit_soon() -> None:
    """Stop the whole run (from a user's greenlet: in a moment, from one of its own)."""
    runner = Student.environment_ref.runner if Student.environment_ref else None
    if runner is not None:
        gevent.spawn_later(0.1, runner.quit)


@events.user_error.add_listener
def _record_exception(user_instance: Any, exception: Exception, tb: Any, **_: Any) -> None:
    """An exception in a student's task (locust starts the task again): a failure like any other."""
    _record_failure(getattr(user_instance, "name_", "?"), f"exception {type(exception).__name__}", str(exception)[:200])


@events.init.add_listener
def _keep_environment(environment: Any, **_: Any) -> None:
    Student.environment_ref = environment


@events.quitting.add_listener
def _write_results(**_: Any) -> None:
    with open(PLAN["results"], "w") as out:
        json.dump(RESULTS, out)


class Student(HttpUser):
    environment_ref: Any = None

    def wait_time(self) -> float:  # the rhythm keeps its own time (see rhythm)
        return 0.0

    def on_start(self) -> None:
        try:
            me = next(_arrivals)
        except StopIteration:  # more users than students: none is started that way (the runner gives -u)
            raise StopUser() from None
        self.name_, self.team, self.account = me["name"], me["group"], me["account"]
        self.accounts: dict[str, str] = PLAN["accounts"]
        self.record: dict[str, Any] = {
            "group": self.team,
            "account": self.account,
            "began": time.time(),
            "in": None,
            "login_to_server": None,
            "entries": [],
            "saved": None,  # (account, path, version) of the last save that succeeded
        }
        RESULTS["students"][self.name_] = self.record
        self.version = 0
        self.deadline = 0.0

    # --- getting in -----------------------------------------------------------------------------------------

    def _pause(self, tries: int) -> None:
        gevent.sleep(min(5.0, 0.5 * 2**tries) * (0.75 + random.random() / 2))

    def _hub_xsrf(self) -> str:
        return self.client.cookies.get("_xsrf", path="/hub/") or ""

    def _server_headers(self) -> dict[str, str]:
        xsrf = self.client.cookies.get("_xsrf", path=f"/user/{self.account}/") or ""
        return {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin", "X-XSRFToken": xsrf}

    def log_in(self) -> bool:
        r = self.client.get("/hub/login", headers=PAGE, name="/hub/login")
        if r.status_code != 200:
            _record_failure(self.name_, "GET /hub/login", r.status_code)
            return False
        r = self.client.post(
            "/hub/login",
            data={"username": self.name_, "password": PLAN["password"], "_xsrf": self._hub_xsrf()},
            headers=PAGE,
            allow_redirects=False,
            name="/hub/login [post]",
        )
        if r.status_code != 302:
            _record_failure(self.name_, "POST /hub/login", r.status_code)
            return False
        RESULTS["logins"].append(time.time())
        r = self.client.get("/hub/home", headers=PAGE, name="/hub/home")
        if r.status_code != 200:
            _record_failure(self.name_, "GET /hub/home", r.status_code)
            return False
        return True

    def _label(self, path: str) -> str:
        return re.sub(r"/(user|spawn|spawn-pending|users)/[^/?]+", r"/\1/[account]", path.split("?")[0])

    def _wait_for_spawn(self) -> None:
        """The spawn-pending page's progress stream, read until the hub says the server is ready, or the stream
        ends or goes quiet (the hub sends a keep-alive every 8 s; one that stopped mid-stream, as a restarting hub
        does, may leave the connection open): the page's EventSource then reconnects, here the page reloads."""
        url = f"/hub/api/users/{self.account}/server/progress"
        try:
            with self.client.get(
                url,
                headers={"Accept": "text/event-stream", "X-XSRFToken": self._hub_xsrf(), "Sec-Fetch-Mode": "cors"},
                stream=True,
                name="/hub/api/users/[account]/server/progress",
                timeout=(10, 20),
                catch_response=True,
            ) as r:
                if r.status_code != 200:
                    r.failure(f"HTTP {r.status_code}")
                    _record_failure(self.name_, "GET progress", r.status_code)
                    self._pause(1)
                    return
                for line in r.iter_lines():
                    if line.startswith(b"data:") and json.loads(line[5:]).get("ready"):
                        return
        except (OSError, ValueError) as e:  # requests' connection and read errors are OSErrors
            _record_failure(self.name_, "GET progress", type(e).__name__)
            self._pause(1)

    def open_server(self) -> bool:
        """From the hub's spawn URL for the account to JupyterLab's page, following what the browser follows."""
        url, method, data = f"/hub/spawn/{self.account}", "GET", None
        for _ in range(HOPS):
            r = self.client.request(
                method, url, headers=PAGE, data=data, allow_redirects=False, name=self._label(urlparse(url).path)
            )
            path = urlparse(r.url).path
            method, data = "GET", None
            if r.status_code in (301, 302, 303, 307):
                url = urljoin(r.url, r.headers["Location"])
                if urlparse(url).path == "/hub/login":  # the hub's session is gone: log in again
                    return False
                continue
            if r.status_code == 200 and path.startswith("/hub/spawn-pending/"):
                self._wait_for_spawn()
                url = f"/user/{self.account}/lab"
                continue
            if r.status_code == 200 and path == "/hub/api/oauth2/authorize":  # consent: a server not one's own
                fields = re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', r.text)
                url, method, data = r.url, "POST", [(k, html.unescape(v)) for k, v in fields]
                continue
            if r.status_code == 200 and path == f"/user/{self.account}/lab":
                return True
            if r.status_code == 424:  # not running (stopped, or its start failed): the Start button again
                _record_failure(self.name_, f"GET {self._label(path)}", r.status_code)
                gevent.sleep(1)
                url = f"/hub/spawn/{self.account}"
                continue
            _record_failure(self.name_, f"GET {self._label(path)}", r.status_code)
            return False
        _record_failure(self.name_, "too many redirects", 0)
        return False

    def first_answer(self) -> bool:
        r = self.client.get(
            f"/user/{self.account}/api/contents?content=1",
            headers=self._server_headers(),
            allow_redirects=False,
            name="/user/[account]/api/contents",
        )
        if r.status_code != 200:
            _record_failure(self.name_, "GET contents", r.status_code, r.elapsed.total_seconds())
            return False
        return True

    def get_in(self, logged_in: bool) -> bool:
        """Log in (unless `logged_in`), open the group's server, until its first answer; False when the rhythm's
        time ran out first."""
        tries = 0
        while not self.deadline or time.time() < self.deadline:
            if not logged_in:
                logged_in = self.log_in()
            if logged_in and self.open_server() and self.first_answer():
                self.record["entries"].append({"account": self.account, "at": time.time()})
                return True
            tries += 1
            home = self.client.get("/hub/home", headers=PAGE, allow_redirects=False, name="/hub/home")
            if logged_in and home.status_code != 200:
                logged_in = False
            self._pause(tries)
        return False

    def regroup(self) -> None:
        """Refused by the group's server: ask the hub which groups the student is in now, and go to that one's."""
        r = self.client.get(
            "/hub/api/user",
            headers={"X-XSRFToken": self._hub_xsrf(), "Sec-Fetch-Mode": "cors"},
            name="/hub/api/user",
        )
        if r.status_code == 200:
            groups = [g for g in r.json().get("groups", []) if g in self.accounts]
            if groups and self.accounts[groups[0]] != self.account:
                self.team, self.account = groups[0], self.accounts[groups[0]]
                self.record["regrouped"] = {"group": self.team, "at": time.time()}

    # --- JupyterLab's rhythm --------------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> int:
        r = self.client.request(
            method,
            f"/user/{self.account}/api/{path}",
            headers=self._server_headers(),
            allow_redirects=False,
            name=f"/user/[account]/api/{path.split('/')[0].split('?')[0]}",
            **kwargs,
        )
        if r.status_code >= 300:
            _record_failure(self.name_, f"{method} api/{path.split('?')[0]}", r.status_code, r.elapsed.total_seconds())
        return int(r.status_code)

    def save(self) -> int:
        path = f"surge/{self.name_}.ipynb"
        notebook = {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
            "cells": [{"cell_type": "code", "source": f"# {self.name_} {self.version}", "metadata": {}, "outputs": []}],
        }
        status = self.api("PUT", f"contents/{path}", json={"type": "notebook", "content": notebook})
        if status in (200, 201):
            self.record["saved"] = {"account": self.account, "path": path, "version": self.version}
            self.version += 1
        return status

    @task
    def lab_section(self) -> None:
        began = self.record["began"]
        if not self.get_in(logged_in=False):
            self._finish()
        self.record["in"] = time.time()
        self.record["login_to_server"] = time.time() - began
        self.deadline = time.time() + float(PLAN["rhythm"])
        self.api("PUT", "contents/surge", json={"type": "directory"})
        self.save()
        self.api("POST", "sessions", json={"path": f"surge/{self.name_}.ipynb", "type": "notebook"})
        tick = 0
        while time.time() < self.deadline:
            gevent.sleep(POLL * (0.8 + random.random() * 0.4))
            tick += 1
            statuses = [self.api("GET", p) for p in ("kernels", "sessions", "terminals", "contents/surge?content=1")]
            if tick % 3 == 0:
                statuses.append(self.save())
            if tick % 6 == 0:
                statuses += [self.api("GET", "kernelspecs"), self.api("GET", "me")]
            if 403 in statuses:  # no longer allowed here: the student's group changed
                self.regroup()
            if any(s >= 300 for s in statuses):  # JupyterLab shows its "server unavailable" dialog: reload
                self.get_in(logged_in=True)
        self._finish()

    def _finish(self) -> None:
        _done.add(self.name_)
        if len(_done) >= len(PLAN["students"]):
            _quit_soon()
        raise StopUser()
