"""A real JupyterHub with configurable-http-proxy on 127.0.0.1, configured from a course's values.

`make demo` and the live-hub tests run this. It takes the course's values
through the same path the chart does in the cluster: hub.config section by
section, hub.loadRoles, then coursehub's hub-side Python with a get_config()
over the same values, then hub.extraConfig; singleuser servers run the course's
own singleuser command from its image's environment (images/build.py). What only means
something on Kubernetes is listed as not applied; a key this module does not
know is an error.

Each local server gets its own folder standing in for the pod's /tmp and its
home directory; the course command's /tmp/... and home paths are mapped there.

It restarts as z2jh's hub does on every deploy: the proxy runs apart from the
hub (z2jh runs it in its own pod) and `JupyterHub.cleanup_servers` is False
(z2jh's setting), so `LocalHub.restart()` leaves the proxy, its routes and
every running server up. The chart values reach the hub as z2jh's Secret/hub
does: a private values.yaml the hub-side Python and the reconciler read.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coursehub.chart import hubtraits
from coursehub.chart.checks import effective
from coursehub.chart.upstream import UpstreamData
from coursehub.courses import Course, dotted, get, walk
from coursehub.errors import CoursehubError, Problem
from coursehub.files import replace_file
from coursehub.groups import hubpython
from coursehub.paths import HUB_CONFIG_FILE, ROOT
from coursehub.singleuser import POD_HOME, POD_TMP

CHP = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
LOCAL_DOMAIN = "hub.localhost"  # the hub's host when the course runs servers on subdomains

# What the local hub does with each key a course (or coursehub's chart defaults) can set.
APPLIED = {
    "custom": "read by the hub-side Python through get_config()",
    "hub.config": "applied section by section, as z2jh does",
    "hub.loadRoles": "appended to JupyterHub.load_roles, as z2jh does",
    "hub.extraConfig": "executed after the hub-side Python, in key order, as z2jh does",
    "singleuser.cmd": "Spawner.cmd, run from the course image's environment",
    "singleuser.defaultUrl": "Spawner.default_url",
    "singleuser.extraEnv": "the servers' environment",
    "singleuser.extraFiles": "the IPython config file goes to each server's IPYTHONDIR",
}
KUBERNETES_ONLY = (
    "hub.extraVolumes",
    "hub.extraVolumeMounts",
    "hub.annotations",
    "hub.image",  # coursehub's hub image: here its package (hub/) runs from this checkout
    "hub.db",
    "hub.resources",
    "hub.nodeSelector",
    "hub.tolerations",
    "hub.service",
    "hub.networkPolicy",
    "hub.livenessProbe",
    "hub.readinessProbe",
    "hub.existingSecret",
    "hub.labels",
    "hub.pdb",
    "hub.containerSecurityContext",
    "hub.podSecurityContext",
    "hub.serviceAccount",
    "hub.deploymentStrategy",
    "singleuser.image",
    "singleuser.storage",
    "singleuser.cpu",
    "singleuser.memory",
    "singleuser.nodeSelector",
    "singleuser.networkPolicy",
    "singleuser.extraLabels",
    "singleuser.extraAnnotations",
    "singleuser.uid",
    "singleuser.fsGid",
    "singleuser.serviceAccountName",
    "singleuser.extraTolerations",
    "singleuser.startTimeout",
    "singleuser.cloudMetadata",
    "singleuser.networkTools",
    "cull",
    "proxy",
    "ingress",
    "httpRoute",
    "scheduling",
    "prePuller",
    "rbac",
    "imagePullSecrets",
    "imagePullSecret",
    "debug",
    "fullnameOverride",
    "nameOverride",
    "global",
)
COURSEHUB_KUBERNETES_ONLY = ("archive", "componentNetworkPolicies", "deploy", "global")
# hub.config sections for classes the local hub replaces (its own spawner and log-in).
REPLACED_BASES = ("Spawner", "Authenticator")
SUBDOMAIN_HOST = ("jupyterhub", "hub", "config", "JupyterHub", "subdomain_host")


@dataclass
class KeyReport:
    applied: list[str] = field(default_factory=list)
    kubernetes_only: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


def classify(course: Course) -> KeyReport:
    """Sort every key the course and coursehub's defaults set; unknown keys stop the demo."""
    report = KeyReport()
    unknown: list[Problem] = []
    seen: set[str] = set()
    for top in course.values():  # coursehub's own chart keys: its archive Jobs run only in the cluster
        if top in COURSEHUB_KUBERNETES_ONLY:
            _add(report.kubernetes_only, top, seen)
        elif top != "jupyterhub":
            unknown.append(
                Problem(
                    course.origin((top,)),
                    top,
                    "the local hub does not know what this means on this machine",
                    "remove it, or teach scripts/coursehub/hub/local.py how to apply it",
                )
            )
    values = course.values().get("jupyterhub") or {}
    classes = hubtraits.configurable_classes()
    for key, _ in walk(values):
        name = dotted(key)
        if key[:2] == ("hub", "config") and len(key) > 2:
            section = key[2]
            bases = {b.__name__ for cls in classes.get(section, ()) for b in cls.__mro__}
            if section not in REPLACED_BASES and bases & set(REPLACED_BASES):
                _add(report.replaced, f"hub.config.{section}", seen)
                continue
            if section == "JupyterHub" and len(key) > 3 and key[3] in ("authenticator_class", "spawner_class"):
                _add(report.replaced, name, seen)
                continue
        prefix = next((p for p in APPLIED if name == p or name.startswith(p + ".")), None)
        if prefix:
            _add(report.applied, prefix, seen)
            continue
        prefix = next((p for p in KUBERNETES_ONLY if name == p or name.startswith(p + ".")), None)
        if prefix:
            _add(report.kubernetes_only, prefix, seen)
            continue
        unknown.append(
            Problem(
                course.origin(("jupyterhub", *key)),
                f"jupyterhub.{name}",
                "the local hub does not know what this means on this machine",
                "remove it, or teach scripts/coursehub/hub/local.py how to apply it",
            )
        )
    if unknown:
        raise CoursehubError(unknown)
    return report


def _add(items: list[str], item: str, seen: set[str]) -> None:
    if item not in seen:
        seen.add(item)
        items.append(item)


_GIVEN_PORTS: set[int] = set()


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out to outgoing connections and to bind(0)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free loopback port, below the kernel's ephemeral range and not given out before in this process.

    A port from bind(0) is in the ephemeral range, where every outgoing connection of every process takes its
    local port: in the seconds before the hub binds it, another test worker's request could take it ("Address
    already in use" at start-up, seen in a parallel `make test`). Picked at random (not `random`, which a test
    plugin may seed alike in every worker), so parallel workers rarely try the same port.
    """
    low, high = 20000, _ephemeral_floor() - 1
    for _ in range(500 if high - low > 1000 else 0):
        port = low + secrets.randbelow(high - low + 1)
        if port in _GIVEN_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN_PORTS.add(port)
        return port
    with socket.socket() as s:  # no room below the ephemeral range on this machine
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Plan:
    """Everything the hub process needs, written to plan.json beside its config file."""

    values: dict[str, Any]  # the jupyterhub block, as z2jh's get_config() would see it
    workdir: str
    singleuser_bin: str
    password: str
    instructor: str
    port: int = field(default_factory=free_port)
    hub_port: int = field(default_factory=free_port)
    proxy_api_port: int = field(default_factory=free_port)
    proxy_token: str = field(default_factory=lambda: secrets.token_hex(32))
    replaced_sections: list[str] = field(default_factory=list)  # hub.config sections for the cluster's log-in/spawner
    admin_token: str | None = None  # a service token for tests
    # The course sets JupyterHub.subdomain_host: each server gets its own origin, here <user>.hub.localhost
    # (browsers resolve *.localhost to loopback; the cluster's DNS name cannot be served here).
    subdomains: bool = False
    # The hub process's Python: the hub image's environment (image/hub/<tag>/local-requirements.txt, built with
    # uv, coursehub-hub installed in it as the image installs it), so what runs here is what the hub pod runs.
    hub_python: str = field(default_factory=lambda: hub_environment_python())
    # Set in the hub process's environment, as hub.extraEnv does in the pod (make bench: $COURSEHUB_HUB_WRAPPERS_OFF)
    hub_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Where the hub answers on loopback (its API and, without subdomains, everything)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_url(self) -> str:
        """The hub's own origin, as a browser opens it."""
        return f"http://{LOCAL_DOMAIN}:{self.port}" if self.subdomains else self.url


HUB_PYTHON_ENV = "COURSEHUB_HUB_PYTHON"  # another JupyterHub's Python for the hub (`make test-jupyterhub-6`)


def hub_environment_python() -> str:
    """The Python of the hub image's local environment for the tag the chart deploys (built once, under a lock),
    unless $COURSEHUB_HUB_PYTHON names another (the hub side's tests on the newest JupyterHub 6.x)."""
    from coursehub.images import hub

    pointed = os.environ.get(HUB_PYTHON_ENV)  # absolute: the hub starts in its own working folder
    if pointed and not os.access(pointed, os.X_OK):
        raise CoursehubError(
            Problem(
                f"${HUB_PYTHON_ENV}",
                "",
                f"is {pointed}, which is no Python this machine can run",
                "point it at an environment's bin/python (make test-jupyterhub-6 builds one), or unset it",
            )
        )
    return str(Path(pointed).absolute()) if pointed else str(hub.ensure_hub_env(hub.deployed()) / "bin" / "python")


def make_plan(
    course: Course,
    upstream: UpstreamData,
    workdir: Path,
    singleuser_env: Path,
    report: KeyReport,
    admin_token: str | None = None,
) -> Plan:
    return Plan(
        values=effective(course, upstream)["jupyterhub"],
        replaced_sections=[r.removeprefix("hub.config.") for r in report.replaced if r.count(".") == 2],
        workdir=str(workdir),
        singleuser_bin=str(singleuser_env / "bin"),
        password=secrets.token_urlsafe(9),
        instructor="instructor",
        admin_token=admin_token,
        subdomains=bool(get(course.values(), SUBDOMAIN_HOST)),
    )


def server_dirs(workdir: Path, username: str) -> tuple[Path, Path]:
    """(stand-in for the pod's /tmp, home directory) of one user's local server."""
    return workdir / "servers" / username / "tmp", workdir / "home" / username


# --- inside the hub process ------------------------------------------------------------------


def configure(c: Any, plan_file: str) -> None:
    """Called by the generated jupyterhub_config.py: the course's hub config, made local."""
    plan = Plan(**json.loads(Path(plan_file).read_text()))
    values, workdir = plan.values, Path(plan.workdir)

    def get_config(key: str, default: Any = None) -> Any:  # z2jh's, over the same values
        return get(values, tuple(key.split(".")), default)

    # 0. what z2jh's jupyterhub_config.py (4.4.0) gives every hub, so that a local hub behaves as a deployed one
    # under load: curl as the hub's HTTP client (the hub image has pycurl, and so has the local hub's environment),
    # the proxy's routes checked every 60 s, no wait before the progress page, and the hub.* limits
    from tornado.httpclient import AsyncHTTPClient

    AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")
    c.JupyterHub.last_activity_interval = 60
    c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
    for trait, key in (
        ("concurrent_spawn_limit", "hub.concurrentSpawnLimit"),
        ("active_server_limit", "hub.activeServerLimit"),
        ("consecutive_failure_limit", "hub.consecutiveFailureLimit"),
    ):
        if get_config(key) is not None:
            c.JupyterHub[trait] = get_config(key)

    # 1. as z2jh's jupyterhub_config.py: load_roles from hub.loadRoles, then hub.config as is
    c.JupyterHub.load_roles = [{"name": name, **role} for name, role in (get_config("hub.loadRoles") or {}).items()]
    if "cmd" in (values.get("singleuser") or {}):  # as z2jh: before hub.config, for the hub-side Python to build on
        c.Spawner.cmd = get_config("singleuser.cmd")
    for section, traits in (get_config("hub.config") or {}).items():
        if section in plan.replaced_sections:
            continue  # the course's log-in (OAuth) and spawner settings: replaced below
        c[section].update(
            {
                k: v
                for k, v in (traits or {}).items()
                if not (section == "JupyterHub" and k in ("authenticator_class", "spawner_class"))
            }
        )

    # the cluster's log-in is replaced here, where z2jh sets it: before the hub-side Python, which wraps the
    # authenticator class in its log-in refusal of the shared accounts
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = plan.password
    c.Authenticator.allow_all = True
    c.Authenticator.admin_users = {plan.instructor}

    # 2. coursehub's hub side, as the hub image runs it from jupyterhub_config.d (it reads the database
    # the hub will use and points its service at the hub's port, so those are set first)
    c.JupyterHub.db_url = f"sqlite:///{workdir / 'jupyterhub.sqlite'}"
    c.JupyterHub.hub_port = plan.hub_port
    exec(compile(HUB_CONFIG_FILE.read_text(), str(HUB_CONFIG_FILE), "exec"), {"c": c, "get_config": get_config})

    # 3. hub.extraConfig snippets in key order
    for _, snippet in sorted((get_config("hub.extraConfig") or {}).items()):
        exec(compile(snippet, "hub.extraConfig", "exec"), {"c": c, "get_config": get_config})

    # 4. what replaces Kubernetes here
    c.JupyterHub.ip = "127.0.0.1"
    c.JupyterHub.port = plan.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = plan.hub_port
    c.JupyterHub.cookie_secret_file = str(workdir / "cookie_secret")
    if plan.subdomains:  # the course's https://<host> is the cluster's: here the same, on loopback
        c.JupyterHub.subdomain_host = plan.public_url
    c.JupyterHub.cookie_host_prefix_enabled = False  # __Host- cookies need https; the local hub is http
    # as z2jh: servers and the proxy outlive the hub, which restarts at every deploy
    c.JupyterHub.cleanup_servers = False
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{plan.proxy_api_port}"
    c.ConfigurableHTTPProxy.auth_token = plan.proxy_token
    c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
    c.SimpleLocalProcessSpawner.home_dir_template = str(workdir / "home" / "{username}")
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    # the command as the hub-side Python left it (the rtc setting changes it), its program from the image's env
    cmd = list((c.Spawner.cmd if "cmd" in c.Spawner else None) or ["jupyterhub-singleuser"])
    c.Spawner.cmd = [str(Path(plan.singleuser_bin) / cmd[0]), *cmd[1:]]
    if get_config("singleuser.defaultUrl"):
        c.Spawner.default_url = get_config("singleuser.defaultUrl")
    env = {k: v for k, v in (get_config("singleuser.extraEnv") or {}).items() if isinstance(v, str)}
    env["PATH"] = server_path(plan.singleuser_bin, workdir)
    c.Spawner.environment = env
    ipython = [
        f.get("data")
        for f in (get_config("singleuser.extraFiles") or {}).values()
        if f.get("mountPath", "").startswith("/etc/ipython/")
    ]

    # The course folder (custom.coursehub.courseFolder): in the cluster a folder of the homes claim mounted
    # read-only (writable for staff); here the same folder under the local homes, linked into each home at
    # the mount path. Every local server runs as this machine's one user: only the cluster enforces read-only.
    folder = hubpython.load().course_folder(get_config("custom.coursehub") or {})

    def map_pod_paths(spawner: Any) -> None:
        tmp, home = server_dirs(workdir, spawner.user.name)
        tmp.mkdir(parents=True, exist_ok=True)
        if folder is not None:
            shared = workdir / "home" / folder["subPath"]
            shared.mkdir(parents=True, exist_ok=True)
            mount = Path(folder["mountPath"])
            link = home / (mount.relative_to(POD_HOME) if mount.is_relative_to(POD_HOME) else mount.name)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(shared, target_is_directory=True)
        spawner.cmd = [map_path(arg, tmp, home) for arg in spawner.cmd]
        spawner.environment = {**spawner.environment, "TMPDIR": str(tmp), "IPYTHONDIR": str(tmp / "ipython")}
        if os.geteuid() == 0:  # pods never run as root; here (CI) we may: allow it without touching the command
            config_dir = tmp / "jupyter-config"
            config_dir.mkdir(exist_ok=True)
            (config_dir / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"allow_root": True}}))
            spawner.environment["JUPYTER_CONFIG_DIR"] = str(config_dir)
        for data in ipython:
            profile = tmp / "ipython" / "profile_default"
            profile.mkdir(parents=True, exist_ok=True)
            (profile / "ipython_config.json").write_text(json.dumps(data))

    c.Spawner.pre_spawn_hook = map_pod_paths

    if plan.admin_token:
        c.JupyterHub.services = [
            *c.JupyterHub.services,
            {"name": "coursehub-test-admin", "api_token": plan.admin_token},
        ]
        c.JupyterHub.load_roles = [
            *c.JupyterHub.load_roles,
            {
                "name": "coursehub-test-admin",
                "services": ["coursehub-test-admin"],
                "scopes": [
                    "admin:users",
                    "admin:groups",
                    "admin:servers",
                    "access:servers",
                    "list:users",
                    "read:roles",
                    "tokens",
                    "shares",
                ],
            },
        ]


# Node.js's programs. The images have none (python:3.11-slim with pip packages); JupyterLab runs
# `node yarn.js config` (0.3 to 0.5 s of CPU) at every server start and page load wherever it finds one.
NODE_PROGRAMS = frozenset({"node", "nodejs", "npm", "npx", "corepack", "yarn", "yarnpkg"})


def server_path(env_bin: str, workdir: Path) -> str:
    """The PATH a local server (and the image probe) runs with: its image environment's bin folder, then this
    machine's PATH as `image_search_path` leaves it (links made under `workdir`)."""
    return os.pathsep.join(filter(None, [env_bin, image_search_path(os.environ.get("PATH", ""), workdir)]))


def image_search_path(search_path: str, workdir: Path) -> str:
    """The servers' PATH after their image's environment: this machine's, with Node.js left out as the image
    leaves it out. A folder that holds Node.js is replaced by a folder of links (in the hub's workdir, made once,
    named by the folder's real path) to everything else in it."""
    folders, seen = [], set()
    for folder in search_path.split(os.pathsep):
        if not os.path.isabs(folder):
            continue  # "", "." or a relative entry: in a server it would search the student's home; images have none
        real = os.path.realpath(folder)
        if real in seen or not os.path.isdir(real):
            continue  # /bin after /usr/bin where one links to the other, or nothing there: nothing found either way
        seen.add(real)
        if not any(os.path.lexists(os.path.join(folder, name)) for name in NODE_PROGRAMS):
            folders.append(folder)
            continue
        try:
            names = os.listdir(folder)
        except PermissionError:  # searchable, not listable: nothing to link from, so it stays as it is
            folders.append(folder)
            continue
        shadow = workdir / "image-path" / hashlib.sha256(real.encode()).hexdigest()[:16]
        if not shadow.is_dir():
            building = shadow.with_name(f".{shadow.name}.{os.getpid()}")
            shutil.rmtree(building, ignore_errors=True)
            try:
                building.mkdir(parents=True)
                for name in names:
                    if name not in NODE_PROGRAMS:
                        (building / name).symlink_to(os.path.join(real, name))
                building.rename(shadow)
            except OSError:
                if not shadow.is_dir():  # not made meanwhile by another start on this workdir: a real failure
                    raise
            finally:
                shutil.rmtree(building, ignore_errors=True)
        folders.append(str(shadow))
    return os.pathsep.join(folders)


def map_path(arg: str, tmp: Path, home: Path) -> str:
    """Map the pod's /tmp and home directory in one command-line argument to the local server's folders."""
    name, sep, value = arg.partition("=")
    if not sep:
        return arg
    for pod, local in ((POD_TMP, tmp), (POD_HOME, home)):
        if value == pod or value.startswith(pod + "/"):
            return f"{name}={local}{value[len(pod) :]}"
    return arg


# --- outside: starting and stopping it -------------------------------------------------------

_CONFIG = """\
# Generated by coursehub's localhub: the course's hub config, made local.
import sys
sys.path.insert(0, {scripts!r})
from coursehub.hub.local import configure
configure(c, {plan!r})
"""


class LocalHub:
    """Start with `with LocalHub(plan) as hub:`; everything it started is stopped on exit, whatever happened."""

    def __init__(self, plan: Plan, config: Path | None = None) -> None:
        self.plan = plan
        self.workdir = Path(plan.workdir)
        self.log = self.workdir / "hub.log"
        self.config = config  # another config file instead of the course's (the benchmark's baseline)
        self.process: subprocess.Popen[bytes] | None = None
        self.proxy: subprocess.Popen[bytes] | None = None
        self.started_at = 0  # where in the log the last start began

    def __enter__(self) -> LocalHub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60, reconciled: bool = True) -> float:
        """Start the proxy (unless it runs) and the hub, and wait until the hub's API answers and (`reconciled`)
        its reconciler has brought it to the declaration; returns the seconds that took. A hub that does not come
        up is stopped with everything it started."""
        if not CHP.exists():
            raise CoursehubError(Problem(str(CHP), "", "configurable-http-proxy is not installed", "run `make tools`"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        _stop_on_sigterm()
        try:
            self._start_proxy()
            return self._start_hub(timeout, reconciled)
        except BaseException:
            self.stop()
            raise

    def restart(self, timeout: float = 60, reconciled: bool = True) -> float:
        """Stop the hub alone and start it again, as a deploy does: proxy, routes and servers stay up."""
        self._stop_hub()
        try:
            return self._start_hub(timeout, reconciled)
        except BaseException:
            self.stop()
            raise

    def _start_proxy(self) -> None:
        if self.proxy is not None and self.proxy.poll() is None:
            return
        with open(self.workdir / "proxy.log", "ab") as log:
            self.proxy = subprocess.Popen(
                [
                    str(CHP),
                    "--ip=127.0.0.1",
                    f"--port={self.plan.port}",
                    "--api-ip=127.0.0.1",
                    f"--api-port={self.plan.proxy_api_port}",
                    f"--error-target=http://127.0.0.1:{self.plan.hub_port}/hub/error",
                    # as z2jh's proxy Deployment does when hub.config.JupyterHub.subdomain_host is set
                    *(["--host-routing"] if self.plan.subdomains else []),
                ],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": self.plan.proxy_token},
            )

    def _start_hub(self, timeout: float, reconciled: bool = True) -> float:
        config = self.config
        env = {**os.environ, **self.plan.hub_env}
        if config is None:
            replace_file(self.workdir / "plan.json", json.dumps(asdict(self.plan)), 0o600)  # it holds membership
            config = self.workdir / "jupyterhub_config.py"
            config.write_text(_CONFIG.format(scripts=str(ROOT / "scripts"), plan=str(self.workdir / "plan.json")))
            # the chart values as z2jh's Secret/hub gives them to the hub: private, read by coursehub's hub Python
            values = self.workdir / "secret" / "values.yaml"
            values.parent.mkdir(mode=0o700, exist_ok=True)
            replace_file(values, json.dumps(self.plan.values), 0o600)  # JSON is YAML
            env |= {"COURSEHUB_VALUES_FILES": str(values)}
        offset = self.log.stat().st_size if self.log.exists() else 0
        started = time.perf_counter()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.plan.hub_python, "-m", "jupyterhub", "-f", str(config)],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise CoursehubError(
                    Problem(str(self.log), "", "the hub exited at start-up", "read the log named here")
                )
            try:
                urllib.request.urlopen(f"{self.plan.url}/hub/api/", timeout=2).read()
            except OSError:
                time.sleep(0.05)
                continue
            if self.config is None and reconciled:  # the course hub's reconciler has run
                self.wait_for_log(hubpython.reconciler().IN_STEP, offset, deadline - time.perf_counter())
            self.started_at = offset
            return time.perf_counter() - started
        raise CoursehubError(
            Problem(str(self.log), "", f"the hub did not answer within {timeout:.0f} s", "read the log named here")
        )

    def wait_for_log(self, text: str, after: int = 0, timeout: float = 60) -> None:
        """Wait until the hub's log has `text` past byte `after` (e.g. the reconciler's first run)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log, "rb") as log:
                log.seek(after)
                if text.encode() in log.read():
                    return
            if self.process is None or self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise CoursehubError(Problem(str(self.log), "", f"the hub never logged {text!r}", "read the log named here"))

    def _stop_hub(self) -> None:
        """SIGTERM to the hub alone (its servers run in sessions of their own), SIGKILL after 30 s."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def stop(self) -> None:
        """Stop the hub, the proxy, and every server and service of ours still running."""
        self._stop_hub()
        if self.proxy and self.proxy.poll() is None:
            self.proxy.terminate()
            try:
                self.proxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
                self.proxy.wait()
        # A SIGKILLed process is still listed until the kernel has torn it down, and a server being
        # spawned as the hub stopped may start after the first pass: kill until none is left.
        deadline = time.monotonic() + 15
        while (pids := leftovers(self.workdir)) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)


def _stop_on_sigterm() -> None:
    """Make SIGTERM (`timeout`, `kill`, a CI runner giving up) end this process as Ctrl-C does, through its
    `finally` and `with` blocks, so that a hub it started is stopped with everything the hub started. Python's
    default is to die on the spot and leave them running. Only where no one has set a handler already."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def processes() -> Iterator[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every running process; an ended one (a zombie: state Z, only its
    parent's wait missing) is not running."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            state, parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if state != "Z":
            yield int(proc.name), int(parent), cmdline


def leftovers(workdir: Path) -> list[int]:
    """Processes still running from this hub: its servers and services (their command lines name workdir)."""
    return [pid for pid, _, cmdline in processes() if str(workdir) in cmdline and pid != os.getpid()]


def describe_mapping(plan: Plan) -> list[str]:
    workdir = Path(plan.workdir)
    tmp, home = server_dirs(workdir, "<user>")
    mapped = [f"{POD_TMP} -> {tmp}", f"{POD_HOME} -> {home}", f"jupyterhub-singleuser -> {plan.singleuser_bin}/"]
    if os.geteuid() == 0:
        mapped.append("running as root: ServerApp.allow_root through each server's JUPYTER_CONFIG_DIR")
    return mapped


def plain_hub_config(plan: Plan) -> Path:
    """An empty JupyterHub config on the plan's ports and its own proxy: the benchmark's baseline."""
    workdir = Path(plan.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "jupyterhub_config.py"
    config.write_text(
        f"c.JupyterHub.ip = '127.0.0.1'\nc.JupyterHub.port = {plan.port}\nc.JupyterHub.hub_port = {plan.hub_port}\n"
        "c.ConfigurableHTTPProxy.should_start = False\n"
        f"c.ConfigurableHTTPProxy.auth_token = {plan.proxy_token!r}\n"
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{plan.proxy_api_port}'\n"
        f"c.JupyterHub.db_url = 'sqlite:///{workdir / 'jupyterhub.sqlite'}'\n"
        f"c.JupyterHub.cookie_secret_file = {str(workdir / 'cookie_secret')!r}\n"
    )
    return config
