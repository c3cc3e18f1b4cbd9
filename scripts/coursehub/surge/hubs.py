"""The two hubs a surge runs against, on one machine, with the same spawner, proxy and servers.

- coursehub's: the course's hub as ``make demo`` runs it (``coursehub.hub.local``), with a generated roster of
  groups of students declared in its private layer and its reconciler brought in step before the surge;
- a plain JupyterHub configured as the collaboration-accounts tutorial (and the datahub page after it) does it:
  the groups and one role per group in its config file, nothing of coursehub's (no reconciler, no log-in refusal,
  no wrappers, no home page, JupyterHub's default visitor cache).

Both run their servers with JupyterHub's ``SimpleLocalProcessSpawner`` from the course image's environment, behind
their own configurable-http-proxy on 127.0.0.1, and both get the hub settings z2jh's own ``jupyterhub_config.py``
sets before ``hub.config`` (the local hub does not run that file): the proxy's routes checked every 60 s, 64 spawns
at once at most, no wait before the progress page.

Servers are either the light server (``lightserver.py``: JupyterLab's HTTP API behind JupyterHub's own OAuth and
token checks) or the course's real command (JupyterLab from the course image).
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursehub.courses import Course
from coursehub.hub.local import LocalHub, Plan, classify, make_plan, server_path

LIGHT_SERVER = Path(__file__).resolve().with_name("lightserver.py")
SERVERS = ("light", "lab")  # the light HubOAuthenticated server, or the course's own JupyterLab
CACHE_FLAG = "--HubAuth.cache_max_age="
# A server's command names its own folder under the hub's workdir (the pod's /tmp, mapped per server): so that
# LocalHub.stop finds every server it started by its command line, the light one too.
TMP_ARG = "--surge-tmp=/tmp"
# What z2jh's jupyterhub_config.py (4.4.0) sets for every hub, before hub.config, as every local hub of coursehub's
# gets it (coursehub.hub.local.configure): the plain hub gets the same. Above all curl as the hub's HTTP client:
# JupyterHub's own (tornado's, 10 connections, the queue counted in each request's timeout) collapsed a surge here
# (the proxy's route requests timed out in the queue, and JupyterHub stopped 96 of 171 starts "to avoid
# inconsistent state"). pycurl is in the hub image and in the local hub's environment.
Z2JH_HUB = {
    "last_activity_interval": 60,  # "Check that the proxy has routes appropriately setup"
    "concurrent_spawn_limit": 64,
    "tornado_settings": {"slow_spawn_timeout": 0},
}
HTTP_CLIENT = """
from tornado.httpclient import AsyncHTTPClient
AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")
"""
ADMIN_SCOPES = ["admin:users", "admin:groups", "admin:servers", "access:servers", "list:users", "read:roles", "shares"]


@dataclass(frozen=True)
class Roster:
    """Groups of students, each group with its shared account (collab-<group>)."""

    members: dict[str, list[str]]

    @classmethod
    def generated(cls, groups: int, per_group: int) -> Roster:
        return cls({f"lab-{g:03d}": [f"s-{g * per_group + i:04d}" for i in range(per_group)] for g in range(groups)})

    @property
    def accounts(self) -> dict[str, str]:
        return {group: f"collab-{group}" for group in self.members}

    @property
    def students(self) -> list[str]:
        return [s for members in self.members.values() for s in members]

    def group_of(self, student: str) -> str:
        return next(g for g, members in self.members.items() if student in members)

    def arrivals(self, seed: int = 159) -> list[dict[str, str]]:
        """Every student once, in a shuffled order of arrival (the same for both hubs of a run)."""
        order = self.students
        random.Random(seed).shuffle(order)
        accounts = self.accounts
        return [{"name": s, "group": self.group_of(s), "account": accounts[self.group_of(s)]} for s in order]

    def moved(self, student: str, to: str) -> Roster:
        members = {g: [m for m in ms if m != student] for g, ms in self.members.items()}
        members[to] = [*members[to], student]
        return Roster(members)

    def with_groups(self, more: Roster) -> Roster:
        return Roster({**self.members, **more.members})

    def declaration(self, access: str) -> dict[str, Any]:
        accounts = [{"group": g, "account": a} for g, a in self.accounts.items()]
        return {"access": access, "sharedAccounts": accounts, "members": self.members}


def server_command(course: Course, servers: str, cache: bool | int) -> list[str]:
    """The servers' command: the course's own (``lab``) or the light server's with the course command's visitor
    cache (``light``); ``cache`` False leaves the cache to JupyterHub's default (the plain hub's), a number of
    seconds sets that cache instead of the course's (to measure another)."""
    cmd = list(course.values()["jupyterhub"]["singleuser"]["cmd"])
    if cache is not True:
        cmd = [a for a in cmd if not a.startswith(CACHE_FLAG)]
        cmd += [f"{CACHE_FLAG}{cache}"] if cache is not False else []
    if servers == "lab":
        return cmd
    return ["python", str(LIGHT_SERVER), TMP_ARG, *(a for a in cmd if a.startswith("--HubAuth."))]


def surge_course(
    course: Course, folder: Path, roster: Roster, access: str, servers: str, cache: bool | int = True
) -> Course:
    """The course with this roster in its private layer, its servers on the hub's origin and the surge's server
    command (z2jh's hub settings: every local hub has them)."""
    from coursehub.bench import _with_declaration

    return _with_declaration(
        course, folder, roster.declaration(access), {"cmd": server_command(course, servers, cache)}
    )


@dataclass
class Hubs:
    """coursehub's hub and the plain baseline for one roster (neither started)."""

    course: Course  # with the roster
    coursehub: LocalHub
    plain: LocalHub
    roster: Roster
    servers: str
    access: str
    extra: dict[str, Any] = field(default_factory=dict)


def build(
    course: Course, root: Path, roster: Roster, servers: str, access: str = "roles", cache: bool | int = True
) -> Hubs:
    from coursehub.chart.upstream import load_data
    from coursehub.images.build import deployed, ensure_env

    upstream = load_data()
    env = ensure_env(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    surged = surge_course(course, root, roster, access, servers, cache)
    report = classify(surged)
    ours = make_plan(surged, upstream, root / "coursehub", env, report, admin_token=secrets.token_hex(16))
    theirs = make_plan(surged, upstream, root / "plain", env, report, admin_token=secrets.token_hex(16))
    theirs.password = ours.password
    config = plain_config(theirs, roster, server_command(course, servers, cache=False))
    return Hubs(surged, LocalHub(ours), LocalHub(theirs, config=config), roster, servers, access)


def redeployed(hubs: Hubs, roster: Roster, root: Path) -> dict[str, Any]:
    """The chart values of a deploy of this roster (hub.plan.values for the coursehub hub's next restart)."""
    from coursehub.chart.upstream import load_data
    from coursehub.images.build import deployed, ensure_env

    course = hubs.course
    surged = surge_course(_committed(course), root, roster, hubs.access, hubs.servers)
    env = ensure_env(deployed(course.name, course.values()["jupyterhub"]["singleuser"]["image"]["tag"]))
    return make_plan(surged, load_data(), root / "redeploy", env, classify(surged)).values


def _committed(course: Course) -> Course:
    return Course(
        course.name, course.course_file, tuple(x for x in course.layers if not x.private), course.chart_defaults
    )


_PLAIN = """\
# The surge's baseline: a plain JupyterHub with the collaboration-accounts tutorial's groups and roles in its
# config, nothing of coursehub's. Generated by coursehub.surge.hubs; the same spawner, proxy and servers as the
# course hub beside it.
import json, os
from pathlib import Path

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.JupyterHub.db_url = "sqlite:///{workdir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
c.JupyterHub.cookie_host_prefix_enabled = False
c.JupyterHub.cleanup_servers = False
for trait, value in {z2jh!r}.items():
    setattr(c.JupyterHub, trait, value)
{http_client}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allow_all = True

c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = "{workdir}/home/{{username}}"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.cmd = {cmd!r}
c.Spawner.environment = {{"PATH": {path!r}}}


def pod_paths(spawner):
    # each server's own /tmp, as a pod has (the course command keeps its SQLite files there)
    tmp = Path("{workdir}") / "servers" / spawner.user.name / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    spawner.cmd = [a.replace("=/tmp", "=" + str(tmp), 1) if "=/tmp" in a else a for a in spawner.cmd]
    spawner.environment = {{**spawner.environment, "TMPDIR": str(tmp), "IPYTHONDIR": str(tmp / "ipython")}}
    if os.geteuid() == 0:  # as the course hub does where this runs as root
        (tmp / "jupyter-config").mkdir(exist_ok=True)
        (tmp / "jupyter-config" / "jupyter_server_config.json").write_text(
            json.dumps({{"ServerApp": {{"allow_root": True}}}})
        )
        spawner.environment["JUPYTER_CONFIG_DIR"] = str(tmp / "jupyter-config")


c.Spawner.pre_spawn_hook = pod_paths

# the tutorial: the groups, and per group a role to use, start and stop its account's server
c.JupyterHub.load_groups = {groups!r}
c.JupyterHub.load_roles = {roles!r}
c.JupyterHub.services = [{{"name": "surge-admin", "api_token": {admin_token!r}}}]
"""


def plain_config(plan: Plan, roster: Roster, cmd: list[str]) -> Path:
    """A plain JupyterHub's config file for the roster, on the plan's ports, with its own proxy."""
    workdir = Path(plan.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    accounts = roster.accounts
    groups: dict[str, Any] = {g: {"users": list(m)} for g, m in roster.members.items()}
    groups["collaborative"] = {"users": sorted(accounts.values())}  # the tutorial's group of the accounts
    roles = [
        {
            "name": f"collab-access-{group}",
            "scopes": [
                f"access:servers!user={account}",
                f"admin:servers!user={account}",
                "admin-ui",
                f"list:users!user={account}",
            ],
            "groups": [group],
        }
        for group, account in accounts.items()
    ]
    roles.append({"name": "surge-admin", "scopes": ADMIN_SCOPES, "services": ["surge-admin"]})
    program = str(Path(plan.singleuser_bin) / cmd[0])
    config = workdir / "jupyterhub_config.py"
    config.write_text(
        _PLAIN.format(
            port=plan.port,
            hub_port=plan.hub_port,
            proxy_token=plan.proxy_token,
            proxy_api_port=plan.proxy_api_port,
            workdir=workdir,
            z2jh=Z2JH_HUB,
            http_client=HTTP_CLIENT,
            password=plan.password,
            cmd=[program, *cmd[1:]],
            path=server_path(plan.singleuser_bin, workdir),
            groups=groups,
            roles=roles,
            admin_token=plan.admin_token,
        )
    )
    config.chmod(0o600)
    return config
