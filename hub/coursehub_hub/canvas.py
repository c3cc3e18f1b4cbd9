"""Canvas's REST API, read-only: one group set of one course, and whether the answer can be trusted.

The in-hub reconciler (``coursehub_hub.reconcile``) calls ``read_group_set`` on its schedule and ``make lms-plan``
and ``make sync-groups`` call it from outside. A full read of a 1,000-group, 4,000-student course is about 52
requests, one at a time (never more than one in flight, within the two Canvas's own guidance allows):

- ``GET /api/v1/courses/:id?include[]=total_students&include[]=concluded``: the course, its state and its
  student total;
- the group set: ``GET /api/v1/group_categories/:id?includes[]=groups_count&includes[]=unassigned_users_count``
  (by id; by name, ``GET /api/v1/courses/:id/group_categories`` first);
- ``GET /api/v1/group_categories/:id/groups`` (pages of 100);
- ``GET /api/v1/courses/:id/enrollments?type[]=StudentEnrollment&state[]=…&include[]=group_ids`` (pages of 100).

Canvas's own totals, as its source computes them: ``total_students`` counts the student enrollments that are
active, invited or creation_pending, so that is the set read here; ``groups_count`` the set's groups not
deleted; ``unassigned_users_count`` those students in none of them; ``progress`` is there (with
``includes[]=progress_url``) only while an auto-assign is queued or running.

Written on the standard library rather than ``canvasapi``: the reconciler runs in the hub image, whose only
additions to z2jh's are pinned and few; canvasapi sets no timeout and retries nothing, and its ``PaginatedList``
ends quietly where a ``next`` link is missing, which is exactly what must never pass for "the whole group set".
Here every page must answer 200 with a JSON list, pagination follows Canvas's opaque ``Link: rel="next"`` URL
(never to another origin: the token goes only to the course's Canvas), and the counts must agree with Canvas's
own totals before anything acts on the answer (``Untrusted`` says which check failed, in one line).
"""

from __future__ import annotations

import http.client
import json
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

PER_PAGE = 100  # Canvas's largest page
MAX_ID = 10**15  # Canvas ids are positive 64-bit numbers far below this; anything else is not Canvas talking
MAX_PAGE_BYTES = 8 * 1024 * 1024  # a page of 100 enrollments is tens of kilobytes
SYNC_SECONDS = 600  # a whole read, whatever each request takes: a sync that cannot finish gives up and says so
# The enrollment states Canvas counts in a course's total_students (Course#students: every student enrollment
# that is not rejected, completed, deleted or inactive): read the same set, so the two counts can be compared.
STUDENT_STATES = ("active", "invited", "creation_pending")
RATE_LIMITED = "rate limit exceeded"  # in the body of Canvas's 403 when it throttles (newer versions answer 429)


class CanvasError(RuntimeError):
    """Canvas could not be read (after retries): nothing is changed; the next sync tries again."""


class Untrusted(CanvasError):
    """Canvas answered, but not with something to act on: ``check`` names the check that failed."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check


@dataclass(frozen=True)
class Student:
    canvas_id: int
    login_id: str | None  # None: Canvas left it out (the token's role may not view log-in IDs)
    sis_user_id: str | None
    group_ids: frozenset[int]  # this group set's groups only


@dataclass
class GroupSet:
    """One read of a course's group set, every check passed."""

    course_id: int
    group_set_id: int
    group_set_name: str
    groups: dict[int, str]  # Canvas group id -> its name
    students: list[Student] = field(default_factory=list)
    requests: int = 0

    @property
    def unassigned(self) -> int:
        return sum(1 for s in self.students if not s.group_ids)


class CanvasAPI:
    """GETs with a bearer token: a timeout on every request; retries with backoff on throttling (403 "Rate Limit
    Exceeded", 429), 5xx, timeouts and dropped connections; nothing else retried."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 20.0,
        retries: int = 5,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.origin = _origin(self.base)
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.requests = 0
        self.opener = urllib.request.build_opener(_NoRedirects())
        self.deadline = float("inf")  # time.monotonic() by which the current read must be done

    def get(self, url: str) -> tuple[Any, str | None]:
        """(the JSON answer, the next page's URL or None). ``url`` is a path under the API or a ``next`` link."""
        full = url if "://" in url else self.base + url
        if _origin(full) != self.origin:  # a next link elsewhere would carry the token there
            raise Untrusted("pagination", f"a next link leads off {self.origin}")
        what = _without_query(full)
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 2))
            if time.monotonic() > self.deadline:
                raise CanvasError(f"GET {what}: the read took longer than {SYNC_SECONDS} s; gave up")
            self.requests += 1
            request = urllib.request.Request(
                full, headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
            )
            try:
                with self.opener.open(request, timeout=self.timeout) as response:
                    raw = response.read(MAX_PAGE_BYTES + 1)
                    link = response.headers.get("Link")  # header names are case-insensitive here
                if len(raw) > MAX_PAGE_BYTES:
                    raise Untrusted("page size", f"GET {what} answered more than {MAX_PAGE_BYTES} bytes")
            except urllib.error.HTTPError as e:
                body = _read(e)
                if e.code == 429 or (e.code == 403 and RATE_LIMITED in body.lower()) or e.code >= 500:
                    last = f"HTTP {e.code}" + (" (throttled)" if e.code in (403, 429) else "")
                    retry_after = _seconds(e.headers.get("Retry-After"))
                    if retry_after:
                        self.sleep(min(retry_after, 60))
                    continue
                if e.code == 404:
                    raise Untrusted("not found", f"GET {what} answered 404") from None
                if e.code in (401, 403):
                    raise CanvasError(
                        f"GET {what}: HTTP {e.code}: the token was refused (expired, or its role cannot read this "
                        "course's groups and enrollments)"
                    ) from None
                raise CanvasError(f"GET {what}: HTTP {e.code}") from None
            except (TimeoutError, ConnectionError, http.client.HTTPException, urllib.error.URLError) as e:
                last = f"no answer ({type(e).__name__})"
                continue
            try:
                return json.loads(raw), _next(link)
            except ValueError:
                raise Untrusted("bad JSON", f"GET {what} answered 200 with something that is not JSON") from None
        raise CanvasError(f"GET {what}: {last}; gave up after {self.retries + 1} tries")

    def one(self, path: str) -> dict[str, Any]:
        answer, _ = self.get(path)
        if not isinstance(answer, dict):
            raise Untrusted("bad JSON", f"GET {_without_query(self.base + path)} answered with no object")
        return answer

    def pages(self, path: str, most: int = 100_000) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list: each page a JSON list; ends only where a page has no next link. More
        than ``most`` items (more than Canvas's own totals allow) is not the list asked for."""
        url: str | None = path + ("&" if "?" in path else "?") + f"per_page={PER_PAGE}"
        seen = 0
        while url:
            answer, url = self.get(url)
            seen += len(answer) if isinstance(answer, list) else 0
            if seen > most:
                raise Untrusted("totals", f"{_without_query(self.base + path)} lists more than {most} items")
            if not isinstance(answer, list):
                raise Untrusted("bad JSON", f"a page of {_without_query(self.base + path)} is not a JSON list")
            for item in answer:
                if not isinstance(item, dict):
                    raise Untrusted("bad JSON", f"a page of {_without_query(self.base + path)} holds a non-object")
                yield item


def read_group_set(api: CanvasAPI, course_id: int, group_set: int | str, allow_self_signup: bool = False) -> GroupSet:
    """The course's group set (by id, or by its exact name) and its students, with every trust check passed.
    ``allow_self_signup``: a set whose students pick their own groups (self sign-up, or a student-organized set)
    is refused unless the course said so, since a student joining a group there gets its account."""
    api.deadline = time.monotonic() + SYNC_SECONDS
    course = api.one(f"/api/v1/courses/{course_id}?include[]=total_students&include[]=concluded")
    if course.get("workflow_state") == "completed" or course.get("concluded") is True:
        raise Untrusted("course concluded", f"course {course_id} is concluded: its enrollments say nothing now")
    total = course.get("total_students")
    if not isinstance(total, int) or not 0 <= total < MAX_ID:
        raise Untrusted("totals", f"course {course_id} answered without total_students")

    counts = "includes[]=groups_count&includes[]=unassigned_users_count&includes[]=progress_url"
    if isinstance(group_set, int):
        category = api.one(f"/api/v1/group_categories/{group_set}?{counts}")
    else:
        named = [c for c in api.pages(f"/api/v1/courses/{course_id}/group_categories") if c.get("name") == group_set]
        if len(named) != 1:
            raise Untrusted(
                "group set", f"course {course_id} has {len(named)} group sets named {group_set!r}, not exactly one"
            )
        category = api.one(f"/api/v1/group_categories/{int(named[0]['id'])}?{counts}")
    set_id = category.get("id")
    if not _is_id(set_id) or category.get("course_id") != course_id:
        raise Untrusted("group set", f"group set {group_set!r} is not one of course {course_id}'s")
    if not allow_self_signup and (category.get("self_signup") or category.get("role") == "student_organized"):
        raise Untrusted(
            "group set",
            f"students choose their own groups in group set {set_id} (self sign-up): one who joins a group gets its "
            "account; set lms.allowSelfSignup: true if that is the course's intent",
        )
    progress = category.get("progress")
    if isinstance(progress, dict) and progress.get("workflow_state") in ("queued", "running"):
        raise Untrusted(
            "group set busy", f"group set {set_id} is being assigned (progress {progress.get('workflow_state')})"
        )

    groups: dict[int, str] = {}
    expected = category.get("groups_count")
    if not isinstance(expected, int) or not 0 <= expected < MAX_ID:
        raise Untrusted("totals", f"group set {set_id} answered without groups_count")
    for g in api.pages(f"/api/v1/group_categories/{set_id}/groups", most=expected):
        if not _is_id(g.get("id")):
            raise Untrusted("bad JSON", f"a group of set {set_id} has no valid id")
        groups[g["id"]] = str(g.get("name") or "")
    if category.get("groups_count") != len(groups):
        raise Untrusted(
            "totals", f"group set {set_id}: read {len(groups)} groups, Canvas counts {category.get('groups_count')}"
        )

    states = "".join(f"&state[]={s}" for s in STUDENT_STATES)
    # a student is listed once per section: a few sections each at most, or it is not this course's list
    rows = api.pages(
        f"/api/v1/courses/{course_id}/enrollments?type[]=StudentEnrollment{states}&include[]=group_ids",
        most=4 * total + PER_PAGE,
    )
    by_user: dict[int, Student] = {}
    enrollments = 0
    for row in rows:
        enrollments += 1
        user = row.get("user") or {}
        if not isinstance(user, dict):
            raise Untrusted("bad JSON", "an enrollment's user is not an object")
        uid = row.get("user_id", user.get("id"))
        if not _is_id(uid):
            raise Untrusted("bad JSON", "an enrollment has no valid user id")
        # include[]=group_ids puts them on the enrollment's user (every group set's, deleted groups' too): this
        # set's live groups only
        ids = user.get("group_ids", row.get("group_ids"))
        ids = [] if ids is None else ids
        if not isinstance(ids, list) or not all(_is_id(i) for i in ids):
            raise Untrusted("bad JSON", "an enrollment's group_ids is not a list of ids")
        in_set = frozenset(i for i in ids if i in groups)
        seen = by_user.get(uid)  # a student enrolled in two sections is listed twice: one student
        by_user[uid] = Student(
            uid,
            _text(user.get("login_id")),
            _text(user.get("sis_user_id")),
            in_set | (seen.group_ids if seen else frozenset()),
        )
    students = sorted(by_user.values(), key=lambda s: s.canvas_id)
    # Canvas counts distinct students; older Canvas versions counted enrollments (a student in two sections twice)
    if total not in (len(students), enrollments):
        raise Untrusted("totals", f"course {course_id}: read {len(students)} students, Canvas counts {total}")
    result = GroupSet(course_id, set_id, str(category.get("name") or ""), groups, students)
    unassigned = category.get("unassigned_users_count")
    if isinstance(unassigned, int) and unassigned != result.unassigned:
        raise Untrusted(
            "totals", f"group set {set_id}: {result.unassigned} students in no group, Canvas counts {unassigned}"
        )
    result.requests = api.requests
    return result


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an HTTPError: the token never follows one


_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";]*)"?', re.I)


def _next(link: str | None) -> str | None:
    for url, rel in _LINK.findall(link or ""):
        if "next" in rel.lower().split():
            return url
    return None


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < MAX_ID


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _without_query(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _read(e: urllib.error.HTTPError) -> str:
    try:
        return (e.read() or b"")[:2000].decode("utf-8", "replace")
    except OSError:
        return ""


def _seconds(value: str | None) -> float:
    try:
        return max(float(value or 0), 0.0)
    except ValueError:
        return 0.0


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value).strip() else None
