"""Where things are: the repository's own folders."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "chart"
# COURSEHUB_VALUES points the tools at another values folder (the tests use it for bad input).
VALUES = Path(os.environ.get("COURSEHUB_VALUES") or ROOT / "values").resolve()
HUB_PYTHON = CHART / "files" / "hub" / "coursehub_config.py"
TOOLS = ROOT / ".tools"


def display(path: Path) -> str:
    """A path as a user would type it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
