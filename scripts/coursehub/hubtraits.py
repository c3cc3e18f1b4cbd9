"""The configurable classes a z2jh hub has, for checking `hub.config` section and trait names.

z2jh copies `hub.config.<Class>.<trait>` into the hub's traitlets config as it
is, and neither JupyterHub nor z2jh's schema checks the names: a misspelled
trait is silently ignored (the seed's `Authenticator.managed_groups`) and an
unknown class stops the hub. The classes are the real ones from the packages
the z2jh 4.4.0 hub image ships (JupyterHub, KubeSpawner, OAuthenticator).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from functools import cache

from traitlets.config import Configurable

_PACKAGES = ("jupyterhub", "kubespawner", "oauthenticator")
# Modules that import optional extras or start things on import.
_SKIP = (
    "jupyterhub.tests",
    "jupyterhub.alembic",
    "jupyterhub.singleuser",
    "kubespawner.tests",
    "oauthenticator.tests",
    "jupyterhub.services.auth_tests",
    "jupyterhub.__main__",
)


@cache
def configurable_classes() -> dict[str, tuple[type[Configurable], ...]]:
    """Every Configurable subclass in the hub's packages, by class name."""
    for package in _PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if info.name.startswith(_SKIP):
                continue
            try:
                importlib.import_module(info.name)
            except Exception:  # optional dependency missing: that module's classes are not in the hub either
                continue
    found: dict[str, list[type[Configurable]]] = {}
    todo: list[type[Configurable]] = [Configurable]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.__name__, []).append(cls)
        todo.extend(cls.__subclasses__())
    return {name: tuple(classes) for name, classes in found.items()}


def check(section: str, trait: str | None = None) -> str | None:
    """None when `section` (and `trait`) exist; otherwise what is wrong, with the likely name."""
    classes = configurable_classes()
    if section not in classes:
        close = difflib.get_close_matches(section, classes, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"no configurable class {section} in the hub (the hub stops at start-up){hint}"
    if trait is None:
        return None
    traits = {name for cls in classes[section] for name in cls.class_traits(config=True)}
    if trait in traits:
        return None
    close = difflib.get_close_matches(trait, traits, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{section} has no trait {trait} (the hub would silently ignore it){hint}"
