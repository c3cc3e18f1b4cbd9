"""A light single-user server for the surge: JupyterLab's HTTP API as the surge's students use it, and nothing
else, with every request checked the way a real server checks it.

Access is JupyterHub's own: every handler is a ``HubOAuthenticated`` handler (as in JupyterHub's whoami-oauth
example), so a browser logs in through the hub's OAuth, the server's cookie holds the OAuth token, each request
is checked against the hub's ``/hub/api/user`` for that token (cached ``HubAuth.cache_max_age`` seconds, as in
jupyterhub-singleuser) and allowed only with the access scopes the hub gave this server
(``$JUPYTERHUB_OAUTH_ACCESS_SCOPES``: coursehub's roles or group shares decide who has them). Requests that
change something need the XSRF token, as JupyterHub's own checks want. A server that is not a student's own asks
for the student's consent once, on the hub's side, as for a real one.

What it does not do: run kernels (a kernel is a record here: no process), terminals or websockets. Notebooks are
real files in the account's home, so "nothing lost" can be checked on disk after a run.

Run by the hub's spawner from the course image's environment, as ``python lightserver.py [--HubAuth.x=y ...]``:
it imports JupyterHub and tornado only (never coursehub), and takes the singleuser command's ``--HubAuth.*``
options (coursehub's ``--HubAuth.cache_max_age=10``); every other option of that command is ignored.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub import __version__ as jupyterhub_version
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import httpclient, ioloop, web
from traitlets.config import Config

NOTEBOOK_FORMAT = 4


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def cookie_secret(home: Path) -> bytes:
    """The server's cookie secret, kept across its restarts where jupyter_server keeps its own (the runtime folder
    in the home): a student's OAuth cookie stays readable after the account's server restarts, as with a real one."""
    path = home / ".local" / "share" / "jupyter" / "runtime" / "jupyter_cookie_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def hub_auth_config(argv: list[str]) -> Config:
    """The ``--HubAuth.<trait>=<value>`` and ``--HubOAuth.<trait>=<value>`` options of a singleuser command."""
    config = Config()
    for arg in argv:
        name, sep, value = arg.removeprefix("--").partition("=")
        section, _, trait = name.partition(".")
        if sep and section in ("HubAuth", "HubOAuth") and trait:
            try:
                config[section][trait] = json.loads(value)
            except ValueError:
                config[section][trait] = value
    return config


class Base(HubOAuthenticated, web.RequestHandler):
    """Every handler: the hub's OAuth, the hub's version header (the hub reads it at start), JSON."""

    def set_default_headers(self) -> None:
        self.set_header("X-JupyterHub-Version", jupyterhub_version)

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class Api(Base):
    """An API handler: 403 to a visitor the hub does not let in (jupyter_server's answer), never a redirect."""

    def prepare(self) -> None:
        if self.current_user is None:
            raise web.HTTPError(403)

    @property
    def root(self) -> Path:
        return Path(self.settings["root"])


class Lab(Base):
    """The page a browser opens: a log-in through the hub's OAuth when there is no cookie yet."""

    @web.authenticated
    def get(self) -> None:
        self.xsrf_token  # noqa: B018 (sets the _xsrf cookie, as JupyterLab's page does)
        self.finish(f"<!doctype html><title>JupyterLab</title><p>{self.current_user['name']}")


class Root(Base):
    def get(self) -> None:
        self.redirect(url_path_join(self.settings["prefix"], "lab"))


class Version(Base):
    """``/api``: unauthenticated, as jupyter_server's."""

    def get(self) -> None:
        self.write_json({"version": "light"})


class Status(Api):
    def get(self) -> None:
        self.write_json({"started": self.settings["started"], "last_activity": _now(), "kernels": 0})


class Me(Api):
    def get(self) -> None:
        user = self.current_user
        self.write_json({"identity": {"username": user["name"], "name": user["name"]}, "permissions": {}})


class KernelSpecs(Api):
    def get(self) -> None:
        spec = {"name": "python3", "spec": {"display_name": "Python 3", "language": "python"}, "resources": {}}
        self.write_json({"default": "python3", "kernelspecs": {"python3": spec}})


class Kernels(Api):
    def get(self, kernel_id: str = "") -> None:
        kernels = self.settings["kernels"]
        if not kernel_id:
            self.write_json(list(kernels.values()))
        elif kernel_id in kernels:
            self.write_json(kernels[kernel_id])
        else:
            raise web.HTTPError(404)

    def post(self, kernel_id: str = "") -> None:
        kernel = {"id": str(uuid.uuid4()), "name": "python3", "last_activity": _now(), "execution_state": "idle"}
        self.settings["kernels"][kernel["id"]] = kernel
        self.write_json(kernel, 201)

    def delete(self, kernel_id: str = "") -> None:
        if self.settings["kernels"].pop(kernel_id, None) is None:
            raise web.HTTPError(404)
        self.set_status(204)
        self.finish()


class Sessions(Api):
    def get(self) -> None:
        self.write_json(list(self.settings["sessions"].values()))

    def post(self) -> None:
        body = json.loads(self.request.body or b"{}")
        kernel = {"id": str(uuid.uuid4()), "name": "python3", "last_activity": _now(), "execution_state": "idle"}
        self.settings["kernels"][kernel["id"]] = kernel
        session = {"id": str(uuid.uuid4()), "path": body.get("path", ""), "type": "notebook", "kernel": kernel}
        self.settings["sessions"][session["id"]] = session
        self.write_json(session, 201)


class Terminals(Api):
    def get(self) -> None:
        self.write_json([])


class Contents(Api):
    """Files and folders under the home, as jupyter_server's contents API answers for them (the fields used)."""

    def _path(self, path: str) -> Path:
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise web.HTTPError(404)
        return target

    def _model(self, target: Path, content: bool) -> dict[str, Any]:
        relative = str(target.relative_to(self.root.resolve())) if target != self.root.resolve() else ""
        stat = target.stat()
        modified = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat().replace("+00:00", "Z")
        model: dict[str, Any] = {"name": target.name, "path": relative, "last_modified": modified, "writable": True}
        if target.is_dir():
            model |= {"type": "directory", "format": "json" if content else None, "mimetype": None}
            model["content"] = (
                [self._model(child, False) for child in sorted(target.iterdir()) if not child.name.startswith(".")]
                if content
                else None
            )
        elif target.suffix == ".ipynb":
            model |= {"type": "notebook", "format": "json" if content else None, "mimetype": None}
            model["content"] = json.loads(target.read_text()) if content else None
        else:
            model |= {"type": "file", "format": "text" if content else None, "mimetype": "text/plain"}
            model["content"] = target.read_text() if content else None
        model["size"] = stat.st_size
        return model

    def get(self, path: str = "") -> None:
        target = self._path(path)
        if not target.exists():
            raise web.HTTPError(404)
        self.write_json(self._model(target, self.get_argument("content", "1") != "0"))

    def put(self, path: str = "") -> None:
        target = self._path(path)
        body = json.loads(self.request.body or b"{}")
        existed = target.exists()
        if body.get("type") == "directory":
            target.mkdir(parents=True, exist_ok=True)
        else:
            content = body.get("content")
            text = json.dumps(content) if body.get("type") == "notebook" else str(content or "")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".~{target.name}")
            partial.write_text(text)
            partial.replace(target)  # a save is whole or not at all, as jupyter_server's atomic writing
        self.write_json(self._model(target, False), 200 if existed else 201)

    def delete(self, path: str = "") -> None:
        target = self._path(path)
        if not target.is_file():
            raise web.HTTPError(404)
        target.unlink()
        self.set_status(204)
        self.finish()


async def report_activity(auth: HubOAuth) -> None:
    """What jupyterhub-singleuser does every $JUPYTERHUB_ACTIVITY_INTERVAL seconds: tell the hub the server is in use."""
    url = os.environ.get("JUPYTERHUB_ACTIVITY_URL")
    if not url:
        return
    name = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
    body = json.dumps({"servers": {name: {"last_activity": _now()}}, "last_activity": _now()})
    request = httpclient.HTTPRequest(
        url, method="POST", body=body, headers={"Authorization": f"token {auth.api_token}"}, request_timeout=10
    )
    try:
        await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
    except Exception:  # the hub may be restarting: the next report tells it
        pass


def make_app(argv: list[str]) -> tuple[web.Application, str, int]:
    """The application and the address the hub asked the server to listen on ($JUPYTERHUB_SERVICE_URL)."""
    bind = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    auth = HubOAuth.instance(config=hub_auth_config(argv))  # the one every handler's hub_auth returns
    root = Path(os.environ.get("HOME") or os.getcwd())
    api = url_path_join(prefix, "api")
    app = web.Application(
        [
            (prefix.rstrip("/") + "/?", Root),
            (url_path_join(prefix, "lab"), Lab),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            (api + "/?", Version),
            (url_path_join(api, "status"), Status),
            (url_path_join(api, "me"), Me),
            (url_path_join(api, "kernelspecs"), KernelSpecs),
            (url_path_join(api, "kernels") + "/?", Kernels),
            (url_path_join(api, "kernels", "([^/]+)"), Kernels),
            (url_path_join(api, "sessions") + "/?", Sessions),
            (url_path_join(api, "terminals") + "/?", Terminals),
            (url_path_join(api, "contents") + "/?", Contents),
            (url_path_join(api, "contents", "(.+)"), Contents),
        ],
        cookie_secret=cookie_secret(root),
        login_url=auth.login_url,
        prefix=prefix,
        root=str(root),
        kernels={},
        sessions={},
        started=_now(),
    )
    return app, bind.hostname or "127.0.0.1", int(bind.port or 80)


def main(argv: list[str]) -> None:
    app, ip, port = make_app(argv)
    app.listen(port, ip)
    auth = HubOAuth.instance()
    loop = ioloop.IOLoop.current()
    loop.add_callback(report_activity, auth)
    interval = int(os.environ.get("JUPYTERHUB_ACTIVITY_INTERVAL") or 300)
    ioloop.PeriodicCallback(lambda: loop.add_callback(report_activity, auth), interval * 1000).start()
    loop.start()


if __name__ == "__main__":
    main(sys.argv[1:])
