"""`make groups`: LMS group rosters into the course's private membership file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coursehub.chart.checks import DECLARATION
from coursehub.courses import load_course
from coursehub.errors import CoursehubError
from coursehub.groups import roster
from helpers.commands import coursehub

DECLARED = (*DECLARATION, "sharedAccounts")

CANVAS = """name,canvas_user_id,user_id,login_id,sections,group_name,canvas_group_id,group_id
"Ana, A",1,s001,ana,Lab 1,Project Team 1,11,g1
Bo B,2,s002,bo,Lab 1,Project Team 1,11,g1
Bo B,2,s002,bo,Lab 1,Équipe 2,12,g2
Cy C,3,s003,cy,"Lab 2, evening",Équipe 2,12,g2
"""


def write(tmp_path: Path, text: str, name: str = "groups.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_canvas_export_becomes_groups_accounts_and_members(tmp_path: Path) -> None:
    groups = roster.read(write(tmp_path, CANVAS))
    assert [(g.roster_name, g.group, g.account, g.members) for g in groups] == [
        ("Project Team 1", "project-team-1", "collab-project-team-1", ("ana", "bo")),
        ("Équipe 2", "equipe-2", "collab-equipe-2", ("bo", "cy")),
    ]


def test_the_student_column_is_a_course_setting(tmp_path: Path) -> None:
    groups = roster.read(write(tmp_path, CANVAS), student_column="user_id", account_prefix="shared-")
    assert groups[0].members == ("s001", "s002") and groups[0].account == "shared-project-team-1"


def test_group_ids_are_used_when_there_are_no_group_names(tmp_path: Path) -> None:
    text = "login_id,canvas_group_id\nana,11\nbo,12\n"
    assert [g.group for g in roster.read(write(tmp_path, text))] == ["11", "12"]


def test_a_plain_group_student_csv(tmp_path: Path) -> None:
    groups = roster.read(write(tmp_path, "group,student\nshared-1,Ana\nshared-1,bo\n"))
    assert [(g.group, g.members) for g in groups] == [("shared-1", ("ana", "bo"))]  # hub user names are lower case


def test_names_are_deterministic() -> None:
    assert roster.hub_group_name("  Projekt Größe / 3 ") == roster.hub_group_name("  Projekt Größe / 3 ")
    assert roster.hub_group_name("Projekt Größe / 3") == "projekt-grosse-3"
    assert len(roster.hub_group_name("x" * 200)) == 63


def test_every_bad_row_is_reported_at_once_with_its_line(tmp_path: Path) -> None:
    text = (
        "login_id,group_name\n"
        "ana,Team 1\n"  # 2
        ",Team 1\n"  # 3 empty student
        "cy,\n"  # 4 in no group: skipped, counted
        "ana,Team 1\n"  # 5 twice
        "dee,team-1\n"  # 6 collides with Team 1
        "eve,Team 1,extra\n"  # 7 malformed row
        "Bad Name,Team 3\n"  # 8 invalid user name
        "fay,???\n"  # 9 no usable name
    )
    with pytest.raises(CoursehubError) as caught:
        roster.read(write(tmp_path, text))
    lines = [p.file.rpartition(":")[2] for p in caught.value.problems]
    assert lines == ["3", "5", "6", "7", "8", "9"]
    text = str(caught.value)
    assert "ana is in 'Team 1' twice (first on line 2)" in text
    assert "'team-1' and 'Team 1' (line 2) would both become hub group 'team-1'" in text


def test_a_real_shaped_export_with_unassigned_students_and_e_mail_log_ins_imports(tmp_path: Path) -> None:
    """Canvas's group-set export lists every student of the course; early in a term most are in no group, and a
    set with no groups yet has no group id columns at all."""
    text = (
        "name,canvas_user_id,user_id,login_id,sections,group_name,canvas_group_id,group_id\n"
        "Ana A,101,s1,Student-1@campus.edu,Lec 1,Team 1,501,\n"
        "Bo B,102,s2,student-2@campus.edu,Lec 1,,,\n"
        "Cy C,103,s3,student-3@campus.edu,Lec 1,,,\n"
    )
    groups = roster.read(write(tmp_path, text))
    assert [(g.group, g.members) for g in groups] == [("team-1", ("student-1@campus.edu",))]
    assert groups.in_no_group == 2
    none_yet = roster.read(
        write(tmp_path, "name,canvas_user_id,user_id,login_id,sections,group_name\nBo,102,s2,b@x.edu,L,\n")
    )
    assert list(none_yet) == [] and none_yet.in_no_group == 1


def test_a_malformed_file_is_refused(tmp_path: Path) -> None:
    for text, words in (("", "is empty"), ("who,what\nx,y\n", "neither Canvas"), ('login_id,group_name\n"ana,g\n', "")):
        with pytest.raises(CoursehubError) as caught:
            roster.read(write(tmp_path, text))
        assert words in str(caught.value)
    with pytest.raises(CoursehubError, match="no such column"):
        roster.read(write(tmp_path, "user_id,group_name\ns1,g\n"))  # the course reads login_id


def test_make_groups_writes_accounts_to_a_committed_file_and_membership_only_to_the_private_one(
    values_dir: Path, tmp_path: Path
) -> None:
    result = coursehub("groups", "--course", "stat159", "--roster", str(write(tmp_path, CANVAS)), values=values_dir)
    assert result.returncode == 0, result.stderr
    written = values_dir / "stat159.secret.yaml"
    assert written.stat().st_mode & 0o077 == 0
    data = yaml.safe_load(written.read_text())
    declared = data["jupyterhub"]["custom"]["coursehub"]
    assert declared == {"members": {"project-team-1": ["ana", "bo"], "equipe-2": ["bo", "cy"]}}
    # which accounts exist and which group reaches each is reviewed in git, not hidden in the private layer
    listed = yaml.safe_load((values_dir / "stat159.groups.yaml").read_text())["jupyterhub"]["custom"]["coursehub"]
    assert listed["sharedAccounts"][1] == {"group": "equipe-2", "account": "collab-equipe-2"}
    assert "ana" not in (values_dir / "stat159.groups.yaml").read_text()
    assert load_course("stat159", values_dir=values_dir).origin(DECLARED).endswith("values/stat159.groups.yaml")
    # nothing comes from the example file: its OAuth client and students are examples
    assert "hub" not in data["jupyterhub"]
    assert "example" not in written.read_text()
    assert "ana" not in result.stdout  # membership is not printed
    assert coursehub("validate", "--course", "stat159", values=values_dir).returncode == 0


def test_make_groups_keeps_the_real_secrets_files_other_keys(values_dir: Path, tmp_path: Path) -> None:
    secret = values_dir / "stat159.secret.yaml"
    secret.write_text(
        "jupyterhub:\n  hub:\n    config:\n      GenericOAuthenticator:\n        client_id: '4711'\n"
        "  custom:\n    coursehub:\n      members:\n        shared-1: [old-student]\n"
    )
    result = coursehub("groups", "--course", "stat159", "--roster", str(write(tmp_path, CANVAS)), values=values_dir)
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(secret.read_text())
    assert data["jupyterhub"]["hub"]["config"]["GenericOAuthenticator"] == {"client_id": "4711"}
    assert "old-student" not in secret.read_text()


def test_make_groups_moves_accounts_an_earlier_run_put_in_the_private_file_out_of_it(
    values_dir: Path, tmp_path: Path
) -> None:
    secret = values_dir / "stat159.secret.yaml"
    secret.write_text(
        "jupyterhub:\n  custom:\n    coursehub:\n      sharedAccounts: [{group: old, account: collab-old}]\n"
        "      members: {old: [old-student]}\n"
    )
    assert "sharedAccounts" in coursehub("validate", "--course", "stat159", values=values_dir).stderr  # not private
    result = coursehub("groups", "--course", "stat159", "--roster", str(write(tmp_path, CANVAS)), values=values_dir)
    assert result.returncode == 0, result.stderr
    assert "sharedAccounts" not in secret.read_text() and "old" not in secret.read_text()


def test_make_groups_writes_nothing_when_a_row_is_bad(values_dir: Path, tmp_path: Path) -> None:
    bad = write(tmp_path, CANVAS + "Dee,4,s004,,Lab 1,Project Team 1,11,g1\n")
    result = coursehub("groups", "--course", "stat159", "--roster", str(bad), values=values_dir)
    assert result.returncode == 1 and "groups.csv:6: login_id: is empty" in result.stderr
    assert not (values_dir / "stat159.secret.yaml").exists()
