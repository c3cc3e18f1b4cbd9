"""coursehub's hub side: shared accounts with impersonation, as a package the coursehub hub image installs.

The hub's config file (``hub/jupyterhub_config.d/coursehub.py``, in the image's ``jupyterhub_config.d``) is
two lines: it calls ``configure`` with z2jh's ``c`` and ``get_config``. Everything else is importable without
side effects, and the tooling imports the same modules:

- ``config``: the declaration's rules, the roles, the log-in refusal, the reconciler service (settings only);
- ``patches``: wrappers of JupyterHub's own code, each gated on the versions it is proven on;
- ``homepage``: the hub's home page with each user's group servers (a template and its data);
- ``reconcile``: the reconciler (the in-hub service, and ``make sync-groups`` from outside);
- ``names``: helpers on lists of names.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["configure"]


def configure(c: Any, get_config: Callable[..., Any]) -> None:
    """What the hub's config file runs: inside a hub process, the patches (``patches.install_patches``) and the
    collector's pause (``patches.collect_after_load``), unless ``$COURSEHUB_HUB_WRAPPERS_OFF`` names them; then
    the course's shared accounts into ``c`` (``config.apply``), with the names the hub's database holds, and the
    home page that shows each user their group servers (``homepage.apply``)."""
    from coursehub_hub import config, homepage, patches

    access = str(get_config("custom.coursehub.access", "roles") or "roles")
    if patches.in_hub() and patches.install_patches(access):
        if "collect_after_load" not in patches.wrappers_off(os.environ):
            patches.collect_after_load()
    declaration = get_config("custom.coursehub", {})
    names = config.read_hub_names(str(config._current(c.JupyterHub, "db_url", "sqlite:///jupyterhub.sqlite")))
    homepage.apply(c, declaration, config.apply(c, declaration, names), names)
