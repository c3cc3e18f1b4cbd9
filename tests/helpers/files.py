"""Files a test writes: a values file edited, a stand-in program, a checkout's chart/ as after `make deps`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from coursehub.paths import CHART


def edit(path: Path, change: dict[str, Any] | None = None, text: str | None = None) -> None:
    """Deep-set dotted keys in a YAML values file (value None deletes), or replace its text."""
    if text is not None:
        path.write_text(text)
        return
    data = yaml.safe_load(path.read_text()) or {}
    for dotted, value in (change or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def stand_in_program(path: Path, body: str = "") -> Path:
    """A test double for a program: an executable shell script at `path` running `body` (nothing by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)
    return path


def checkout_with_chart(folder: Path, upstream_chart: Path) -> Path:
    """A checkout's chart/ whose chart/charts/ holds the upstream chart, as after `make deps`: where a printed
    deploy command is run later."""
    shutil.copytree(CHART, folder / "chart", ignore=shutil.ignore_patterns("charts", "__pycache__"))
    (folder / "chart" / "charts").mkdir()
    if upstream_chart.is_file():
        shutil.copyfile(upstream_chart, folder / "chart" / "charts" / upstream_chart.name)
    else:
        (folder / "chart" / "charts" / "jupyterhub").symlink_to(upstream_chart, target_is_directory=True)
    return folder
