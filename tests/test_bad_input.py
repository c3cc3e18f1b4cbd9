"""Bad input that used to pass `make validate` and break (or leak) later: each is one line naming
the file, the key and the fix, shows no secret and no member, and changes nothing."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from coursehub.chart import rendered
from coursehub.chart.checks import check_values, effective
from coursehub.chart.render import MARKER, check_out
from coursehub.chart.upstream import load_data
from coursehub.courses import MAX_DEPTH, load_course
from coursehub.errors import CoursehubError, Problem
from helpers.commands import coursehub
from helpers.files import edit

UPSTREAM = load_data(None)
EXAMPLE = "stat159.secret.example.yaml"


def problems_for(values_dir: Path) -> list[Problem]:
    return check_values(load_course("stat159", values_dir=values_dir), UPSTREAM)


def the_problem(values_dir: Path) -> Problem:
    found = problems_for(values_dir)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def load_error(values_dir: Path) -> str:
    with pytest.raises(CoursehubError) as caught:
        load_course("stat159", values_dir=values_dir)
    assert len(caught.value.problems) == 1
    return str(caught.value.problems[0])


@pytest.mark.parametrize("trait", ["client_id", "client_secret"])
def test_a_numeric_oauth_client_value_is_refused_without_showing_it(values_dir: Path, trait: str) -> None:
    edit(values_dir / EXAMPLE, {f"jupyterhub.hub.config.GenericOAuthenticator.{trait}": 987654321})
    p = the_problem(values_dir)
    assert p.file.endswith(EXAMPLE) and p.key == f"jupyterhub.hub.config.GenericOAuthenticator.{trait}"
    assert "is a number" in p.message and "unicode string" in p.message and "quotes" in p.fix
    assert "987654321" not in str(p)


def test_trait_values_are_checked_against_the_hubs_own_trait_types(values_dir: Path) -> None:
    edit(values_dir / "common.yaml", {"jupyterhub.hub.config.GenericOAuthenticator.allow_all": "yes"})
    p = the_problem(values_dir)
    assert p.file.endswith("common.yaml") and p.key.endswith("GenericOAuthenticator.allow_all")
    assert "is a string" in p.message and "boolean" in p.message


def test_a_schema_error_on_a_secret_does_not_show_it(values_dir: Path) -> None:
    edit(values_dir / EXAMPLE, {"jupyterhub.proxy.secretToken": 918273645})
    found = problems_for(values_dir)
    assert [p.key for p in found] == ["jupyterhub.proxy.secretToken"], "\n".join(map(str, found))
    assert found[0].file.endswith(EXAMPLE) and "the value (hidden)" in found[0].message
    assert "918273645" not in str(found[0])


def test_the_same_value_quoted_passes(values_dir: Path) -> None:
    edit(values_dir / EXAMPLE, {"jupyterhub.hub.config.GenericOAuthenticator.client_id": "987654321"})
    assert problems_for(values_dir) == []


@pytest.mark.parametrize(
    ("entry", "role"),
    [
        ({"mine": {"name": "coursehub-access-shared-1", "scopes": ["self"]}}, "mine"),
        ({"coursehub-reconciler": {"scopes": ["self"]}}, "coursehub-reconciler"),  # name from the key
    ],
)
def test_a_load_roles_entry_named_like_coursehubs_own_role_is_refused(
    values_dir: Path, entry: dict[str, Any], role: str
) -> None:
    edit(values_dir / "stat159.yaml", {"jupyterhub.hub.loadRoles": entry})
    p = the_problem(values_dir)
    assert p.file.endswith("stat159.yaml") and p.key == f"jupyterhub.hub.loadRoles.{role}"
    assert "coursehub creates" in p.message and "rename" in p.fix


def test_a_load_roles_entry_of_its_own_passes(values_dir: Path) -> None:
    edit(values_dir / "stat159.yaml", {"jupyterhub.hub.loadRoles": {"tas": {"scopes": ["admin-ui"], "users": ["ta"]}}})
    assert problems_for(values_dir) == []


def test_a_second_jupyterhub_block_is_refused_with_its_line(values_dir: Path) -> None:
    path = values_dir / "stat159.yaml"
    path.write_text(path.read_text() + "jupyterhub:\n  cull:\n    timeout: 60\n")
    lines = path.read_text().count("\n")
    message = load_error(values_dir)
    assert message.startswith(f"{path}: ") and f"line {lines - 2}" in message
    assert "'jupyterhub' appears twice" in message and "first on line" in message


def test_a_group_listed_twice_in_members_names_the_secrets_file(values_dir: Path) -> None:
    path = values_dir / EXAMPLE
    text = path.read_text()
    path.write_text(
        text.replace("shared-3: [example-student-6]", "shared-3: [example-student-6]\n        shared-3: []")
    )
    message = load_error(values_dir)
    assert message.startswith(f"{path}: ") and "'shared-3' appears twice" in message
    assert "example-student" not in message


def test_a_student_listed_twice_names_the_secrets_file_and_the_item(values_dir: Path) -> None:
    edit(values_dir / EXAMPLE, {"jupyterhub.custom.coursehub.members.shared-3": ["example-student-6"] * 2})
    p = the_problem(values_dir)
    assert p.file.endswith(EXAMPLE) and p.key == "jupyterhub.custom.coursehub.members.shared-3[1]"
    assert "this student is listed twice" in p.message and "example-student-6" not in str(p)  # never printed


def test_a_values_file_that_is_not_utf8_is_one_line(values_dir: Path) -> None:
    (values_dir / "stat159.yaml").write_bytes(b"jupyterhub:\n  custom:\n    x: caf\xe9\n")
    message = load_error(values_dir)
    assert message.endswith("is not UTF-8 text (line 3). Fix: save the file as UTF-8")


def test_deep_nesting_is_one_line(values_dir: Path) -> None:
    (values_dir / "stat159.yaml").write_text("jupyterhub: " + "[" * 5000 + "]" * 5000 + "\n")
    message = load_error(values_dir)
    assert f"nested deeper than {MAX_DEPTH} levels" in message


@pytest.mark.parametrize(
    "content",
    [b"jupyterhub: {x: \xff}\n", ("a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n").encode()],
    ids=["not-utf8", "nested"],
)
def test_make_validate_says_it_in_one_line_without_a_traceback(values_dir: Path, content: bytes) -> None:
    (values_dir / "stat159.yaml").write_bytes(content)
    result = coursehub("validate", "--course", "stat159", values=values_dir)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "stat159.yaml" in result.stderr and "Fix:" in result.stderr


def test_make_validate_never_prints_a_mistyped_secret(values_dir: Path) -> None:
    edit(values_dir / EXAMPLE, {"jupyterhub.hub.config.GenericOAuthenticator.client_secret": 918273645})
    result = coursehub("validate", "--course", "stat159", values=values_dir)
    assert result.returncode == 1 and "client_secret: is a number" in result.stderr
    assert "918273645" not in result.stdout + result.stderr


def test_a_render_that_differs_names_the_sub_keys_but_shows_no_secret_and_no_member(values_dir: Path) -> None:
    course = load_course("stat159", values_dir=values_dir)
    values = effective(course, UPSTREAM)
    hub = values["jupyterhub"]
    received = yaml.safe_load(yaml.safe_dump(hub))
    received["hub"]["config"]["GenericOAuthenticator"]["client_secret"] = "leaked-by-a-wrong-layer"
    received["custom"]["coursehub"]["members"]["shared-1"] = ["intruder"]
    secret = {
        "kind": "Secret",
        "metadata": {"name": "hub"},
        "data": {"values.yaml": base64.b64encode(yaml.safe_dump(received).encode()).decode()},
    }
    found = list(rendered.hub_receives_course(course, values, [secret]))
    assert sorted(p.key for p in found) == [
        "jupyterhub.custom.coursehub.members.shared-1",
        "jupyterhub.hub.config.GenericOAuthenticator.client_secret",
    ]
    text = "\n".join(map(str, found))
    assert all(p.file.endswith(EXAMPLE) for p in found)
    for private in ("leaked-by-a-wrong-layer", "stat159-example-client-secret", "intruder", "example-student"):
        assert private not in text


def test_render_refuses_a_folder_that_is_not_an_earlier_render(tmp_path: Path) -> None:
    folder = tmp_path / "values"
    folder.mkdir()
    (folder / "stat159.secret.yaml").write_text("private: yes\n")
    with pytest.raises(CoursehubError) as caught:
        check_out(folder)
    assert "not empty and not an earlier render" in str(caught.value)
    assert (folder / "stat159.secret.yaml").read_text() == "private: yes\n"
    check_out(tmp_path / "new")  # absent: fine
    (folder / MARKER).write_text("")
    check_out(folder)  # an earlier render: fine


def test_make_render_into_values_changes_nothing(upstream_chart: Path, tmp_path: Path) -> None:
    folder = tmp_path / "values"
    folder.mkdir()
    (folder / "keep.yaml").write_text("mine: true\n")
    result = coursehub("render", "--course", "stat159", "--out", str(folder), upstream=upstream_chart)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "OUT: is not empty and not an earlier render" in result.stderr
    assert [p.name for p in folder.iterdir()] == ["keep.yaml"]

    out = tmp_path / "out"
    for _ in range(2):  # an earlier render is replaced
        result = coursehub("render", "--course", "stat159", "--out", str(out), upstream=upstream_chart)
        assert result.returncode == 0, result.stderr
    assert (out / MARKER).is_file() and any(out.glob("*-secret-hub.yaml"))
