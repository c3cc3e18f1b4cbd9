"""`make groups`: a group roster, as the LMS exports it, into the course's private membership file.

Two formats, told apart by the header row:
- Canvas's group-category CSV: a student column (login_id, user_id or
  canvas_user_id; which one becomes the hub user name is the course setting
  custom.coursehub.roster.studentColumn) and a group column (group_name, else
  group_id, else canvas_group_id); exports also carry name and sections, and
  list every student of the course: one with an empty group is in no group
  yet, skipped and counted, never an error;
- a plain `group,student` CSV.
Roster group names become hub group names deterministically (lower case, ASCII,
[a-z0-9._~-]); the account is `<accountPrefix><group>`. Every bad row is
reported at once, with its line number, and nothing is written.
"""

from __future__ import annotations

import copy
import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coursehub.courses import ENCRYPTED_SUFFIX, GROUPS_SUFFIX, SECRET_SUFFIX, Course, Layer, get
from coursehub.errors import CoursehubError, Problem
from coursehub.files import replace_file
from coursehub.groups import hubpython
from coursehub.ops import sops
from coursehub.paths import display

STUDENT_COLUMNS = ("login_id", "user_id", "canvas_user_id")
GROUP_COLUMNS = ("group_name", "group_id", "canvas_group_id")
DEFAULT_STUDENT_COLUMN = "login_id"
DEFAULT_ACCOUNT_PREFIX: str = hubpython.load().DEFAULT_ACCOUNT_PREFIX  # the hub-side rule, not a copy
MAX_NAME = 63


@dataclass(frozen=True)
class RosterGroup:
    roster_name: str  # as the LMS wrote it
    group: str  # hub group name
    account: str  # hub shared account
    members: tuple[str, ...]
    line: int  # where the group first appears


class Roster(list[RosterGroup]):
    """The roster's groups, and how many of its students are in none yet (skipped: normal early in a term)."""

    in_no_group: int = 0


def hub_group_name(roster_name: str) -> str:
    """A roster group name as a hub group name: the same input always gives the same output."""
    text = unicodedata.normalize("NFKD", roster_name.casefold()).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9._~-]+", "-", text).strip("-._~")
    return re.sub(r"-{2,}", "-", text)[:MAX_NAME].rstrip("-._~")


def read(
    path: Path, student_column: str = DEFAULT_STUDENT_COLUMN, account_prefix: str = DEFAULT_ACCOUNT_PREFIX
) -> list[RosterGroup]:
    """The roster's groups, or every problem in it at once."""
    name = display(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise CoursehubError(
            Problem(name, "", f"cannot be read as UTF-8 text ({e})", "export the roster as UTF-8 CSV")
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[Problem] = []
    try:
        rows = list(reader)
    except csv.Error as e:
        raise CoursehubError(
            Problem(
                f"{name}:{reader.line_num}",
                "",
                f"is not valid CSV ({e})",
                "export the roster again, or fix the quoting on that line",
            )
        ) from None
    if not rows:
        raise CoursehubError(Problem(name, "", "is empty", "export the roster with its header row"))
    header = [h.strip() for h in rows[0]]
    student_col, group_col = _columns(name, header, student_column)

    groups: dict[str, list[tuple[str, int]]] = {}
    unassigned: set[str] = set()  # students with a row but no group (Canvas lists every student of the course)
    first_line: dict[str, int] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(
                Problem(
                    f"{name}:{number}",
                    "",
                    f"has {len(row)} fields, the header has {len(header)}",
                    "fix the row's commas or quoting",
                )
            )
            continue
        record = dict(zip(header, row, strict=True))
        group, student = record[group_col].strip(), record[student_col].strip().lower()
        if not student:
            problems.append(Problem(f"{name}:{number}", student_col, "is empty", "give the row its student"))
            continue
        if not group:
            unassigned.add(student)
            continue
        if not hubpython.load().USER_NAME.pattern.match(student):
            problems.append(
                Problem(
                    f"{name}:{number}",
                    student_col,
                    f"{student!r} is not a valid hub user name",
                    "use the column the hub's log-in gives as user name (custom.coursehub.roster.studentColumn)",
                )
            )
            continue
        if (group, student) in seen:
            problems.append(
                Problem(
                    f"{name}:{number}",
                    student_col,
                    f"{student} is in {group!r} twice (first on line {seen[group, student]})",
                    "remove the repeated row",
                )
            )
            continue
        seen[group, student] = number
        groups.setdefault(group, []).append((student, number))
        first_line.setdefault(group, number)

    result = Roster()
    by_hub_name: dict[str, str] = {}
    for roster_name, members in groups.items():
        group = hub_group_name(roster_name)
        line = first_line[roster_name]
        if not group:
            problems.append(
                Problem(
                    f"{name}:{line}",
                    group_col,
                    f"{roster_name!r} has no letters or digits to name a hub group with",
                    "rename the group in the LMS",
                )
            )
            continue
        if group in by_hub_name:
            other = by_hub_name[group]
            problems.append(
                Problem(
                    f"{name}:{line}",
                    group_col,
                    f"{roster_name!r} and {other!r} (line {first_line[other]}) would both become hub group {group!r}",
                    "rename one of them in the LMS",
                )
            )
            continue
        by_hub_name[group] = roster_name
        result.append(RosterGroup(roster_name, group, account_prefix + group, tuple(m for m, _ in members), line))
    students = {m for g in result for m in g.members}
    for g in result:
        if g.account in students:
            problems.append(
                Problem(
                    f"{name}:{g.line}",
                    group_col,
                    f"group {g.roster_name!r} would get account {g.account!r}, which is a student's user name",
                    "change the course's accountPrefix",
                )
            )
    if problems:
        raise CoursehubError(sorted(problems, key=lambda p: int(p.file.rpartition(":")[2])))
    result.in_no_group = len(unassigned - {m for g in result for m in g.members})
    return result


def _columns(name: str, header: list[str], student_column: str) -> tuple[str, str]:
    if header == ["group", "student"]:
        return "student", "group"
    group_col = next((c for c in GROUP_COLUMNS if c in header), None)
    if group_col is None or not any(c in header for c in STUDENT_COLUMNS):
        raise CoursehubError(
            Problem(
                f"{name}:1",
                "",
                f"header {header} is neither Canvas's group-category CSV nor group,student",
                f"export with a student column ({', '.join(STUDENT_COLUMNS)}) "
                f"and a group column ({', '.join(GROUP_COLUMNS)})",
            )
        )
    if student_column not in header:
        raise CoursehubError(
            Problem(
                f"{name}:1",
                student_column,
                "is the course's student column but the roster has no such column",
                "export it, or set custom.coursehub.roster.studentColumn",
            )
        )
    return student_column, group_col


def write_membership(course: Course, groups: list[RosterGroup]) -> list[Path]:
    """Write the groups and their accounts into values/<course>.groups.yaml (committed: which accounts exist and
    which group reaches each is reviewed like the course file) and the members into the course's secrets file,
    keeping its other keys. Returns the files written.

    The secrets file is values/<course>.secret.enc.yaml, encrypted, when it exists or when .sops.yaml has a
    rule for it and there is no plaintext values/<course>.secret.yaml; else that plaintext file.
    A new file holds the membership only: nothing is taken from the example file, whose
    credentials and students are examples. The course is checked with the new groups and membership
    before anything is written.
    """
    from coursehub.chart.checks import check_values
    from coursehub.chart.upstream import find_chart, load_data

    secret = course.course_file.with_name(course.name + SECRET_SUFFIX)
    encrypted = course.course_file.with_name(course.name + ENCRYPTED_SUFFIX)
    listed = course.course_file.with_name(course.name + GROUPS_SUFFIX)
    current = next((layer for layer in course.layers if layer.path in (secret, encrypted)), None)
    target = encrypted if encrypted.is_file() or (not secret.is_file() and sops.has_rule(encrypted)) else secret
    private = copy.deepcopy(current.data) if current else {}
    declaration = private.setdefault("jupyterhub", {}).setdefault("custom", {}).setdefault("coursehub", {})
    declaration.pop("sharedAccounts", None)  # an earlier `make groups` put them here: they are not private
    declaration["members"] = {g.group: list(g.members) for g in groups}
    accounts = [{"group": g.group, "account": g.account} for g in groups]
    public = {"jupyterhub": {"custom": {"coursehub": {"sharedAccounts": accounts}}}}
    layers = tuple(layer for layer in course.layers if not layer.private and layer.path != listed)
    trial = Course(
        course.name, course.course_file, (*layers, Layer(listed, public), Layer(target, private)), course.chart_defaults
    )
    problems = check_values(trial, load_data(find_chart()))
    if problems:
        raise CoursehubError(problems)
    header = (
        f"# {course.name}'s groups and their shared accounts, written by `make groups` (committed; who is in each\n"
        f"# group is private, in the course's secrets file). Edit the roster and run `make groups` again.\n"
    )
    replace_file(listed, header + yaml.safe_dump(public, sort_keys=False), 0o644)
    if target == encrypted:
        sops.write_encrypted(encrypted, private)
        return [listed, encrypted]
    header = "# The course's private values (git-ignored). Group membership written by `make groups`.\n"
    replace_file(secret, header + yaml.safe_dump(private, sort_keys=False), 0o600)
    return [listed, secret]


def settings(course: Course) -> tuple[str, str]:
    roster: dict[str, Any] = get(course.values(), ("jupyterhub", "custom", "coursehub", "roster")) or {}
    return roster.get("studentColumn", DEFAULT_STUDENT_COLUMN), roster.get("accountPrefix", DEFAULT_ACCOUNT_PREFIX)
