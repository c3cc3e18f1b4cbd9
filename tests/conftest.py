"""Shared fixtures: real Helm (3 and 4), the real upstream z2jh chart, course values.

`render_chart` is the one helper every rendering test goes through.
"""

from __future__ import annotations

import html
import io
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from coursehub import tools
from coursehub.chart.helm import DEFAULT_KUBE_VERSION, Helm, Release, staged_chart
from coursehub.chart.rendered import objects
from coursehub.chart.upstream import HOW_TO_GET, UpstreamData, find_chart, load_data
from coursehub.courses import Course, load_course
from coursehub.hub.local import LocalHub, Plan, classify, make_plan
from coursehub.images.build import deployed, ensure_env
from coursehub.paths import CHART, ROOT, VALUES

# The files that take longest, longest first (about two minutes down to half a minute, in a clean-clone run).
# `make test` hands whole files to its workers in collection order: one of these starting last would leave the
# run waiting on it, with the other workers idle (checkov, half a minute and not live, once started last and
# kept one worker busy alone for that long). A name that goes stale only costs time; tests/test_tools.py checks
# each still names a file.
LONGEST_FILES = ("test_image_check.py", "test_browser.py", "test_staff.py", "test_sync_shares.py", "test_checkov.py")


# Where the tests' temporary folders go: a memory-backed file system when the machine has one with room. Each
# live hub keeps its SQLite database, and each server its files, in a test's tmp_path, and JupyterHub commits
# several times per API call: on this machine's disk a commit waits about 5 ms for fsync, in /dev/shm 0.2 ms (the
# 1,000-group course test took 202 s on disk, 128 s in memory). Nothing else changes: the same hub, database
# and servers, restarted as often. COURSEHUB_TEST_TMPDIR names another folder (a disk one, to compare).
MEMORY_FS, MEMORY_FS_ROOM = Path("/dev/shm"), 2 << 30
TEMP_ROOT_ENV = "COURSEHUB_TEST_TMPDIR"


def temp_root() -> tuple[Path | None, str]:
    """(the folder for this run's temporary files or None for the default, one line saying which and why)."""
    if os.environ.get(TEMP_ROOT_ENV):
        return Path(os.environ[TEMP_ROOT_ENV]), f"temporary files in {os.environ[TEMP_ROOT_ENV]} (${TEMP_ROOT_ENV})"
    try:
        room = shutil.disk_usage(MEMORY_FS).free
    except OSError:
        return None, f"temporary files on disk: no {MEMORY_FS} here (hub tests wait on fsync; slower, not wrong)"
    if room < MEMORY_FS_ROOM or not os.access(MEMORY_FS, os.W_OK):
        return None, (
            f"temporary files on disk: {MEMORY_FS} has {room >> 20} MiB free, under {MEMORY_FS_ROOM >> 20} MiB "
            "(hub tests wait on fsync; slower, not wrong)"
        )
    return MEMORY_FS / f"coursehub-tests-{os.getuid()}", f"temporary files in memory ({MEMORY_FS})"


def pytest_configure(config: pytest.Config) -> None:
    """Point TMPDIR (tmp_path, tempfile and every process the tests start) at temp_root() before any temporary
    folder exists; xdist's workers inherit it. An explicit --basetemp wins."""
    if config.option.basetemp or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    root, config.coursehub_temp_root = temp_root()  # type: ignore[attr-defined]
    if root is not None:
        # Open to traverse, as /tmp is: pytest's and tempfile's folders inside are private (0700) each, and a
        # test that runs a command as an unprivileged user gives that user a folder of its own in here.
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        os.environ["TMPDIR"] = str(root)
        tempfile.tempdir = None  # tempfile read TMPDIR once already; make it read it again


def pytest_report_header(config: pytest.Config) -> str | None:
    return getattr(config, "coursehub_temp_root", None)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tier first, then the longest files, then the live tier, each in the random order pytest-randomly
    gave it.

    `make test` passes --no-loadscope-reorder so that xdist keeps this order (by default it hands out the files
    with the most tests first, which put the 1,000-group course, two tests and two minutes, last). A stable sort
    keeps pytest's grouping of a parametrized fixture's tests and the random order within each tier.
    """

    def rank(item: pytest.Item) -> tuple[bool, int, bool]:
        longest = LONGEST_FILES.index(item.path.name) if item.path.name in LONGEST_FILES else len(LONGEST_FILES)
        return item.get_closest_marker("slow") is None, longest, item.get_closest_marker("live") is None

    items.sort(key=rank)


@pytest.fixture(scope="session", params=sorted(tools.HELM_PINS), ids=lambda m: f"helm{m}")
def helm(request: pytest.FixtureRequest) -> Helm:
    """Real Helm, every pinned major version (installed by `make tools`)."""
    return Helm(tools.helm_path(request.param))


@pytest.fixture(scope="session")
def newest_helm() -> Helm:
    """The newest pinned Helm, for tests about something other than Helm's versions."""
    return Helm(tools.helm_path(max(tools.HELM_PINS)))


@pytest.fixture(scope="session")
def helm3() -> Helm:
    return Helm(tools.helm_path(3))


@pytest.fixture(scope="session")
def upstream_chart() -> Path:
    """The real z2jh chart ($UPSTREAM_CHART or chart/charts/; `make test` fetches it when neither is there)."""
    chart = find_chart()
    if chart is None:
        pytest.fail(f"no upstream z2jh chart: {HOW_TO_GET}", pytrace=False)
    return chart


@pytest.fixture(scope="session")
def upstream(upstream_chart: Path) -> UpstreamData:
    """z2jh's default values and values schema, from that chart."""
    return load_data(upstream_chart)


@pytest.fixture
def values_dir(tmp_path: Path) -> Path:
    """A copy of values/ that a test may break (the real secrets file, if any, is left out)."""
    target = tmp_path / "values"
    shutil.copytree(VALUES, target, ignore=shutil.ignore_patterns("*.secret.yaml"))
    return target


def edit(path: Path, change: dict[str, Any] | None = None, text: str | None = None) -> None:
    """Deep-set dotted keys in a YAML values file (value None deletes), or replace its text."""
    if text is not None:
        path.write_text(text)
        return
    data = yaml.safe_load(path.read_text()) or {}
    for dotted, value in (change or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def render_chart(
    helm: Helm,
    chart: Path,
    course: Course | str = "stat159",
    values: dict[str, Any] | None = None,
    show_only: list[str] | None = None,
    kube_version: str = DEFAULT_KUBE_VERSION,
) -> list[dict[str, Any]]:
    """Render a course with real Helm and the real upstream chart: every test that renders goes through here.

    `values` overrides the course's layers, as one more values file after them (keys may be dotted:
    {"archive.run": True}); `show_only` names templates, as `helm template --show-only` does.
    """
    course = load_course(course) if isinstance(course, str) else course
    extra: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if values:
            override = Path(tmp) / "override.yaml"
            override.write_text(yaml.safe_dump(nested(values)))
            extra += ["--values", str(override)]
        for template in show_only or ():
            extra += ["--show-only", template]
        with staged_chart(chart) as staged:
            return objects(helm.template(staged, course, Release.for_course(course), kube_version, extra=extra))


def nested(values: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} as {"a": {"b": 1}} (values files are nested; tests read better dotted)."""
    out: dict[str, Any] = {}
    for dotted, value in values.items():
        node = out
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = nested(value) if isinstance(value, dict) else value
    return out


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert matches, f"no {kind}/{name} among {[(o['kind'], o['metadata']['name']) for o in objs]}"
    return matches[0]


# The `coursehub` command, as `make venv` (pip install --editable .) installs it beside this Python.
def stand_in_program(path: Path, body: str = "") -> Path:
    """A test double for a program: an executable shell script at `path` running `body` (nothing by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)
    return path


COMMAND = str(Path(sys.executable).with_name("coursehub"))


def _command_env(values: Path | None, upstream: Path | None) -> dict[str, str]:
    """What the Makefile would export for a command: the values folder and the upstream chart, when given."""
    pairs = {"COURSEHUB_VALUES": values, "UPSTREAM_CHART": upstream}
    return {name: str(value) for name, value in pairs.items() if value is not None}


def coursehub(*args: str, values: Path | None = None, upstream: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The `coursehub` command as the Makefile runs it (with the upstream chart the tests use, or `upstream`), run
    in this process through cli.main: the same parsing, exit code and printed lines, without a new interpreter
    importing coursehub again (1 to 2 s of CPU each). What it does not capture: output of programs the command
    starts with this process's own stdout (a real deploy's helm, sops' editor), and Python warnings (pytest
    records them). installed_coursehub() runs the console script itself."""
    from coursehub import cli

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as env, redirect_stdout(out), redirect_stderr(err):
        for name, value in _command_env(values, upstream).items():
            env.setenv(name, value)
        try:
            code = cli.main(list(args))
        except SystemExit as e:  # argparse's usage errors, as the interpreter would end on them
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
                code = 1
    return subprocess.CompletedProcess(["coursehub", *args], code, out.getvalue(), err.getvalue())


def installed_coursehub(
    *args: str, values: Path | None = None, upstream: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The console script `pip install .` installs, in a process of its own (as the Makefile runs it)."""
    env = {**os.environ, **_command_env(values, upstream)}
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, env=env, cwd=ROOT)


@contextmanager
def live_hub(values: Path, workdir: Path) -> Iterator[LocalHub]:
    """A real hub (hub/local.py) for stat159 with the values in `values`, stopped whatever happens."""
    course = load_course("stat159", values_dir=values)
    env = ensure_env(deployed("stat159", course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    plan = make_plan(course, load_data(), workdir, env, classify(course), admin_token=secrets.token_hex(16))
    hub = LocalHub(plan)
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()


def stat159_values(folder: Path, secret: dict[str, Any], **course_keys: Any) -> Path:
    """A values folder with common.yaml, stat159.yaml (plus `course_keys` in custom.coursehub) and a secrets file.

    Servers on the hub's own origin: the live tests of who may do what talk to the hub and the servers by path on
    127.0.0.1. Servers on their own origins (stat159's subdomain_host) are tested in test_subdomains.py."""
    for name in ("common.yaml", "stat159.yaml"):
        (folder / name).write_text((VALUES / name).read_text())
    course = yaml.safe_load((folder / "stat159.yaml").read_text())
    course["jupyterhub"]["hub"]["config"].pop("JupyterHub")
    course["jupyterhub"]["custom"]["coursehub"].update(course_keys)
    (folder / "stat159.yaml").write_text(yaml.safe_dump(course))
    (folder / "stat159.secret.yaml").write_text(yaml.safe_dump(secret))
    return folder


DENIED = {403, 404}


class HubClient:
    """A live hub through its proxy: log-ins, students' tokens, start/use/stop, waits."""

    def __init__(self, local: LocalHub) -> None:
        self.plan: Plan = local.plan
        self.url = self.plan.url
        self.admin = {"Authorization": f"token {self.plan.admin_token}"}
        self._tokens: dict[str, str] = {}

    def login(self, username: str, password: str) -> requests.Response:
        session = requests.Session()
        session.get(f"{self.url}/hub/login")
        return session.post(
            f"{self.url}/hub/login",
            allow_redirects=False,
            data={"username": username, "password": password, "_xsrf": session.cookies.get("_xsrf")},
        )

    def token(self, student: str) -> str:
        """A student's API token, made the way a student makes one: log in, then ask the hub."""
        if student not in self._tokens:
            session = requests.Session()
            session.get(f"{self.url}/hub/login")
            xsrf = session.cookies.get("_xsrf")
            r = session.post(
                f"{self.url}/hub/login",
                data={"username": student, "password": self.plan.password, "_xsrf": xsrf},
                allow_redirects=False,
            )
            assert r.status_code == 302, r.text
            r = session.post(
                f"{self.url}/hub/api/users/{student}/tokens",
                json={"note": "live test"},
                headers={"X-XSRFToken": session.cookies.get("_xsrf")},
            )
            assert r.status_code == 201, r.text
            self._tokens[student] = r.json()["token"]
        return self._tokens[student]

    def as_(self, student: str) -> dict[str, str]:
        return {"Authorization": f"token {self.token(student)}"}

    def server(self, user: str) -> dict:
        r = requests.get(f"{self.url}/hub/api/users/{user}", headers=self.admin)
        r.raise_for_status()
        return r.json()["servers"].get("", {})

    def wait(self, user: str, ready: bool, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server(user)
            if (server.get("ready") is True) == ready and not server.get("pending"):
                return
            time.sleep(0.25)
        raise AssertionError(f"{user}'s server did not become {'ready' if ready else 'stopped'}: {self.server(user)}")

    def start(self, who: str, user: str) -> int:
        return requests.post(f"{self.url}/hub/api/users/{user}/server", headers=self.as_(who)).status_code

    def stop(self, who: str, user: str) -> int:
        return requests.delete(f"{self.url}/hub/api/users/{user}/server", headers=self.as_(who)).status_code

    def use(self, who: str, user: str) -> int:
        return requests.get(
            f"{self.url}/user/{user}/api/status", headers=self.as_(who), allow_redirects=False
        ).status_code


class Browser:
    """A student in a web browser: a log-in session, and the consent page a server not their own asks for once.

    `use` goes through the server's own OAuth log-in, so it checks the token a server is given, not only the
    hub session (with access "shares" they differ in JupyterHub alone: see count_group_shares_in_tokens).
    """

    def __init__(self, hub: LocalHub, user: str) -> None:
        self.url, self.session = hub.plan.url, requests.Session()
        self.session.get(f"{self.url}/hub/login")
        r = self.session.post(
            f"{self.url}/hub/login",
            allow_redirects=False,
            data={"username": user, "password": hub.plan.password, "_xsrf": self.session.cookies.get("_xsrf")},
        )
        assert r.status_code == 302, r.text
        self.xsrf = {"X-XSRFToken": self.session.cookies.get("_xsrf") or ""}

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


def sync_groups(
    hub: LocalHub, values: Path, *, dry_run: bool = False, token: str | None = None, recheck: bool = False
) -> tuple[int, str]:
    """`make sync-groups` in-process against the live hub: (exit code, what it printed)."""
    from coursehub.groups import sync

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        env.setenv(sync.TOKEN_ENV, token if token is not None else str(hub.plan.admin_token))
        code = sync.sync(load_course("stat159", values_dir=values), hub.plan.url, dry_run, out, recheck=recheck)
    return code, out.getvalue()


def hub_groups(hub: LocalHub) -> dict[str, dict[str, Any]]:
    """Every group on the hub with its members and properties (the admin's view)."""
    r = requests.get(f"{hub.plan.url}/hub/api/groups", headers={"Authorization": f"token {hub.plan.admin_token}"})
    r.raise_for_status()
    return {g["name"]: g for g in r.json()}


def write_roster(
    values: Path, members: dict[str, list[str]], admin_page: tuple[str, ...] = (), **declaration: Any
) -> None:
    """The course's secrets file with one shared account per group (collab-<group>) and these members; the
    `admin_page` groups are declared without members (the admin page manages theirs)."""
    accounts = [{"group": g, "account": f"collab-{g}"} for g in (*members, *admin_page)]
    secret = {"jupyterhub": {"custom": {"coursehub": {"sharedAccounts": accounts, "members": members, **declaration}}}}
    (values / "stat159.secret.yaml").write_text(yaml.safe_dump(secret))


def redeploy(hub: LocalHub, values: Path) -> float:
    """What `make deploy` does to a running hub when the values changed: z2jh restarts the hub with them."""
    course = load_course("stat159", values_dir=values)
    hub.plan.values = make_plan(
        course, load_data(), Path(hub.plan.workdir), Path(hub.plan.singleuser_bin).parent, classify(course)
    ).values
    return hub.restart()


def checkout_with_chart(folder: Path, upstream_chart: Path) -> Path:
    """A checkout's chart/ whose chart/charts/ holds the upstream chart, as after `make deps`: where a printed
    deploy command is run later."""
    shutil.copytree(CHART, folder / "chart", ignore=shutil.ignore_patterns("charts", "__pycache__"))
    (folder / "chart" / "charts").mkdir()
    if upstream_chart.is_file():
        shutil.copyfile(upstream_chart, folder / "chart" / "charts" / upstream_chart.name)
    else:
        (folder / "chart" / "charts" / "jupyterhub").symlink_to(upstream_chart, target_is_directory=True)
    return folder


# The settings `make archive` and `make restore` give, plus a schedule: every archive object renders.
ARCHIVE_JOBS = {
    "archive.run": True,
    "archive.schedule": "0 3 * * 0",
    "archive.restore.account": "alice",
    "archive.restore.archive": "alice-20261125T000000Z.tar.gz",
    "archive.restore.path": "project/data",
}


def is_coursehubs(obj: dict[str, Any]) -> bool:
    """An object coursehub's own templates render (not z2jh's)."""
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "coursehub"
