"""`make demo` as a newcomer meets it: where to go, and the log kept after it stops (env builds: test_image_env.py).

The demo runs for real (the entry point the Makefile calls, a real hub and
proxy on 127.0.0.1) and is stopped with Ctrl-C (SIGINT), as a person stops it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from coursehub.paths import ROOT
from helpers.commands import COMMAND
from helpers.files import edit

pytestmark = pytest.mark.live

ALTERNATIVE_TAG = "2026.11.1"  # stat159's values deploy 2023.03.1


def run_demo_until_ready(tmp_path: Path, *args: str, timeout: float = 1200) -> tuple[str, str]:
    """Start the demo, return (output up to "Ctrl-C stops", output after a Ctrl-C); never leaves it running."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # its workdir and kept log
    demo = subprocess.Popen(
        [COMMAND, "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops"):
                ready.set()
        ready.set()  # the demo ended

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        ready.wait(timeout)
        before = "".join(lines)
        assert demo.poll() is None, f"the demo stopped by itself:\n{before}"
        url = re.search(r"open http://(127\.0\.0\.1|hub\.localhost):(\d+)/hub/login", before)
        assert url, before
        # The URL it prints for a group's account is the hub's: it asks an anonymous visitor to log in. (A browser
        # resolves hub.localhost to loopback; this machine's resolver may not, so the request names it as Host.)
        r = requests.get(
            f"http://127.0.0.1:{url[2]}/hub/spawn/collab-shared-1",
            headers={"Host": f"{url[1]}:{url[2]}"},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 302 and "/hub/login" in r.headers["Location"], (r.status_code, r.headers)
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
        reader.join(timeout=10)
        return before, "".join(lines)[len(before) :]
    finally:
        if demo.poll() is None:  # a failed check above: stop it as a person does, so it stops its hub and proxy
            demo.send_signal(signal.SIGINT)  # (a SIGKILL of the demo alone left them running)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()


def test_the_demo_runs_another_image_variant_says_where_to_go_and_keeps_its_log(tmp_path: Path) -> None:
    before, after = run_demo_until_ready(tmp_path, "--course", "stat159", "--tag", ALTERNATIVE_TAG)
    # stat159 runs servers on their own origins: the demo at hub.localhost, each server at <user>.hub.localhost
    url = re.search(r"open (http://hub\.localhost:\d+)/hub/login", before)[1]  # type: ignore[index]
    assert (
        f"stat159-image:{ALTERNATIVE_TAG}'s environment (TAG={ALTERNATIVE_TAG}; the values deploy 2023.03.1)" in before
    )
    for account in ("collab-shared-1", "collab-shared-2"):
        assert f"its shared account opens at {url}/hub/spawn/{account}" in before
    assert f"admin page ({url}/hub/admin)" in before and '"Start Server"' in before
    assert '"Authorize access" page' in before and 'Click "Authorize"' in before
    workdir = re.search(r"hub log: (\S+)/hub\.log \(kept as (\S+) when the demo stops\)", before)
    assert workdir, before
    kept = Path(workdir[2])
    assert f"The hub log is kept in {kept}" in after
    assert kept.parent == tmp_path and kept.is_file() and oct(kept.stat().st_mode & 0o777) == "0o600"
    assert "JupyterHub is now running" in kept.read_text()  # the hub's own log, whole
    assert not Path(workdir[1]).exists()  # the rest of the demo's folder is gone


def test_an_unknown_tag_is_one_line_naming_the_image_folder(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [COMMAND, "demo", "--course", "stat159", "--tag", "1999.01.1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "image/stat159: TAG: there is no image variant '1999.01.1'" in result.stderr, result.stderr
    assert "use one of: 2023.03.1, 2026.11.1" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_a_hub_that_fails_to_start_is_named_by_the_log_that_outlives_the_demo(tmp_path: Path, values_dir: Path) -> None:
    edit(
        values_dir / "stat159.yaml", {"jupyterhub.hub.extraConfig.zz-broken": "raise RuntimeError('broken on purpose')"}
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(scratch),
        "COURSEHUB_VALUES": str(values_dir),
    }
    result = subprocess.run(
        [COMMAND, "demo", "--course", "stat159"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode != 0, result.stdout
    kept = list(scratch.iterdir())
    assert len(kept) == 1 and kept[0].suffix == ".log", kept  # the workdir is gone, its log kept
    assert f"{kept[0]}: the hub exited at start-up" in result.stderr, result.stderr
    assert "broken on purpose" in kept[0].read_text()
