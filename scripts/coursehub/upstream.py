"""The upstream z2jh chart: where it is, and its default values and values schema.

The chart is never part of this repository. It is found, in order, at
$UPSTREAM_CHART (a .tgz or an unpacked folder, e.g. an air-gapped mirror) or in
chart/charts/ after `make deps`. Its defaults and schema are read from it; when
there is no chart, checks that need only those two read the copies of z2jh
4.4.0's data in ../shared/upstream/ instead.
"""

from __future__ import annotations

import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coursehub.errors import CoursehubError, Problem
from coursehub.paths import CHART, shared

NAME = "jupyterhub"
VERSION = "4.4.0"
HOW_TO_GET = (
    "run `make deps` (needs access to https://hub.jupyter.org/helm-chart/) "
    f"or set UPSTREAM_CHART=<path to {NAME}-{VERSION}.tgz or its unpacked folder>"
)


@dataclass(frozen=True)
class UpstreamData:
    defaults: dict[str, Any]
    schema: dict[str, Any]
    source: str


def find_chart(chart_dir: Path = CHART) -> Path | None:
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
    charts = chart_dir / "charts"
    found = sorted(charts.glob(f"{NAME}-*.tgz")) + ([charts / NAME] if (charts / NAME / "Chart.yaml").is_file() else [])
    return found[-1] if found else None


def require_chart(chart_dir: Path = CHART) -> Path:
    chart = find_chart(chart_dir)
    if chart is None:
        raise CoursehubError(
            Problem("chart/charts/", "", f"the upstream {NAME} {VERSION} chart is missing", HOW_TO_GET)
        )
    return chart


def load_data(chart: Path | None) -> UpstreamData:
    """z2jh's default values and values schema, from the chart or else from shared/upstream."""
    if chart is None:
        folder = shared() / "upstream"
        values = folder / f"z2jh-{VERSION}-values.yaml"
        schema = folder / f"z2jh-{VERSION}-values.schema.yaml"
        if not values.is_file():
            raise CoursehubError(Problem(str(values), "", "z2jh's default values are not there", HOW_TO_GET))
        return UpstreamData(
            yaml.safe_load(values.read_text()), yaml.safe_load(schema.read_text()), f"z2jh {VERSION} data in {folder}"
        )
    return UpstreamData(
        yaml.safe_load(_read(chart, "values.yaml")),
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
