"""`make check-image`: does a course's singleuser command really work on its image?

Jupyter only warns about misspelled options, and the seed's RTC flags stop
working when an image moves stacks; nothing else catches that before students
do. Two checks, each problem reported as one line that names the flag and the
package versions involved:
1. static, inside the image's environment (probe.py): every
   `--Class.trait=value` names a real class and trait there, the value parses,
   and a Type trait's class imports and is accepted;
2. live: `jupyterhub-singleuser` started by a real hub (hub/local.py) with exactly
   that command must come up, serve its API, have RTC on, and write its Y store
   and file-ID database where the command says, not in the home directory.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import importlib.metadata
import inspect
import json
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from coursehub.files import replace_file
from coursehub.hub.local import LocalHub, Plan, map_path, processes, server_dirs, server_path
from coursehub.images.build import Variant, ensure_env
from coursehub.paths import HUB_CONFIG_FILE, HUB_PACKAGE
from coursehub.singleuser import POD_HOME, STORE_FLAGS, flags, parse_flag

PROBE = Path(__file__).with_name("probe.py")
CHECK_USER = "image-check"


@dataclass(frozen=True)
class Verdict:
    flag: str
    problem: str
    versions: str

    def __str__(self) -> str:
        return f"{self.flag}: {self.problem} [{self.versions}]"


def _versions_line(versions: dict[str, str | None]) -> str:
    shown = [f"{n} {v}" for n, v in versions.items() if v and n != "notebook"]
    missing = [n for n in ("jupyter-collaboration", "jupyter-server-ydoc") if not versions.get(n)]
    return ", ".join(shown + [f"no {n}" for n in missing])


def probe(env: Path, cmd: list[str]) -> tuple[dict[str, str | None], dict[str, str | None]]:
    # An environment's first probe imports every module of its Jupyter packages. It writes their bytecode into the
    # environment, as the servers there do (the hub never passes them PYTHONDONTWRITEBYTECODE), so that where the
    # variable is set (CI machines here) a later walk does not compile them all again: 12 s of CPU instead of 6.6 s.
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="coursehub-probe-") as links:
        # the search path the servers get (hub/local.py): the image's, without Node.js, which JupyterLab's classes
        # would otherwise run yarn with as the probe makes them
        environ["PATH"] = server_path(str(env / "bin"), Path(links))
        result = subprocess.run(
            [str(env / "bin" / "python"), str(PROBE), json.dumps(cmd)],
            capture_output=True,
            text=True,
            timeout=300,
            env=environ,
        )
    if result.returncode != 0:
        raise RuntimeError(f"image probe failed: {result.stderr[-1500:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return data["versions"], data["flags"]


def check_command(variant: Variant, cmd: list[str], live: bool = True) -> list[Verdict]:
    """Every problem with running `cmd` on `variant`, as one-line verdicts (empty when it works).

    A live check that passes is remembered (`passed_before`)."""
    env = ensure_env(variant)
    versions, flags = probe(env, cmd)
    where = f"{variant.ref}: " + _versions_line(versions)
    verdicts = [Verdict(flag, problem, where) for flag, problem in flags.items() if problem]
    if live:
        verdicts += [Verdict(flag, problem, where) for flag, problem in run_server(env, cmd)]
        if not verdicts:
            _remember_pass(variant, cmd)
    return verdicts


def _pass_record(variant: Variant, cmd: list[str]) -> Path:
    """Where a passed live check of `cmd` on `variant` is recorded: in the environment's folder, whose name
    carries the image's pins, under a key of everything else the verdict depends on (the command, this check's
    code and the local hub's, coursehub's hub side, the tooling's JupyterHub)."""
    key = hashlib.sha256(json.dumps(cmd).encode())
    local_hub, pod_flags = Path(inspect.getfile(LocalHub)), Path(inspect.getfile(parse_flag))  # local.py, singleuser.py
    hub_side = sorted((HUB_PACKAGE / "coursehub_hub").glob("*.py"))
    for code in (Path(__file__), PROBE, local_hub, pod_flags, HUB_CONFIG_FILE, *hub_side):
        key.update(code.read_bytes())
    key.update(importlib.metadata.version("jupyterhub").encode())
    return variant.env / ".coursehub-passed" / key.hexdigest()[:24]


def passed_before(variant: Variant, cmd: list[str]) -> bool:
    """The live check of exactly this command on exactly these pins, with this code, has passed here before.

    `make validate` then skips running it again (about 13 s a course); `make check-image` always runs it."""
    return variant.built and _pass_record(variant, cmd).is_file()


@contextmanager
def one_check_at_a_time(variant: Variant, cmd: list[str]) -> Iterator[None]:
    """Hold this machine's lock for checking `cmd` on `variant`: a second `make validate` (another shell, the
    test suite's parallel workers) waits for a check under way, then finds its pass instead of running it too."""
    record = _pass_record(variant, cmd)
    record.parent.mkdir(exist_ok=True)
    with open(record.with_name(f"{record.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        yield


def _remember_pass(variant: Variant, cmd: list[str]) -> None:
    record = _pass_record(variant, cmd)
    record.parent.mkdir(exist_ok=True)
    replace_file(record, json.dumps(cmd) + "\n")


def run_server(env: Path, cmd: list[str]) -> list[tuple[str, str]]:
    """Start the command under a real hub; return (flag, problem) pairs for what did not work."""
    with tempfile.TemporaryDirectory(prefix="coursehub-image-check-") as tmp:
        workdir = Path(tmp)
        plan = Plan(
            values={"singleuser": {"cmd": cmd}},
            workdir=str(workdir),
            singleuser_bin=str(env / "bin"),
            password=secrets.token_urlsafe(9),
            instructor="instructor",
            admin_token=secrets.token_hex(16),
        )
        with LocalHub(plan) as hub:
            return _exercise(hub, cmd)


def _exercise(hub: LocalHub, cmd: list[str]) -> list[tuple[str, str]]:
    url, admin = hub.plan.url, {"Authorization": f"token {hub.plan.admin_token}"}
    requests.post(f"{url}/hub/api/users/{CHECK_USER}", headers=admin).raise_for_status()
    spawn = requests.post(f"{url}/hub/api/users/{CHECK_USER}/server", headers=admin)
    if spawn.status_code >= 400:  # the server died within the hub's first wait: its log says why
        return [_blame(cmd, _failure(hub.log))]
    # 201/202: the spawner has started the server's process (the local spawner starts it before anything else).
    deadline = time.monotonic() + 120
    server: dict[str, Any] = {}
    while time.monotonic() < deadline:
        server = requests.get(f"{url}/hub/api/users/{CHECK_USER}", headers=admin).json()["servers"].get("", {})
        if server.get("ready") or not server:
            break
        # The hub waits for a server's HTTP up to its http_timeout, even when the process has already exited:
        # a server that died is a verdict now. The server is the hub's child that runs the image's programs.
        hub_pid = hub.process.pid if hub.process else -1
        if not any(parent == hub_pid and hub.plan.singleuser_bin in cmdline for _, parent, cmdline in processes()):
            break
        time.sleep(0.25)
    if not server.get("ready"):
        return [_blame(cmd, _failure(hub.log))]
    base = f"{url}/user/{CHECK_USER}"
    status = requests.get(f"{base}/api/status", headers=admin)
    if status.status_code != 200:
        return [("command", f"the server does not serve its API (GET /api/status: {status.status_code})")]
    requests.put(
        f"{base}/api/contents/coursehub-check.txt",
        headers=admin,
        json={"type": "file", "format": "text", "content": "check"},
    ).raise_for_status()
    room = _open_room(base, admin)
    if room is None:
        return [
            (
                "command",
                "RTC is off: the server has neither jupyter-collaboration's nor jupyter_server_ydoc's room endpoints",
            )
        ]
    problems = []
    if room.startswith("/api/yjs/"):  # JupyterLab 3.6: the endpoints are always there, RTC needs the flag
        page = requests.get(f"{base}/lab", headers=admin).text
        if not re.search(r'"collaborative":\s*true', page):
            problems.append(
                (
                    "--LabApp.collaborative=true",
                    "RTC is off: JupyterLab 3 needs this flag, and the command does not set it",
                )
            )
    tmp, home = server_dirs(Path(hub.plan.workdir), CHECK_USER)
    return problems + _store_problems(cmd, tmp, home)


def _open_room(base: str, headers: dict[str, str]) -> str | None:
    """Open the check file's collaborative room (this creates its Y store); None when RTC is off."""
    body = {"format": "text", "type": "file"}
    session = requests.put(f"{base}/api/collaboration/session/coursehub-check.txt", headers=headers, json=body)
    if session.status_code in (200, 201):  # jupyter-collaboration >= 2
        s = session.json()
        path = f"/api/collaboration/room/{s['format']}:{s['type']}:{s['fileId']}?sessionId={s['sessionId']}"
    else:  # JupyterLab 3.6 (jupyter_server_ydoc) and jupyter-collaboration 1.x
        roomid = requests.put(f"{base}/api/yjs/roomid/coursehub-check.txt", headers=headers, json=body)
        if roomid.status_code not in (200, 201):
            return None
        path = f"/api/yjs/{roomid.text}"
    asyncio.run(_touch_websocket(base.replace("http://", "ws://") + path, headers))
    return path


async def _touch_websocket(url: str, headers: dict[str, str]) -> None:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(HTTPRequest(url, headers=headers))
    try:
        await asyncio.wait_for(connection.read_message(), timeout=10)  # the server's first sync message
        await asyncio.sleep(1.0)
    finally:
        connection.close()


def _store_problems(cmd: list[str], tmp: Path, home: Path) -> list[tuple[str, str]]:
    problems = []
    given = dict(flags(cmd))
    for name, what in STORE_FLAGS.items():
        if name not in given:
            problems.append((f"--{name}", f"is not set, so {what} goes to its default place"))
            continue
        value = given[name]
        flag = f"--{name}={value}"
        if value == POD_HOME or value.startswith(POD_HOME + "/") or not value.startswith("/"):
            problems.append((flag, f"puts {what} in the home directory, which is on NFS"))
            continue
        local = Path(dict(flags([map_path(flag, tmp, home)]))[name])
        if not local.is_file():
            problems.append((flag, f"{what} was not written there"))
    for path in sorted(home.rglob("*")):
        if path.is_file() and (path.suffix in (".db", ".sqlite") or "ystore" in path.name):
            rel = path.relative_to(home)
            if not any(rel.name in f for f, _ in problems):
                problems.append(("command", f"an SQLite file was written in the home directory: ~/{rel}"))
    return problems


def _failure(log: Path) -> str:
    """The most telling line of a server that did not start."""
    lines = log.read_text(errors="replace").splitlines()
    start = max((i for i, line in enumerate(lines) if "Spawning" in line and CHECK_USER in line), default=0)
    tail = [line.strip() for line in lines[start:] if line.strip()]
    for pattern in (r"^\[C ", r"Error:|Error\b", r"exit"):
        hits = [line for line in tail if re.search(pattern, line) and "ConfigProxy" not in line]
        if hits:
            return re.sub(r"^\[\w \S+ \S+ \S+\] ", "", hits[-1])[:300]
    return "the server exited before it answered"


def _blame(cmd: list[str], failure: str) -> tuple[str, str]:
    """Name the flag the failure talks about, if any."""
    text = failure.lower()
    for arg in cmd[1:]:
        if arg.startswith("--"):
            name = (parse_flag(arg) or (arg[2:], ""))[0]
            if any(part[:8].lower() in text for part in name.split(".") if len(part) > 3):  # stems: collabor…
                return arg, f"the server did not start: {failure}"
    return "command", f"the server did not start: {failure}"
