"""Checks on the configuration the hub ends up with: z2jh's jupyterhub_config.py run on the render
(`pods.hub_config`), so that everything a course can write has had its say: hub.config, coursehub's
hub-side file, a file a course adds to jupyterhub_config.d through hub.extraFiles, and hub.extraConfig
in any spelling.
"""

from __future__ import annotations

from typing import Any

from coursehub.courses import Course, get
from coursehub.errors import Problem
from coursehub.groups import hubpython
from coursehub.paths import display

DECLARATION = ("jupyterhub", "custom", "coursehub")
WHERE = "hub.extraConfig, hub.extraFiles"


def login_refusal(course: Course, config: Any) -> list[Problem]:
    """The final authenticator class is coursehub's refusing subclass for every declared account, and no
    `JupyterHub.api_tokens` entry is a token as a name nobody may log in as."""
    module = hubpython.load()
    declaration = get(course.values(), DECLARATION) or {}
    accounts = module.parse(declaration)
    wanted = frozenset({module.HEALTH_USER, *(a.account for a in accounts)})
    prefix = module.account_prefix(declaration)
    section = config.JupyterHub
    chosen = section["authenticator_class"] if "authenticator_class" in section else None
    refuses = getattr(chosen, module.REFUSES, None) if isinstance(chosen, type) else None
    found: list[Problem] = []
    if refuses is None or not wanted <= refuses[0] or refuses[1] != prefix:
        name = chosen.__name__ if isinstance(chosen, type) else repr(chosen)
        found.append(
            Problem(
                display(course.course_file),
                WHERE,
                f"leave the hub with the authenticator {name}, not coursehub's refusing subclass of the course's "
                "authenticator: a log-in as a shared account would be accepted",
                "set the authenticator in hub.config.JupyterHub.authenticator_class only, and remove what sets "
                "JupyterHub.authenticator_class after coursehub's hub-side file",
            )
        )
    tokens = section["api_tokens"] if "api_tokens" in section else {}
    for user in sorted({str(u) for u in dict(tokens).values()}):
        if module.is_refused(user.lower(), wanted, prefix):
            found.append(
                Problem(
                    display(course.course_file),
                    "hub.config.JupyterHub.api_tokens",
                    f"gives a token as {user}, a name nobody may act as (a shared account or coursehub-health)",
                    "remove that entry: group members reach an account through their own log-in",
                )
            )
    return found
