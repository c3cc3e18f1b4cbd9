"""The configurable classes a z2jh hub has, for checking `hub.config` section and trait names.

z2jh copies `hub.config.<Class>.<trait>` into the hub's traitlets config as it
is, and neither JupyterHub nor z2jh's schema checks the names: a misspelled
trait is silently ignored (the seed's `Authenticator.managed_groups`) and an
unknown class stops the hub. The classes are the real ones from the packages
the z2jh 4.4.0 hub image ships (JupyterHub, KubeSpawner, OAuthenticator).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from coursehub.images.probe import configurable_classes as _imported_classes
from coursehub.images.probe import import_packages, name_problem

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
def configurable_classes() -> dict[str, tuple[Any, ...]]:
    """Every Configurable subclass in the hub's packages, by class name."""
    import_packages(_PACKAGES, _SKIP)
    return {name: tuple(classes) for name, classes in _imported_classes().items()}


def check(section: str, trait: str | None = None) -> str | None:
    """None when `section` (and `trait`) exist; otherwise what is wrong, with the likely name."""
    problem = name_problem(configurable_classes(), section, trait, "the hub")
    if problem is None:
        return None
    consequence = (
        "the hub would silently ignore it"
        if trait and section in configurable_classes()
        else "the hub stops at start-up"
    )
    return f"{problem}: {consequence}"
