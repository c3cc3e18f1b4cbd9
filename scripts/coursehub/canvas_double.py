"""A TEST DOUBLE of Canvas: a loopback HTTP server that answers the four reads coursehub's sync makes.

Canvas cannot run here, so the tests and `make bench` sync from this double instead. It serves the shapes
Canvas documents (and its source writes): pages of at most 100 with an opaque ``Link: <…>; rel="next"`` URL,
``total_students`` counting distinct students, a group set's ``groups_count``, ``unassigned_users_count`` and,
while an auto-assign runs, ``progress``; ``group_ids`` on each enrollment's ``user``; ``login_id`` left out when
the token may not see it; 403 "Rate Limit Exceeded" and 429 when throttling. It is never evidence on its own:
what it stands in for is named in FACTS.md and the Canvas docs, and the hub side it feeds is the real one.

Faults are injected by name (``Fault``) for the next requests, and the course is changed in place (rename a
group, move or withdraw a student) between syncs.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Student:
    canvas_id: int
    login_id: str
    sis_user_id: str
    sections: int = 1  # enrolled in this many sections: listed once per section, as Canvas lists enrollments


@dataclass
class CanvasCourse:
    """One course, one group set: what the double serves (change it between syncs)."""

    course_id: int = 1001
    group_set_id: int = 77
    group_set_name: str = "Project groups"
    groups: dict[int, str] = field(default_factory=dict)  # id -> name
    students: list[Student] = field(default_factory=list)
    membership: dict[int, int] = field(default_factory=dict)  # student canvas id -> group id
    concluded: bool = False
    progress: str = ""  # "running" while an auto-assign runs
    show_login_id: bool = True

    @classmethod
    def generated(cls, groups: int, per_group: int, unassigned: int = 0, domain: str = "") -> CanvasCourse:
        course = cls()
        suffix = f"@{domain}" if domain else ""
        for g in range(groups):
            gid = 5000 + g
            course.groups[gid] = f"Team {g + 1}"
            for k in range(per_group):
                sid = 100000 + g * per_group + k
                course.students.append(Student(sid, f"student-{sid}{suffix}", f"sis{sid}"))
                course.membership[sid] = gid
        for k in range(unassigned):
            sid = 900000 + k
            course.students.append(Student(sid, f"student-{sid}{suffix}", f"sis{sid}"))
        return course

    def student(self, login_id: str) -> Student:
        return next(s for s in self.students if s.login_id == login_id)

    def move(self, login_id: str, group_id: int) -> None:
        self.membership[self.student(login_id).canvas_id] = group_id

    def withdraw(self, login_id: str) -> None:
        s = self.student(login_id)
        self.students.remove(s)
        self.membership.pop(s.canvas_id, None)

    def unassign(self, login_id: str) -> None:
        self.membership.pop(self.student(login_id).canvas_id, None)

    def add_group(self, group_id: int, name: str) -> None:
        self.groups[group_id] = name

    def delete_group(self, group_id: int) -> None:
        self.groups.pop(group_id)
        self.membership = {s: g for s, g in self.membership.items() if g != group_id}


# Faults, each for the next `count` requests that match `path` (a substring; "" matches every request):
# "403-rate" (403 Rate Limit Exceeded), "429", "500", "slow" (answers after `seconds`), "no-next" (a page
# without its next link), "404" (a page answers 404), "bad-json" (200 with something that is not JSON).
@dataclass
class Fault:
    kind: str
    path: str = ""
    count: int = 1
    seconds: float = 0.0
    after: int = 0  # let this many matching requests through first (e.g. a 404 half-way through the pages)


class CanvasDouble:
    """``with CanvasDouble(course) as canvas:`` serves on ``canvas.url`` until the block ends."""

    def __init__(self, course: CanvasCourse, token: str | None = None) -> None:
        self.course = course
        self.token = token or secrets.token_urlsafe(24)
        self.faults: list[Fault] = []
        self.requests = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._cursors: dict[str, tuple[str, int]] = {}  # opaque next tokens -> (listing, offset)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CanvasDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def inject(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def _fault(self, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.path in path:
                    if f.after:
                        f.after -= 1
                        return None
                    f.count -= 1
                    if f.count <= 0:
                        self.faults.remove(f)
                    return f
        return None

    # --- what Canvas answers -------------------------------------------------------------------

    def _listing(self, name: str) -> list[dict[str, Any]]:
        c = self.course
        if name == "groups":
            return [
                {"id": gid, "name": c.groups[gid], "group_category_id": c.group_set_id, "course_id": c.course_id}
                for gid in sorted(c.groups, key=lambda g: c.groups[g])  # Canvas lists them by name
            ]
        if name == "categories":
            return [{"id": c.group_set_id, "name": c.group_set_name, "course_id": c.course_id}]
        rows = []
        for s in [] if c.concluded else c.students:
            user: dict[str, Any] = {"id": s.canvas_id, "name": f"Student {s.canvas_id}", "sis_user_id": s.sis_user_id}
            if c.show_login_id:
                user["login_id"] = s.login_id
            group = c.membership.get(s.canvas_id)
            user["group_ids"] = [group] if group in c.groups else []
            for section in range(s.sections):
                rows.append(
                    {
                        "id": s.canvas_id * 10 + section,
                        "user_id": s.canvas_id,
                        "course_id": c.course_id,
                        "type": "StudentEnrollment",
                        "enrollment_state": "active",
                        "user": user,
                    }
                )
        return rows

    def _answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, str]:
        """(status, JSON body, the next page's URL or "")."""
        c = self.course
        if "cursor" in query:  # a next link: opaque to the client
            listing, offset = self._cursors.get(query["cursor"][0], ("", -1))
            if offset < 0:
                return 404, {"errors": [{"message": "The specified resource does not exist."}]}, ""
            return self._page(listing, offset, int(query.get("per_page", ["10"])[0]))
        parts = path.strip("/").split("/")
        if parts[:3] != ["api", "v1", "courses"] and parts[:3] != ["api", "v1", "group_categories"]:
            return 404, {"errors": [{"message": "not found"}]}, ""
        if parts[2] == "courses":
            if len(parts) < 4 or parts[3] != str(c.course_id):
                return 404, {"errors": [{"message": "The specified resource does not exist."}]}, ""
            if len(parts) == 4:
                distinct = 0 if c.concluded else len(c.students)
                return (
                    200,
                    {
                        "id": c.course_id,
                        "name": "Stat 159",
                        "workflow_state": "completed" if c.concluded else "available",
                        "concluded": c.concluded,
                        "total_students": distinct,
                    },
                    "",
                )
            listing = {"enrollments": "enrollments", "group_categories": "categories"}.get(parts[4])
            if listing is None:
                return 404, {"errors": [{"message": "not found"}]}, ""
            return self._page(listing, 0, int(query.get("per_page", ["10"])[0]))
        if len(parts) < 4 or parts[3] != str(c.group_set_id):
            return 404, {"errors": [{"message": "The specified resource does not exist."}]}, ""
        if len(parts) == 4:
            body: dict[str, Any] = {"id": c.group_set_id, "name": c.group_set_name, "course_id": c.course_id}
            includes = query.get("includes[]", [])
            if "groups_count" in includes:
                body["groups_count"] = len(c.groups)
            if "unassigned_users_count" in includes:
                body["unassigned_users_count"] = sum(
                    1 for s in c.students if c.membership.get(s.canvas_id) not in c.groups
                )
            if "progress_url" in includes and c.progress:
                body["progress"] = {"id": 1, "tag": "assign_unassigned_members", "workflow_state": c.progress}
            return 200, body, ""
        if parts[4] == "groups":
            return self._page("groups", 0, int(query.get("per_page", ["10"])[0]))
        return 404, {"errors": [{"message": "not found"}]}, ""

    def _page(self, listing: str, offset: int, per_page: int) -> tuple[int, Any, str]:
        items = self._listing(listing)
        size = max(1, min(per_page, 100))
        page = items[offset : offset + size]
        nxt = ""
        if offset + size < len(items):
            cursor = secrets.token_urlsafe(8)
            self._cursors[cursor] = (listing, offset + size)
            nxt = f"{self.url}/api/v1/page?cursor={cursor}&per_page={size}"
        return 200, page, nxt

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: the tests read the hub's log, not this one
                pass

            def do_GET(self) -> None:
                with double.lock:
                    double.requests += 1
                    double.in_flight += 1
                    double.most_in_flight = max(double.most_in_flight, double.in_flight)
                try:
                    self._get()
                finally:
                    with double.lock:
                        double.in_flight -= 1

            def _get(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {double.token}":
                    return self._send(401, {"errors": [{"message": "Invalid access token."}]})
                url = urllib.parse.urlsplit(self.path)
                fault = double._fault(url.path + "?" + url.query)
                if fault and fault.kind == "slow":
                    time.sleep(fault.seconds)
                elif fault and fault.kind == "403-rate":
                    return self._send(403, None, raw=b"403 Forbidden (Rate Limit Exceeded)\n", remaining="0.0")
                elif fault and fault.kind in ("429", "500", "404"):
                    return self._send(int(fault.kind), {"errors": [{"message": fault.kind}]})
                elif fault and fault.kind == "bad-json":
                    return self._send(200, None, raw=b"<html>maintenance</html>")
                status, body, nxt = double._answer(url.path, urllib.parse.parse_qs(url.query))
                if fault and fault.kind == "no-next":
                    nxt = ""
                self._send(status, body, nxt=nxt)

            def _send(
                self, status: int, body: Any, nxt: str = "", raw: bytes | None = None, remaining: str = "700.0"
            ) -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("X-Rate-Limit-Remaining", remaining)
                links = [f'<{self.path}>; rel="current"']
                if nxt:
                    links.insert(0, f'<{nxt}>; rel="next"')
                self.send_header("link", ",".join(links))  # lower-case: clients must not depend on the case
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return None

        return Handler
