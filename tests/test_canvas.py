"""Reading a Canvas group set (coursehub_hub.canvas) and what a sync makes of it (coursehub_hub.lms), against
the loopback Canvas test double (coursehub.canvas_double): every answer that cannot be trusted is refused with
the check that failed, transient ones are retried, and the mapping to hub groups holds through a term."""

from __future__ import annotations

from typing import Any

import pytest

from coursehub.canvas_double import CanvasCourse, CanvasDouble, Fault, Student
from coursehub_hub import canvas, lms

DECLARATION: dict[str, Any] = {"course": "stat159", "access": "shares"}


def _settings(double: CanvasDouble, **changes: Any) -> lms.Lms:
    block = {"url": double.url, "courseId": double.course.course_id, "groupSet": "Project groups", **changes}
    settings = lms.parse_lms({**DECLARATION, "lms": block})
    assert settings is not None
    return settings


def _client(double: CanvasDouble, **kw: Any) -> canvas.CanvasAPI:
    return canvas.CanvasAPI(double.url, double.token, timeout=kw.pop("timeout", 5), sleep=lambda s: None, **kw)


def _read(double: CanvasDouble, group_set: int | str = "Project groups", **kw: Any) -> canvas.GroupSet:
    return canvas.read_group_set(_client(double, **kw), double.course.course_id, group_set)


@pytest.fixture
def double() -> Any:
    """Three pages of enrollments (243), one of groups."""
    with CanvasDouble(CanvasCourse.generated(groups=60, per_group=4, unassigned=3)) as d:
        yield d


@pytest.fixture
def small() -> Any:
    with CanvasDouble(CanvasCourse.generated(groups=12, per_group=4, unassigned=3)) as d:
        yield d


def test_a_group_set_is_read_whole_across_pages_with_every_student_and_group(double: CanvasDouble) -> None:
    double.course.students[0].sections = 2  # in two sections: one student, listed twice
    found = _read(double)
    assert len(found.groups) == 60 and found.groups[5000] == "Team 1"
    assert len(found.students) == 60 * 4 + 3 and found.unassigned == 3
    by_id = {s.canvas_id: s for s in found.students}
    assert by_id[100000].group_ids == {5000} and by_id[100000].login_id == "student-100000"
    # one request at a time (the double may still be closing the last answer as the next arrives): within two
    assert found.group_set_id == 77 and double.most_in_flight <= 2


def test_a_full_read_of_a_thousand_groups_and_four_thousand_students_is_at_most_sixty_requests() -> None:
    with CanvasDouble(CanvasCourse.generated(groups=1000, per_group=4)) as d:
        found = _read(d, group_set=77)
        assert len(found.students) == 4000 and len(found.groups) == 1000
        assert found.requests == d.requests <= 60, found.requests


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (Fault("no-next", path="cursor="), "totals"),  # the chain stops half-way through the pages
        (Fault("404", path="cursor=", after=1), "not found"),  # a page answers 404 half-way
        (Fault("bad-json", path="enrollments"), "bad JSON"),
    ],
)
def test_an_answer_that_cannot_be_trusted_is_refused_naming_the_check(
    double: CanvasDouble, fault: Fault, check: str
) -> None:
    double.inject(fault)
    with pytest.raises(canvas.Untrusted) as refused:
        _read(double)
    assert refused.value.check == check and "\n" not in str(refused.value)


def test_a_concluded_course_a_running_auto_assign_and_a_missing_group_set_are_refused(double: CanvasDouble) -> None:
    double.course.progress = "running"
    with pytest.raises(canvas.Untrusted, match="group set busy"):
        _read(double)
    double.course.progress = ""
    with pytest.raises(canvas.Untrusted, match="0 group sets named 'Lab groups'"):
        _read(double, group_set="Lab groups")
    with pytest.raises(canvas.Untrusted, match="not found"):
        _read(double, group_set=78)
    double.course.concluded = True
    with pytest.raises(canvas.Untrusted, match="course concluded"):
        _read(double)


@pytest.mark.parametrize("kind", ["403-rate", "429", "500", "slow"])
def test_throttled_failing_and_slow_answers_are_retried_and_the_read_completes(double: CanvasDouble, kind: str) -> None:
    double.inject(Fault(kind, path="cursor=", count=2, seconds=1.5))
    found = _read(double, timeout=0.5)
    assert len(found.students) == 243


def test_retries_end_and_say_so_in_one_line_and_a_refused_token_is_not_retried(double: CanvasDouble) -> None:
    double.inject(Fault("500", count=50))
    with pytest.raises(canvas.CanvasError, match="gave up after 3 tries") as failed:
        _read(double, retries=2)
    assert not isinstance(failed.value, canvas.Untrusted)
    double.faults.clear()
    before = double.requests
    with pytest.raises(canvas.CanvasError, match="HTTP 401: the token was refused"):
        canvas.read_group_set(canvas.CanvasAPI(double.url, "wrong", sleep=lambda s: None), 1001, 77)
    assert double.requests == before + 1


def test_a_next_link_to_another_origin_is_never_followed_with_the_token(double: CanvasDouble) -> None:
    client = _client(double)
    with pytest.raises(canvas.Untrusted, match="leads off"):
        client.get("https://elsewhere.example/api/v1/page?cursor=x")
    assert double.requests == 0


# --- from a group set to hub groups ----------------------------------------------------------------


def _sync(double: CanvasDouble, current: dict[str, set[str]], absent: set[str] = frozenset(), **kw: Any) -> lms.Sync:  # type: ignore[assignment]
    return lms.desired(_read(double), _settings(double, **kw.pop("block", {})), DECLARATION, current, set(absent), **kw)


def test_canvas_group_n_is_hub_group_canvas_n_and_account_collab_canvas_n_whatever_its_name(
    small: CanvasDouble,
) -> None:
    first = _sync(small, {})
    small.course.groups[5000] = "Renamed team"
    again = _sync(small, {})
    assert first.declaration["sharedAccounts"] == again.declaration["sharedAccounts"]
    assert {"group": "canvas-5000", "account": "collab-canvas-5000"} in first.declaration["sharedAccounts"]
    assert first.declaration["members"]["canvas-5000"] == sorted(f"student-{100000 + k}" for k in range(4))
    assert first.in_no_group == 3 and first.unmatched == [] and first.declaration["access"] == "shares"


def test_a_move_applies_at_once_and_a_withdrawal_after_two_syncs(small: CanvasDouble) -> None:
    current = {g: set(m) for g, m in _sync(small, {}).declaration["members"].items()}
    small.course.move("student-100000", 5001)
    small.course.withdraw("student-100005")
    first = _sync(small, current)
    members = first.declaration["members"]
    assert "student-100000" in members["canvas-5001"] and "student-100000" not in members["canvas-5000"]
    assert "student-100005" in members["canvas-5001"] and first.absent == {"student-100005"}  # held once
    second = _sync(small, current, absent=first.absent)
    assert "student-100005" not in second.declaration["members"]["canvas-5001"]
    assert second.letting_go == {"student-100005"} and second.absent == set() and not second.mass_removal


def test_a_sync_that_would_empty_many_groups_is_held_until_accepted(small: CanvasDouble) -> None:
    current = {g: set(m) for g, m in _sync(small, {}).declaration["members"].items()}
    for gid in (5000, 5001):  # eight students: more than max(5, 10 % of 48)
        small.course.delete_group(gid)
    held = _sync(small, current)
    assert "would take 8 of 48 members out of a group" in held.mass_removal and "ACCEPT_REMOVALS=8" in held.mass_removal
    assert _sync(small, current, accept_removals=7).mass_removal  # not what the operator read: still held
    assert not _sync(small, current, accept_removals=8).mass_removal


def test_a_reshuffle_of_every_group_is_held_like_a_mass_removal(small: CanvasDouble) -> None:
    """Moves count too: every group deleted and its students put in new ones would drop every old group's work."""
    current = {g: set(m) for g, m in _sync(small, {}).declaration["members"].items()}
    for gid in list(small.course.groups):
        small.course.delete_group(gid)
    small.course.add_group(6000, "New team")
    for student in small.course.students[:48]:
        small.course.membership[student.canvas_id] = 6000
    held = _sync(small, current)
    assert held.losing == 48 and "held until an operator" in held.mass_removal


def test_small_syncs_add_up_to_a_hold_within_a_day(small: CanvasDouble) -> None:
    current = {g: set(m) for g, m in _sync(small, {}).declaration["members"].items()}
    small.course.move("student-100000", 5001)
    assert not _sync(small, current).mass_removal  # one move: fine alone
    assert _sync(small, current, recent_losses=5).mass_removal  # after five more today: held


def test_log_ins_map_by_the_stated_rule_and_a_missing_username_field_refuses_the_sync() -> None:
    with CanvasDouble(CanvasCourse.generated(groups=2, per_group=2, domain="campus.edu")) as d:
        d.course.students.append(Student(999, "Visitor@Other.edu", "sis999"))
        d.course.membership[999] = 5000
        found = _sync(d, {}, block={"stripDomain": "campus.edu"})
        assert found.declaration["members"]["canvas-5000"] == ["student-100000", "student-100001"]
        assert found.unmatched == ["999"]
        by_sis = _sync(d, {}, block={"username": "sis_user_id"})
        assert by_sis.declaration["members"]["canvas-5000"] == ["sis100000", "sis100001", "sis999"]
        d.course.show_login_id = False  # the token's role cannot view log-in IDs
        with pytest.raises(canvas.Untrusted, match="username field: 5 of 5 students have no login_id"):
            _sync(d, {})


@pytest.mark.parametrize(
    ("block", "key", "fix"),
    [
        ({"courseId": "x"}, "lms.courseId", "course's number"),
        ({"url": "http://canvas.example.edu"}, "lms.url", "https://"),
        ({"interval": 5}, "lms.interval", "at least 60"),
        ({"username": "email"}, "lms.username", "login_id, sis_user_id"),
        ({"extra": 1}, "lms.extra", "remove it"),
    ],
)
def test_a_bad_lms_block_names_the_key_and_the_fix(block: dict[str, Any], key: str, fix: str) -> None:
    good = {"url": "https://canvas.example.edu", "courseId": 5, "groupSet": 7}
    with pytest.raises(lms.rules.DeclarationError) as bad:
        lms.parse_lms({**DECLARATION, "lms": {**good, **block}})
    assert bad.value.key == key and fix in bad.value.fix


def test_members_and_lms_are_exclusive_and_lms_needs_access_shares() -> None:
    block = {"url": "https://canvas.example.edu", "courseId": 5, "groupSet": 7}
    with pytest.raises(lms.rules.DeclarationError, match="set together with members"):
        lms.parse_lms({**DECLARATION, "lms": block, "members": {"g": ["ana"]}})
    assert lms.parse_lms({**DECLARATION, "lms": block, "members": {}}) is not None  # the chart's default
    with pytest.raises(lms.rules.DeclarationError, match="needs access: shares"):
        lms.parse_lms({"course": "stat159", "lms": block})


def test_names_nobody_may_log_in_as_and_bare_log_ins_with_strip_domain_are_left_unmatched() -> None:
    with CanvasDouble(CanvasCourse.generated(groups=1, per_group=1, domain="campus.edu")) as d:
        for sid, login in ((901, "Collab-Canvas-5000@campus.edu"), (902, "coursehub-health@campus.edu"), (903, "bo")):
            d.course.students.append(Student(sid, login, f"sis{sid}"))
            d.course.membership[sid] = 5000
        found = _sync(d, {}, block={"stripDomain": "campus.edu"})
        assert found.declaration["members"]["canvas-5000"] == ["student-100000"]
        assert found.unmatched == ["901", "902", "903"]


def test_a_self_signup_group_set_is_refused_unless_the_course_allows_it(small: CanvasDouble) -> None:
    original = small._answer

    def self_signup(path: str, query: dict[str, list[str]]) -> Any:
        status, body, nxt = original(path, query)
        if path.rstrip("/").endswith("/group_categories/77"):
            body = {**body, "self_signup": "enabled"}
        return status, body, nxt

    small._answer = self_signup  # type: ignore[method-assign]
    with pytest.raises(canvas.Untrusted, match="students choose their own groups"):
        _read(small)
    assert len(canvas.read_group_set(_client(small), 1001, "Project groups", allow_self_signup=True).groups) == 12


@pytest.mark.parametrize(
    ("where", "change", "check"),
    [
        ("/group_categories/77", {"course_id": 999}, "group set"),  # another course's set
        ("/group_categories/77", {"course_id": None}, "group set"),
        ("/group_categories/77", {"groups_count": None}, "totals"),
        ("/courses/1001", {"total_students": 10**60}, "totals"),
    ],
)
def test_answers_out_of_canvass_own_bounds_are_refused(
    small: CanvasDouble, where: str, change: dict[str, Any], check: str
) -> None:
    original = small._answer

    def changed(path: str, query: dict[str, list[str]]) -> Any:
        status, body, nxt = original(path, query)
        if path.rstrip("/").endswith(where) and isinstance(body, dict):
            body = {**body, **change}
        return status, body, nxt

    small._answer = changed  # type: ignore[method-assign]
    with pytest.raises(canvas.Untrusted) as refused:
        _read(small)
    assert refused.value.check == check


def test_a_list_longer_than_canvass_totals_allow_is_refused_before_it_is_read_whole(double: CanvasDouble) -> None:
    original = double._listing
    double._listing = lambda name: original(name) * (20 if name == "enrollments" else 1)  # type: ignore[method-assign]
    with pytest.raises(canvas.Untrusted, match="lists more than"):
        _read(double)
    assert double.requests < 20


@pytest.mark.parametrize(
    "broken",
    [
        lambda row: {**row, "user": "not an object"},
        lambda row: {**row, "user": {**row["user"], "group_ids": [[5000]]}},
        lambda row: {**row, "user": {**row["user"], "group_ids": "5000"}},
    ],
)
def test_an_enrollment_of_the_wrong_shape_is_refused_not_a_crash(small: CanvasDouble, broken: Any) -> None:
    original = small._listing
    small._listing = lambda name: [broken(r) for r in original(name)] if name == "enrollments" else original(name)  # type: ignore[method-assign]
    with pytest.raises(canvas.Untrusted, match="bad JSON"):
        _read(small)
