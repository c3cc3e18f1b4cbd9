"""The upstream z2jh chart: where it is, how it is fetched, and its default values and values schema.

The chart is never part of this repository. It is found, in order, at
$UPSTREAM_CHART (a .tgz or an unpacked folder, e.g. an air-gapped mirror) or in
chart/charts/ after `make deps` (`helm dependency build`). Every command and
every test uses that one real chart: its defaults and schema are read from it,
and Helm renders with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from coursehub import fastyaml
from coursehub.errors import CoursehubError, Problem
from coursehub.paths import CHART, TOOLS

NAME = "jupyterhub"
VERSION = "4.4.0"
REPOSITORY = "https://hub.jupyter.org/helm-chart/"
HOW_TO_GET = (
    f"run `make deps` (needs access to {REPOSITORY}) "
    f"or set UPSTREAM_CHART=<path to {NAME}-{VERSION}.tgz or its unpacked folder>"
)
# Where `helm dependency build` puts the chart; a module global so that tests can point it elsewhere.
CHARTS_DIR = CHART / "charts"


@dataclass(frozen=True)
class UpstreamData:
    defaults: dict[str, Any]
    schema: dict[str, Any]
    source: str


def find_chart() -> Path | None:
    """The upstream chart to render with, or None when there is none."""
    pointed = os.environ.get("UPSTREAM_CHART")
    if pointed:
        path = Path(pointed).expanduser().resolve()
        if not (path.is_dir() and (path / "Chart.yaml").is_file()) and not (
            path.is_file() and path.name.endswith(".tgz")
        ):
            raise CoursehubError(
                Problem(
                    f"UPSTREAM_CHART={pointed}",
                    "",
                    "is neither a chart folder nor a .tgz",
                    f"point it at {NAME}-{VERSION}.tgz or the folder that holds its Chart.yaml",
                )
            )
        return path
    found = sorted(CHARTS_DIR.glob(f"{NAME}-*.tgz"))
    if (CHARTS_DIR / NAME / "Chart.yaml").is_file():
        found.append(CHARTS_DIR / NAME)
    return found[-1] if found else None


def require_chart() -> Path:
    chart = find_chart()
    if chart is None:
        raise CoursehubError(
            Problem("chart/charts/", "", f"the upstream {NAME} {VERSION} chart is missing", HOW_TO_GET)
        )
    return chart


def fetch(helm: Path) -> Path:
    """`helm dependency build` into chart/charts/, with Helm's state kept in .tools/ (needs the network)."""
    homes = {"HELM_CONFIG_HOME": "config", "HELM_CACHE_HOME": "cache", "HELM_DATA_HOME": "data"}
    env = {**os.environ, **{k: str(TOOLS / "helm-home" / d) for k, d in homes.items()}}
    for args in (["repo", "add", "--force-update", NAME, REPOSITORY], ["dependency", "build", str(CHART)]):
        try:
            result = subprocess.run([str(helm), *args], env=env, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            result = None
        if result is None or result.returncode != 0:
            raise CoursehubError(
                Problem(
                    "chart/charts/",
                    "",
                    f"the upstream {NAME} {VERSION} chart is not here and could not be fetched from {REPOSITORY}",
                    f"set UPSTREAM_CHART=<path to {NAME}-{VERSION}.tgz or its unpacked folder> (an offline copy)",
                )
            )
    return require_chart()


def ensure_chart(helm: Path) -> tuple[Path, bool]:
    """The upstream chart, fetched first when there is none; and whether it was fetched now."""
    chart = find_chart()
    return (chart, False) if chart is not None else (fetch(helm), True)


def load_data(chart: Path | None = None) -> UpstreamData:
    """z2jh's default values and values schema, read from the chart (the one in use when `chart` is None)."""
    return _load(chart or require_chart())


@cache
def _load(chart: Path) -> UpstreamData:
    return UpstreamData(
        fastyaml.load(_read(chart, "values.yaml")),
        json.loads(_read(chart, "values.schema.json")),
        f"upstream chart at {chart}",
    )


def _read(chart: Path, name: str) -> str:
    if chart.is_dir():
        return (chart / name).read_text()
    with tarfile.open(chart) as tar:
        member = tar.extractfile(f"{NAME}/{name}")
        if member is None:
            raise CoursehubError(Problem(str(chart), name, "is missing from the chart archive", HOW_TO_GET))
        return member.read().decode()
