"""The pinned Helm binaries `make tools` installs, and the value layering every command shares."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from coursehub import tools
from coursehub.courses import coalesce, merge


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
