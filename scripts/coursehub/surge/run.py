"""One surge against one running hub: locust headless in a process of its own, bounded, and what it found.

The roster's students arrive at a constant rate over ``ramp`` seconds, each keeps JupyterLab's rhythm for
``rhythm`` seconds once in (``students.py``). Locust stops by itself when every student is done, at
``max_requests`` requests, or at its ``--run-time`` (ramp + rhythm + the slack for getting in); the runner kills
its process group if it is still there a minute after that. A fault (``faults.py``) runs in this process while
locust runs, at its moment.

The hub's CPU time over the surge is read from /proc: the hub process and its managed services (coursehub's
reconciler), never the servers or the proxy.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursehub.hub.local import LocalHub, processes
from coursehub.surge.hubs import Roster

STUDENTS = Path(__file__).resolve().with_name("students.py")
LOCUST = Path(sys.executable).with_name("locust")
SLACK = 120.0  # seconds past ramp + rhythm for the last students to get in and finish
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Surge:
    """What one surge found on one hub."""

    hub: str  # "coursehub" or "plain"
    students: dict[str, dict[str, Any]]
    failures: list[dict[str, Any]]
    logins: list[float]
    requests: int
    capped: bool
    hub_cpu: float
    began: float
    ended: float
    timeline: dict[str, list[int]] = field(default_factory=dict)  # per second: server ok, failed; hub ok, failed
    fault: dict[str, Any] = field(default_factory=dict)

    def in_seconds(self) -> list[float]:
        return sorted(s["login_to_server"] for s in self.students.values() if s["login_to_server"] is not None)

    @property
    def never_in(self) -> list[str]:
        return sorted(n for n, s in self.students.items() if s["login_to_server"] is None)

    def p(self, q: float) -> float:
        found = self.in_seconds()
        if not found:
            return float("nan")
        if len(found) == 1:
            return found[0]
        return statistics.quantiles(found, n=100, method="inclusive")[int(q) - 1]

    def errors(self, between: tuple[float, float] | None = None, expected: set[str] = frozenset()) -> int:  # type: ignore[assignment]
        """Failed requests (outside `between`, a fault's window, and not of the `expected` students), plus the
        students who never got in."""
        failed = [
            f
            for f in self.failures
            if f["student"] not in expected and not (between and between[0] <= f["t"] <= between[1])
        ]
        return len(failed) + len(self.never_in)


def hub_cpu(hub: LocalHub) -> float:
    """CPU seconds of the hub process and its managed services (children that are not servers) so far."""
    if hub.process is None or hub.process.poll() is not None:
        return 0.0
    pids = [hub.process.pid] + [
        pid for pid, parent, cmdline in processes() if parent == hub.process.pid and "coursehub_hub" in cmdline
    ]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICK


def surge(
    hub: LocalHub,
    name: str,
    roster: Roster,
    ramp: float,
    rhythm: float,
    max_requests: int,
    fault: Callable[[LocalHub, float], dict[str, Any]] | None = None,
) -> Surge:
    """Run one surge of `roster` against the running `hub`; `fault(hub, began)` runs meanwhile in this process."""
    workdir = Path(hub.plan.workdir)
    results = workdir / "surge-results.json"
    results.unlink(missing_ok=True)
    plan = workdir / "surge-plan.json"
    arrivals = roster.arrivals()
    plan.write_text(
        json.dumps(
            {
                "password": hub.plan.password,
                "students": arrivals,
                "accounts": roster.accounts,
                "rhythm": rhythm,
                "results": str(results),
                "max_requests": max_requests,
            }
        )
    )
    plan.chmod(0o600)  # it holds the roster and the hub's password
    users = len(arrivals)
    run_time = int(ramp + rhythm + SLACK)
    command = [
        str(LOCUST),
        "-f",
        str(STUDENTS),
        "--headless",
        "--host",
        hub.plan.url,
        "--users",
        str(users),
        "--spawn-rate",
        f"{users / ramp:.3f}",
        "--run-time",
        f"{run_time}s",
        "--stop-timeout",
        "10",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    cpu_before, began = hub_cpu(hub), time.time()
    found: dict[str, Any] = {}
    with open(workdir / "locust.log", "ab") as log:
        locust = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SURGE_PLAN": str(plan)},
            start_new_session=True,
        )
        try:
            if fault is not None:
                runner = threading.Thread(target=lambda: found.update(fault(hub, began)), daemon=True)
                runner.start()
            cpu_at_end = _wait(locust, run_time + 60, hub)
            if fault is not None:
                runner.join(timeout=600)
        finally:
            if locust.poll() is None:
                os.killpg(locust.pid, signal.SIGKILL)
                locust.wait()
    ended = time.time()
    if not results.exists():
        raise RuntimeError(f"locust wrote no results (its log: {workdir / 'locust.log'})")
    data = json.loads(results.read_text())
    return Surge(
        hub=name,
        students=data["students"],
        failures=data["failures"],
        logins=data["logins"],
        requests=data["requests"],
        capped=data["capped"],
        hub_cpu=max(0.0, cpu_at_end - cpu_before),  # a run whose hub restarted counts the new process only
        began=began,
        ended=ended,
        timeline=data["timeline"],
        fault=found,
    )


def _wait(locust: subprocess.Popen[bytes], timeout: float, hub: LocalHub) -> float:
    """Wait for locust (at most `timeout` s); the hub's CPU seconds when it ended."""
    deadline = time.monotonic() + timeout
    cpu = hub_cpu(hub)
    while time.monotonic() < deadline:
        if locust.poll() is not None:
            return cpu
        cpu = hub_cpu(hub) or cpu
        time.sleep(0.5)
    os.killpg(locust.pid, signal.SIGTERM)  # past its own bound: locust writes its results as it quits
    try:
        locust.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    return cpu
