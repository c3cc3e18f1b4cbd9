"""Where things are: the repository's own folders."""

from __future__ import annotations

import os
from pathlib import Path


def _root() -> Path:
    """The coursehub checkout the command works on: the one this package lives in (an editable install, or
    `python -m coursehub` from scripts/), else $COURSEHUB_ROOT, else the current folder."""
    here = Path(__file__).resolve().parents[2]
    if (here / "chart" / "Chart.yaml").is_file():
        return here
    return Path(os.environ.get("COURSEHUB_ROOT") or Path.cwd()).resolve()


ROOT = _root()
CHART = ROOT / "chart"
VALUES = (ROOT / "values").resolve()  # the repository's course values


def values_dir() -> Path:
    """The values folder commands read: $COURSEHUB_VALUES (another folder, e.g. a test's copy), else values/."""
    pointed = os.environ.get("COURSEHUB_VALUES")
    return Path(pointed).resolve() if pointed else VALUES


HUB_PACKAGE = ROOT / "hub"  # the coursehub_hub package, which the hub image installs
HUB_CONFIG_FILE = HUB_PACKAGE / "jupyterhub_config.d" / "coursehub.py"  # the image's jupyterhub_config.d file
TOOLS = ROOT / ".tools"


def display(path: Path) -> str:
    """A path as a user would type it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
