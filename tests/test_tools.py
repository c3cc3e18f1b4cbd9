"""The pinned Helm binaries `make tools` installs, and the value layering every command shares."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from coursehub import tools
from coursehub.courses import coalesce, merge
from coursehub.paths import ROOT


@pytest.mark.parametrize("major", sorted(tools.HELM_PINS))
def test_each_pinned_helm_is_installed_and_is_the_pinned_build(major: int) -> None:
    pin = tools.HELM_PINS[major]
    path = tools.helm_path(major)
    version = subprocess.run([str(path), "version", "--template", "{{.Version}}"], capture_output=True, text=True)
    assert version.stdout.strip() == pin.version
    if path == pin.installed:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == pin.binary_sha256


def test_layers_merge_as_helm_merges_them() -> None:
    common = {"a": {"x": 1, "list": [1, 2]}, "keep": True}
    course = {"a": {"y": 2, "list": [3]}, "keep": None}
    merged = merge(common, course)
    assert merged == {"a": {"x": 1, "y": 2, "list": [3]}, "keep": None}  # lists replace, nulls kept for now
    defaults = {"a": {"z": 0}, "keep": "default", "other": 1}
    assert coalesce(merged, defaults) == {"a": {"x": 1, "y": 2, "z": 0, "list": [3]}, "other": 1}  # null deletes


def _pins(path: Path) -> dict[str, list[str]]:
    """A hash-pinned requirements file as {requirement: its hashes}."""
    pins: dict[str, list[str]] = {}
    current = ""
    for line in path.read_text().splitlines():
        text = line.strip().rstrip("\\").strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("--hash="):
            pins[current].append(text.removeprefix("--hash="))
        else:
            current = text
            pins[current] = []
    return pins


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-checkov.txt", "requirements-uv.txt"])
def test_the_tooling_requirements_are_pinned_hashed_and_name_no_index(name: str) -> None:
    """They install on any machine (make lock leaves out this machine's index and wheel folders) and only as
    locked (pip and uv both run with --require-hashes)."""
    pins = _pins(ROOT / name)
    assert pins
    for requirement, hashes in pins.items():
        assert not requirement.startswith("-"), f"{name}: {requirement}"  # --index-url, --find-links, -e ...
        assert "==" in requirement and hashes, f"{name}: {requirement} is not pinned with hashes"


def test_the_uv_that_installs_the_venvs_is_the_uv_the_venv_pins() -> None:
    """make venv installs uv from requirements-uv.txt and then requirements.txt over it: one version, one set of
    hashes, or the second install would swap the uv that is running it."""
    bootstrap = _pins(ROOT / "requirements-uv.txt")
    assert list(bootstrap) == [r for r in _pins(ROOT / "requirements.txt") if r.startswith("uv==")]
    assert bootstrap == {r: h for r, h in _pins(ROOT / "requirements.txt").items() if r in bootstrap}


def test_the_files_the_suite_starts_first_still_exist() -> None:
    """helpers.suite's LONGEST_FILES orders the run (conftest's hook): a renamed file would drop out of it."""
    from helpers.suite import LONGEST_FILES

    for name in LONGEST_FILES:
        assert (ROOT / "tests" / name).is_file(), name


def test_the_tests_temporary_files_are_where_the_run_said(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    """helpers.suite.temp_root: in memory when the machine has room (hub databases commit without waiting on fsync),
    and the run's header says where; a test's tmp_path and what the processes it starts write follow it."""
    from helpers.suite import temp_root

    root, said = temp_root()
    # xdist gives each worker a --basetemp inside the run's; only one given on the command line wins over root
    argv = pytestconfig.workerinput["mainargv"] if hasattr(pytestconfig, "workerinput") else sys.argv
    if any(arg.startswith("--basetemp") for arg in argv):
        pytest.skip("--basetemp given: the run keeps its files there, not in temp_root()")
    if root is None:
        assert "on disk" in said and "slower, not wrong" in said, said
        return
    assert tmp_path.is_relative_to(root), (tmp_path, said)
    written = subprocess.run(
        [sys.executable, "-c", "import tempfile; print(tempfile.mkdtemp())"], capture_output=True, text=True
    )
    made = Path(written.stdout.strip())
    made.rmdir()
    assert made.is_relative_to(root), (made, said)


def test_the_venv_holds_compiled_bytecode() -> None:
    """make venv compiles at install (uv's --compile-bytecode): where PYTHONDONTWRITEBYTECODE is set no process
    writes .pyc files, and every hub and command would compile JupyterHub and the Kubernetes client again."""
    import importlib.util

    import jupyterhub.app
    import kubernetes.client

    for module in (jupyterhub.app, kubernetes.client):
        assert Path(importlib.util.cache_from_source(module.__file__)).is_file(), module.__name__


def test_the_venv_leaves_out_the_iri_checker_that_every_hub_and_worker_would_build_at_import() -> None:
    """rfc3987-syntax builds its Lark grammars when jsonschema imports it: 1.8 of the 3.2 s JupyterHub takes to
    import here (`make bench`). `make lock` leaves it and lark out of requirements.txt, and the venv installs
    exactly that file (--no-deps), so nothing puts them back."""
    pins = _pins(ROOT / "requirements.txt")
    assert not [pin for pin in pins if pin.startswith(("rfc3987-syntax==", "lark=="))]
    assert "jsonschema==" in "".join(pins) and "jupyter-events==" in "".join(pins)  # what would pull it in
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, jupyterhub.app; print(sorted({'lark', 'rfc3987_syntax'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout
