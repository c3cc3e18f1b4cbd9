"""Files coursehub replaces (private values, pass records, tools): whole or not at all, with their mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coursehub.files import replace_file


def test_a_replaced_file_has_the_new_content_and_its_mode_and_nothing_else_is_left(tmp_path: Path) -> None:
    target = tmp_path / "values.secret.yaml"
    target.write_text("old\n")
    replace_file(target, "members: {}\n", 0o600)
    assert target.read_text() == "members: {}\n"
    assert target.stat().st_mode & 0o777 == 0o600
    replace_file(target, b"\x00binary", 0o755)
    assert target.read_bytes() == b"\x00binary" and target.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_failed_replacement_leaves_the_old_file_and_no_partial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "values.secret.yaml"
    target.write_text("old\n")

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        replace_file(target, "new\n", 0o600)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
