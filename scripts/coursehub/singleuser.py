"""A user's server as its pod runs it, for every module that needs to know: its paths and its command's flags.

Standard library only: the image probe imports it inside a course image's environment too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

# z2jh's singleuser.storage.homeMountPath default, and the pod's own (not shared) /tmp.
POD_HOME = "/home/jovyan"
POD_TMP = "/tmp"

# The SQLite files a server writes, by the flag that places each. The home is on NFS, where SQLite's locks
# break: the course command keeps these in /tmp (or in memory). Notebook trust goes to :memory: as well.
STORE_FLAGS = {"SQLiteYStore.db_path": "the Y store", "BaseFileIdManager.db_path": "the file-ID database"}


def parse_flag(arg: Any) -> tuple[str, str] | None:
    """``--Class.trait=value`` as ``("Class.trait", "value")``; anything else (``--debug``, a path) as None."""
    text = str(arg)
    if not text.startswith("--") or "=" not in text:
        return None
    name, _, value = text[2:].partition("=")
    return name, value


def flags(cmd: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """Every ``--Class.trait=value`` of a command, in order."""
    for arg in cmd:
        parsed = parse_flag(arg)
        if parsed is not None:
            yield parsed
