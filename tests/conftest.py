"""pytest's hooks and the shared fixtures: real Helm (3 and 4), the real upstream z2jh chart, course values.

The helpers the tests share are in tests/helpers/ and imported by name from there (`from helpers.chart import
render_chart`); nothing imports from this file (tests/test_layout.py checks).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from coursehub import tools
from coursehub.chart.helm import Helm
from coursehub.chart.upstream import UpstreamData, load_data
from coursehub.paths import VALUES
from helpers.chart import pinned_helm, z2jh_chart
from helpers.suite import LONGEST_FILES, temp_root


def pytest_configure(config: pytest.Config) -> None:
    """Point TMPDIR (tmp_path, tempfile and every process the tests start) at temp_root() before any temporary
    folder exists; xdist's workers inherit it. An explicit --basetemp wins."""
    if config.option.basetemp or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    root, config.coursehub_temp_root = temp_root()  # type: ignore[attr-defined]
    if root is not None:
        # Open to traverse, as /tmp is: pytest's and tempfile's folders inside are private (0700) each, and a
        # test that runs a command as an unprivileged user gives that user a folder of its own in here.
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        os.environ["TMPDIR"] = str(root)
        tempfile.tempdir = None  # tempfile read TMPDIR once already; make it read it again


def pytest_report_header(config: pytest.Config) -> str | None:
    return getattr(config, "coursehub_temp_root", None)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tier first, then the longest files, then the live tier, each in the random order pytest-randomly
    gave it.

    `make test` passes --no-loadscope-reorder so that xdist keeps this order (by default it hands out the files
    with the most tests first, which put the 1,000-group course, two tests and two minutes, last). A stable sort
    keeps pytest's grouping of a parametrized fixture's tests and the random order within each tier.
    """

    def rank(item: pytest.Item) -> tuple[bool, int, bool]:
        longest = LONGEST_FILES.index(item.path.name) if item.path.name in LONGEST_FILES else len(LONGEST_FILES)
        return item.get_closest_marker("slow") is None, longest, item.get_closest_marker("live") is None

    items.sort(key=rank)


@pytest.fixture(scope="session", params=sorted(tools.HELM_PINS), ids=lambda m: f"helm{m}")
def helm(request: pytest.FixtureRequest) -> Helm:
    """Real Helm, every pinned major version (installed by `make tools`): for the tests about Helm's versions
    (the smoke test in test_chart.py; reading secrets from a pipe in test_sops.py)."""
    return pinned_helm(request.param)


@pytest.fixture(scope="session")
def newest_helm() -> Helm:
    """The newest pinned Helm, for tests about something other than Helm's versions."""
    return pinned_helm()


@pytest.fixture(scope="session")
def upstream_chart() -> Path:
    """The real z2jh chart ($UPSTREAM_CHART or chart/charts/; `make test` fetches it when neither is there)."""
    return z2jh_chart()


@pytest.fixture(scope="session")
def upstream(upstream_chart: Path) -> UpstreamData:
    """z2jh's default values and values schema, from that chart."""
    return load_data(upstream_chart)


@pytest.fixture
def values_dir(tmp_path: Path) -> Path:
    """A copy of values/ that a test may break (the real secrets file, if any, is left out)."""
    target = tmp_path / "values"
    shutil.copytree(VALUES, target, ignore=shutil.ignore_patterns("*.secret.yaml"))
    return target
