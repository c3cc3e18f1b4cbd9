"""The pods students actually get: built by the real KubeSpawner from the hub's real configuration.

KubeSpawner makes a user's pod at run time, so a render never shows it. This module
builds it here the way the hub would, without a cluster:

1. the hub container's configuration files are laid out from the rendered objects
   (every ConfigMap and Secret volume the hub Deployment mounts, at its mount path,
   under a private temporary root), with the container's environment (its `env`, the
   Services' `<NAME>_SERVICE_*` variables Kubernetes injects). Secret/hub holds the
   course's decrypted private layer, so that root is sops.private_folder(): 0700,
   removed also when a signal ends the command, swept by the next after a SIGKILL;
2. z2jh's own jupyterhub_config.py, from the chart in use (never a copy of it), runs
   there as the hub runs it, and with it every file of jupyterhub_config.d
   (coursehub's hub image's own, hub/jupyterhub_config.d/coursehub.py, among them). The only change is the root: the
   `/usr/local/etc/jupyterhub` it names is the temporary root's;
3. KubeSpawner 7 (the hub image's) is made from that configuration for a user, applies
   JupyterHub's `Spawner.group_overrides` for the user's groups, and returns
   `get_pod_manifest()`, passed through `modify_pod_hook` when one is set.

The user is `PodUser`, a test double for JupyterHub's User named as such: KubeSpawner
reads only the name, id, groups and URL of it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import os
import shutil
import ssl
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursehub.chart import kube, rendered
from coursehub.courses import get
from coursehub.errors import Problem
from coursehub.groups import hubpython
from coursehub.ops import sops
from coursehub.paths import HUB_CONFIG_FILE
from coursehub.singleuser import POD_HOME

Obj = dict[str, Any]
# Where z2jh's hub image keeps its configuration (z2jh's templates/hub/deployment.yaml mounts it there).
HUB_ETC = "/usr/local/etc/jupyterhub"
HUB_WORKDIR = "/srv/jupyterhub"


@dataclass(frozen=True)
class Group:
    name: str


@dataclass
class PodUser:
    """Test double for JupyterHub's User (no hub database here): what KubeSpawner reads of a user."""

    name: str
    groups: list[Group] = field(default_factory=list)
    id: int = 1

    @property
    def url(self) -> str:
        return f"/user/{self.name}/"


def _find(objs: list[Obj], kind: str, name: str) -> Obj | None:
    return next((o for o in objs if o.get("kind") == kind and get(o, ("metadata", "name")) == name), None)


def _data(obj: Obj) -> dict[str, bytes]:
    """A ConfigMap's or Secret's keys and their bytes."""
    out = {k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()}
    for key, value in (obj.get("data") or {}).items():
        out[key] = base64.b64decode(value) if obj["kind"] == "Secret" else str(value).encode()
    return out


def hub_container(objs: list[Obj]) -> tuple[Obj, Obj]:
    """(the hub Deployment's pod spec, its `hub` container)."""
    deployment = _find(objs, "Deployment", "hub")
    if deployment is None:
        raise LookupError("the render has no Deployment/hub (z2jh's hub)")
    spec = deployment["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "hub")
    return spec, container


def lay_out_hub_files(objs: list[Obj], root: Path) -> None:
    """Write every ConfigMap and Secret volume the hub container mounts under ``root``, at its mount path."""
    spec, container = hub_container(objs)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        target = root / mount["mountPath"].lstrip("/")
        if "subPath" not in mount and target.is_dir():
            shutil.rmtree(target)  # any volume mounted on a folder hides what the image has there
        if "configMap" in volume:
            source = _find(objs, "ConfigMap", volume["configMap"]["name"])
            items = volume["configMap"].get("items")
        elif "secret" in volume:
            source = _find(objs, "Secret", volume["secret"]["secretName"])
            items = volume["secret"].get("items")
        else:
            continue  # the database volume and the like: nothing the configuration reads
        if source is None:
            continue  # an existing Secret the render does not hold (hub.existingSecret)
        files = _data(source)
        if items:
            files = {item["path"]: files[item["key"]] for item in items}
        if "subPath" in mount:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[mount["subPath"]])
            continue
        for path, content in files.items():
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_bytes(content)


def hub_environment(objs: list[Obj], namespace: str) -> dict[str, str]:
    """The hub container's environment: its own `env`, and the variables Kubernetes adds for each Service."""
    env: dict[str, str] = {}
    for service in (o for o in objs if o.get("kind") == "Service"):
        prefix = get(service, ("metadata", "name")).upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = f"{get(service, ('metadata', 'name'))}.{namespace}.svc"
        env[f"{prefix}_SERVICE_PORT"] = str(service["spec"]["ports"][0]["port"])
    _, container = hub_container(objs)
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        elif ref := get(var, ("valueFrom", "secretKeyRef")):
            secret = _find(objs, "Secret", ref["name"])
            if secret is not None:
                env[var["name"]] = _data(secret)[ref["key"]].decode()
        elif get(var, ("valueFrom", "fieldRef", "fieldPath")) == "metadata.namespace":
            env[var["name"]] = namespace
    return env


@contextlib.contextmanager
def _hub_process_state(env: dict[str, str], workdir: Path) -> Iterator[None]:
    """The environment, working directory and module state z2jh's configuration changes, restored after."""
    from tornado.httpclient import AsyncHTTPClient

    saved_env, saved_cwd, saved_path = dict(os.environ), os.getcwd(), list(sys.path)
    saved_client = AsyncHTTPClient._save_configuration()
    saved_z2jh = sys.modules.pop("z2jh", None)
    os.environ.clear()
    os.environ.update({k: v for k, v in saved_env.items() if k in ("PATH", "HOME", "LANG")} | env)
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
        AsyncHTTPClient._restore_configuration(saved_client)
        sys.modules.pop("z2jh", None)
        if saved_z2jh is not None:
            sys.modules["z2jh"] = saved_z2jh


def _rooted(source: str, root: Path) -> str:
    return source.replace(HUB_ETC, str(root) + HUB_ETC)


def hub_config(objs: list[Obj], namespace: str = "default") -> Any:
    """The traitlets Config the hub ends up with: z2jh's jupyterhub_config.py run on the rendered files."""
    from traitlets.config.loader import PyFileConfigLoader

    with sops.private_folder() as root:  # Secret/hub's values: the decrypted private layer
        etc = root / HUB_ETC.lstrip("/")
        # what coursehub's hub image has in the container (image/hub/): its jupyterhub_config.d file, which imports
        # the coursehub_hub package (installed here as in the image). First, so that whatever the course mounts
        # over it or over its folder wins here as it would in the pod, and the checks see that hub.
        (etc / "jupyterhub_config.d").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HUB_CONFIG_FILE, etc / "jupyterhub_config.d" / HUB_CONFIG_FILE.name)
        lay_out_hub_files(objs, root)
        workdir = root / HUB_WORKDIR.lstrip("/")
        workdir.mkdir(parents=True)
        env = hub_environment(objs, namespace) | {
            # coursehub's hub-side Python reads the values files through these (its defaults are the paths above).
            "COURSEHUB_VALUES_FILES": f"{etc}/secret/values.yaml:{etc}/existing-secret/values.yaml",
        }
        for name in ("z2jh.py", "jupyterhub_config.py"):  # z2jh's own files, at the temporary root
            (etc / name).write_text(_rooted((etc / name).read_text(), root))
        with _hub_process_state(env, workdir), contextlib.redirect_stdout(io.StringIO()):
            # What `jupyterhub --config` does with the file: traitlets' loader.
            c = PyFileConfigLoader("jupyterhub_config.py", path=str(etc)).load_config()
        return c


class _Hub:
    """Test double for JupyterHub's Hub object: the URLs a spawner passes to the server."""

    def __init__(self, config: Any) -> None:
        self.base_url = "/hub/"
        self.public_host = ""
        self.url = "http://hub:8081/hub/"
        self.api_url = "http://hub:8081/hub/api"
        self.config = config


# A stand-in for a cluster (there is none here): KubeSpawner loads a client configuration when it is made,
# and building a manifest never calls the API. Port 9 (discard) on loopback, so nothing could be reached.
_NO_CLUSTER = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


@contextlib.contextmanager
def _no_cluster() -> Iterator[None]:
    # kubernetes_asyncio reads $KUBECONFIG when imported: point its default location at the stand-in instead.
    from kubernetes_asyncio.config import kube_config

    saved = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig") as f:
        f.write(_NO_CLUSTER)
        f.flush()
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = f.name
        try:
            yield
        finally:
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved


async def _build(config: Any, user: PodUser) -> Obj:
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    with _no_cluster():
        spawner = KubeSpawner(config=config, user=user, hub=_Hub(config), _mock=True)
    spawner.api_token = "pod-manifest-placeholder-token"  # a placeholder: the manifest carries it in env
    await spawner.apply_group_overrides()
    if spawner.pre_spawn_hook:
        await _maybe(spawner.pre_spawn_hook(spawner))
    pod = await spawner.get_pod_manifest()
    if spawner.modify_pod_hook:
        pod = await _maybe(spawner.modify_pod_hook(spawner, pod))
    await spawner.api.api_client.close()  # KubeSpawner's client: made with the spawner, never used here
    async with ApiClient() as client:
        manifest: Obj = client.sanitize_for_serialization(pod)
    manifest.setdefault("apiVersion", "v1")
    manifest.setdefault("kind", "Pod")
    return manifest


async def _maybe(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) or asyncio.isfuture(value) else value


def pod_manifest(config: Any, user: PodUser) -> Obj:
    with _one_tls_context():
        return asyncio.run(_build(config, user))


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class _SharedContextSSL:
    """The ssl module as kubernetes_asyncio's REST client sees it while pods are built: a client without a CA file
    of its own gets the one context _tls_context() made; everything else is the ssl module's. (A client whose
    configuration has a client certificate or verify_ssl off would change that shared context; the stand-in
    kubeconfig these pods are built with has neither.)"""

    def __getattr__(self, name: str) -> Any:
        return getattr(ssl, name)

    @staticmethod
    def create_default_context(
        purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH, *, cafile: str | None = None, **kwargs: Any
    ) -> ssl.SSLContext:
        if purpose is ssl.Purpose.SERVER_AUTH and cafile is None and not kwargs:
            return _tls_context()
        return ssl.create_default_context(purpose, cafile=cafile, **kwargs)


@contextlib.contextmanager
def _one_tls_context() -> Iterator[None]:
    """Each kubernetes_asyncio client (KubeSpawner's own, the serializer's) makes a TLS context, reading the
    machine's whole CA bundle: 50 ms each here, 88% of the time building a pod took. No pod built here reaches a
    cluster, so every client gets one context, made once per process."""
    from kubernetes_asyncio.client import rest

    if isinstance(rest.ssl, _SharedContextSSL):  # already inside one
        yield
        return
    real = rest.ssl
    rest.ssl = _SharedContextSSL()  # type: ignore[assignment]
    try:
        yield
    finally:
        rest.ssl = real


def course_users(objs: list[Obj]) -> dict[str, PodUser]:
    """Who to build pods for: a student of the first declared group, that group's shared account, a staff member."""
    values = rendered.hub_values(objs)
    if values is None:
        raise LookupError("the render has no Secret/hub values.yaml")
    declaration = get(values, ("custom", "coursehub")) or {}
    shared = declaration.get("sharedAccounts") or []
    users = {"student": PodUser("pod-check-student", [Group(shared[0]["group"])] if shared else [])}
    if shared:
        # In the groups the reconciler keeps the accounts in (the hub-side rule): group_overrides match them.
        groups = [Group(g) for g in hubpython.load().account_groups(declaration)]
        users["shared account"] = PodUser(shared[0]["account"], groups, id=2)
    staff = get(values, ("custom", "coursehub", "staff")) or []
    if staff:
        users["staff"] = PodUser(staff[0], [], id=3)
    return users


def course_pods(objs: list[Obj], namespace: str = "default") -> dict[str, Obj]:
    """The pod manifest of each of `course_users` for the render `objs` (with the real chart)."""
    config = hub_config(objs, namespace)
    return {who: pod_manifest(config, user) for who, user in course_users(objs).items()}


def home_subpaths(pod: Obj) -> list[str]:
    """The subPaths of the homes claim this pod mounts at the home directory (normally one: the user's own)."""
    spec = pod["spec"]
    claims = {v["name"] for v in spec.get("volumes", []) if "persistentVolumeClaim" in v}
    container = next(c for c in spec["containers"] if c["name"] == "notebook")
    return [
        m.get("subPath", "")
        for m in container.get("volumeMounts", [])
        if m["name"] in claims and m.get("mountPath") == POD_HOME
    ]


def problems(
    pods: dict[str, Obj], users: dict[str, PodUser], versions: tuple[str, ...] = kube.SUPPORTED
) -> list[Problem]:
    """Strict Kubernetes validation of each pod, and each pod's home is its own user's folder and nobody else's."""
    found: list[Problem] = []
    for who, pod in pods.items():
        where = f"{who}'s pod (built by KubeSpawner from the render)"
        for version in versions:
            found += [
                Problem(where, f"Kubernetes {version}", m, "correct the singleuser values that produce this field")
                for m in kube.problems(pod, version)
            ]
        named = {v["name"] for v in pod["spec"].get("volumes", [])}
        for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in named:
                    found.append(
                        Problem(
                            where,
                            "singleuser.storage",
                            f"mounts volume {mount['name']!r} at {mount['mountPath']}, which the pod does not have",
                            "declare the volume (singleuser.storage.extraVolumes), or use singleuser.storage.type "
                            "static for courseFolder (it is a folder of the homes claim)",
                        )
                    )
        homes = home_subpaths(pod)
        if homes != [users[who].name]:
            found.append(
                Problem(
                    where,
                    "singleuser.storage",
                    f"mounts {homes or 'no folder'} of the homes claim at {POD_HOME}, not {users[who].name!r} alone",
                    "keep singleuser.storage.static.subPath at '{username}' so that each server gets only its own home",
                )
            )
    return found
