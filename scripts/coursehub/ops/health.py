"""`make health`: after a deploy, check the course's hub the way a class will use it.

Through the hub's public URL and REST API. Checks, in order:
- the hub answers;
- a health-check user's server starts, runs code in a kernel, has RTC on (off
  with `rtc: sharedAccounts`: it is not a shared account), and keeps its RTC
  stores (Y store, file-ID database) off the home directory;
- every shared account exists and its group holds the role that lets members
  start and use it (access "roles");
and always stops the health-check user's server and deletes the user.
Each problem is one line.

Two tokens, each with only what its requests need:
- the operator's, from $JUPYTERHUB_API_TOKEN, with OPERATOR_SCOPES:
  `admin:users!user=coursehub-health` (create and delete that one user),
  `tokens!user=coursehub-health` (issue that user a token for this run, and
  revoke it), `read:users:name` (the shared accounts exist) and
  `read:roles:groups` (each group's roles; not its members). It never reaches
  a user's server. JupyterHub 5.5.0 to 5.5.2 (z2jh 4.4.0 ships 5.5.0) check the
  filter of `tokens!user=` against the requester's kind, so there a service's
  token is refused the health user's token (403): give the role to a user and
  use that user's token. From 5.5.3 a service's token works as well.
- the health user's own, issued for this run with HEALTH_SCOPES
  (`servers!user=coursehub-health`, `access:servers!user=coursehub-health`),
  expiring soon after the run's longest wait, revoked and deleted with the
  user. Everything that touches the server (start, its API, the kernel
  websocket, stop) uses it.
A `coursehub-health` user that exists before the run is not this run's: make
health refuses to run (one line), and leaves that user, its server and its
tokens alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from coursehub.courses import Course, get
from coursehub.errors import CoursehubError, Problem
from coursehub.groups import hubpython
from coursehub.singleuser import STORE_FLAGS

TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
USER: str = hubpython.load().HEALTH_USER  # the one name, which the hub refuses at log-in
# What the operator's token needs, and all it needs (see the module's docstring).
OPERATOR_SCOPES = (f"admin:users!user={USER}", f"tokens!user={USER}", "read:users:name", "read:roles:groups")
# The health user's token for one run: its own server, nothing else.
HEALTH_SCOPES = (f"servers!user={USER}", f"access:servers!user={USER}")
PROBE_FILE = "coursehub-health.txt"
# Runs in the kernel of the deployed hub's server, where coursehub is not installed: the one flag parser that
# is not coursehub.singleuser's. The server is the kernel's parent process; its command line carries the flags.
KERNEL_CODE = """
import json, os
cmd = open(f"/proc/{os.getppid()}/cmdline", "rb").read().split(b"\\0")
flags = dict(a.decode()[2:].split("=", 1) for a in cmd if a.startswith(b"--") and b"=" in a)
print(json.dumps({"answer": 6 * 7, "home": os.path.realpath(os.path.expanduser("~")), "flags": flags,
                  "exists": {k: os.path.exists(v) for k, v in flags.items() if k.endswith("db_path")}}))
"""
PAGE_CONFIG = re.compile(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S)


class _Api:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kwargs)


def health(course: Course, hub_url: str, timeout: float = 300, say: Callable[[str], None] = print) -> list[Problem]:
    """Every problem found, one per line; [] when the hub is healthy."""
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise CoursehubError(
            Problem(TOKEN_ENV, "", "is not set", f"export a hub API token with the scopes {' '.join(OPERATOR_SCOPES)}")
        )
    operator = _Api(hub_url, token)
    where = f"hub {operator.url}"
    try:
        version = operator("GET", "/hub/api/").json()["version"]
    except (requests.RequestException, ValueError, KeyError) as e:
        return [Problem(where, "", f"does not answer ({type(e).__name__})", "check HUB_URL and the hub pod's log")]
    say(f"{where}: answers (JupyterHub {version})")
    refused = _create_user(operator, where)
    if refused:
        return [refused]  # not this run's user: nothing of it is touched, not even to clean up
    problems: list[Problem] = []
    issued: dict[str, Any] = {}
    try:
        issued, problem = _user_token(operator, where, timeout)
        if problem:
            problems.append(problem)
        else:
            problems += _server(_Api(hub_url, issued["token"]), where, timeout, say, _rtc(course))
    finally:
        user = _Api(hub_url, issued["token"]) if issued else None
        problems += _clean_up(operator, user, issued.get("id"), where, timeout)
    problems += _shared_accounts(course, operator, where, say)
    return problems


def _create_user(operator: _Api, where: str) -> Problem | None:
    """Create the health-check user; a Problem if that cannot be done or the user was there already."""
    fix = f"give ${TOKEN_ENV} the scope admin:users!user={USER}"
    found = operator("GET", f"/hub/api/users/{USER}")
    if found.status_code == 404:
        created = operator("POST", f"/hub/api/users/{USER}")
        if created.status_code == 201:
            return None
        if created.status_code != 409:  # 409: made by someone else since the GET
            return Problem(where, f"users/{USER}", f"cannot be created ({created.status_code})", fix)
    elif found.status_code != 200:
        return Problem(where, f"users/{USER}", f"cannot be looked up ({found.status_code})", fix)
    return Problem(
        where,
        f"users/{USER}",
        "exists already, so it is not this run's: make health leaves it, its server and its tokens alone",
        f"find out who made it and why (the hub's log, the admin page), then delete it by hand "
        f"(the admin page, or DELETE /hub/api/users/{USER}) and run make health again",
    )


def _user_token(operator: _Api, where: str, timeout: float) -> tuple[dict[str, Any], Problem | None]:
    """A token of the health-check user's own, for its own server only, expiring soon after this run's waits."""
    r = operator(
        "POST",
        f"/hub/api/users/{USER}/tokens",
        json={"scopes": list(HEALTH_SCOPES), "expires_in": int(3 * timeout) + 300, "note": "make health, one run"},
    )
    if r.status_code != 201:
        return {}, Problem(
            where,
            f"users/{USER}/tokens",
            f"cannot be issued ({r.status_code})",
            f"give ${TOKEN_ENV} the scope tokens!user={USER} (on JupyterHub 5.5.0 to 5.5.2, a user's token: "
            "a service's is refused it)",
        )
    return r.json(), None


def _rtc(course: Course) -> str:
    return str(hubpython.load().rtc_setting(get(course.values(), ("jupyterhub", "custom", "coursehub")) or {}))


def _server(api: _Api, where: str, timeout: float, say: Callable[[str], None], rtc: str) -> list[Problem]:
    """With the health-check user's own token: start its server, run code there, look at RTC."""
    started = time.monotonic()
    r = api("POST", f"/hub/api/users/{USER}/server")
    if r.status_code not in (201, 202):
        return [
            Problem(
                where,
                f"users/{USER}/server",
                f"did not start (the hub answered {r.status_code})",
                "read the hub's and the user pod's log (image pull, resources, the singleuser command)",
            )
        ]
    server = _wait(api, lambda s: s.get("ready") is True or not s, timeout)
    if not server.get("ready"):
        state = "still pending" if server.get("pending") else "stopped before it was ready"
        return [
            Problem(
                where,
                f"users/{USER}/server",
                f"did not start within {timeout:.0f} s ({state})",
                "read the hub's and the user pod's log (image pull, resources, the singleuser command)",
            )
        ]
    say(f"{where}: {USER}'s server started in {time.monotonic() - started:.0f} s")
    base = f"/user/{USER}"
    problems: list[Problem] = []
    try:
        result = asyncio.run(_run_in_kernel(api, base))
    except Exception as e:  # the kernel and its websocket can fail in many ways; each is the same problem
        return [Problem(where, f"{base}/api/kernels", f"cannot run code in a kernel ({e})", "read the server's log")]
    if result.get("answer") != 42:
        return [Problem(where, f"{base}/api/kernels", "a kernel ran the code but did not answer", "read the log")]
    say(f"{where}: a kernel on {USER}'s server runs code")
    home = result["home"]
    for flag, what in STORE_FLAGS.items():
        path = result["flags"].get(flag)
        if not path or path == home or path.startswith(home.rstrip("/") + "/"):
            problems.append(
                Problem(where, f"{USER}'s server --{flag}", f"puts {what} in the home directory", "see make validate")
            )
        elif flag == "BaseFileIdManager.db_path" and not result["exists"].get(flag):
            problems.append(Problem(where, f"{USER}'s server --{flag}", f"{what} was not created", "read the log"))
    on = _rtc_on(api, base) and _rtc_in_page(api, base)
    if rtc == "sharedAccounts":
        if on:
            problems.append(
                Problem(
                    where,
                    f"{USER}'s server",
                    "has RTC on, but rtc: sharedAccounts keeps it to the shared accounts' servers",
                    "restart the hub with the values (the setting applies to servers started after)",
                )
            )
        else:
            say(f"{where}: RTC is off in {USER}'s server, as rtc: sharedAccounts wants (not a shared account)")
    elif on:
        say(f"{where}: RTC is on, its stores are off the home directory" if not problems else f"{where}: RTC is on")
    else:
        problems.append(
            Problem(
                where,
                f"{USER}'s server",
                "has RTC off (no collaboration API, or JupyterLab not collaborative)",
                "check the image's packages and the singleuser command",
            )
        )
    return problems


def _wait(api: _Api, done: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    server: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = api("GET", f"/hub/api/users/{USER}")
        if r.status_code == 404:
            return {}
        if r.ok:
            server = r.json().get("servers", {}).get("", {})
            if done(server):
                return server
        time.sleep(0.5)
    return server


async def _run_in_kernel(api: _Api, base: str) -> dict[str, Any]:
    r = api("POST", f"{base}/api/kernels", json={})
    r.raise_for_status()
    kernel = r.json()["id"]
    try:
        url = api.url.replace("http", "ws", 1) + f"{base}/api/kernels/{kernel}/channels"
        headers = {"Authorization": api.session.headers["Authorization"]}
        connection = await websocket_connect(HTTPRequest(url, headers=headers))
        msg_id = uuid.uuid4().hex
        message = {
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": USER, "session": msg_id},
            "parent_header": {},
            "metadata": {},
            "content": {"code": KERNEL_CODE, "silent": False, "store_history": False, "allow_stdin": False},
            "channel": "shell",
        }
        await connection.write_message(json.dumps(message))
        output = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(connection.read_message(), deadline - time.monotonic())
            if raw is None:
                break
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if reply["msg_type"] == "stream":
                output += reply["content"]["text"]
            if reply["msg_type"] == "error":
                raise RuntimeError(f"{reply['content']['ename']}: {reply['content']['evalue']}")
            if reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
                break  # iopub: every output of the request came before this
        connection.close()
        if not output.strip():
            raise RuntimeError("the kernel printed nothing")
        return json.loads(output.strip().splitlines()[-1])
    finally:
        api("DELETE", f"{base}/api/kernels/{kernel}")


def _rtc_on(api: _Api, base: str) -> bool:
    """The collaboration API answers for a file: jupyter-collaboration >= 2, else jupyter_server_ydoc / 1.x."""
    api("PUT", f"{base}/api/contents/{PROBE_FILE}", json={"type": "file", "format": "text", "content": ""})
    try:
        body = {"format": "text", "type": "file"}
        for path in (f"/api/collaboration/session/{PROBE_FILE}", f"/api/yjs/roomid/{PROBE_FILE}"):
            if api("PUT", base + path, json=body).status_code in (200, 201):
                return True
        return False
    finally:
        api("DELETE", f"{base}/api/contents/{PROBE_FILE}")


def _rtc_in_page(api: _Api, base: str) -> bool:
    """What the server's JupyterLab reads to make documents collaborative (the endpoints are there either way):
    JupyterLab 3.6's `collaborative` (--LabApp.collaborative), jupyter-collaboration's `disableRTC`."""
    found = PAGE_CONFIG.search(api("GET", f"{base}/lab").text)
    config = json.loads(found.group(1)) if found else {}
    return config.get("collaborative") is True or config.get("disableRTC") is False


def _clean_up(operator: _Api, user: _Api | None, token_id: str | None, where: str, timeout: float) -> list[Problem]:
    """Stop the server this run started with the user's own token (waiting out a pending start), then revoke
    that token and delete the user with the operator's."""
    server: dict[str, Any] = {}
    if user is not None:
        _wait(user, lambda s: not s.get("pending"), timeout)
        user("DELETE", f"/hub/api/users/{USER}/server")
        server = _wait(user, lambda s: not s, timeout)
    if token_id:
        operator("DELETE", f"/hub/api/users/{USER}/tokens/{token_id}")
    deleted = operator("DELETE", f"/hub/api/users/{USER}")
    if server or deleted.status_code not in (204, 404):
        return [Problem(where, f"users/{USER}", "could not be stopped and deleted", "delete it in the admin page")]
    return []


def _shared_accounts(course: Course, api: _Api, where: str, say: Callable[[str], None]) -> list[Problem]:
    declaration = get(course.values(), ("jupyterhub", "custom", "coursehub")) or {}
    if str(declaration.get("access") or "roles") != "roles":
        return []  # access "shares": make sync-groups keeps and checks the shares
    problems: list[Problem] = []
    accounts = hubpython.load().parse(declaration)
    for account in accounts:
        group = api("GET", f"/hub/api/groups/{quote(account.group, safe='')}")
        user = api("GET", f"/hub/api/users/{quote(account.account, safe='')}")
        roles = group.json().get("roles", []) if group.ok else []
        if user.status_code != 200:
            problems.append(Problem(where, f"users/{account.account}", "does not exist", "restart the hub"))
        elif account.role_name not in roles:
            problems.append(
                Problem(
                    where,
                    f"groups/{account.group}",
                    f"lacks the role {account.role_name}, so its members cannot start {account.account}",
                    "restart the hub (roles load at start-up)",
                )
            )
    if accounts and not problems:
        say(f"{where}: {len(accounts)} shared accounts, each startable by its group's role")
    return problems
