"""Archive, prune and restore of home directories: the module on real folders, the Jobs rendered by real Helm.

Every failure case of issue 10 is a test here on real files: a file written while
it is archived, a missing home, an unreadable file (read by a real unprivileged
process), a full archive volume (the run's byte cap, which fails exactly as ENOSPC
does), a sparse file, a crafted manifest, missing and cut manifests. Issue 23's
findings too: a real process racing link swaps against the archive, a 64 GiB file
of holes, per-account budgets, SIGTERM, homes named by KubeSpawner 7's slugs, and
bad restore input.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import random
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coursehub.chart import kube
from coursehub.paths import CHART
from helpers.chart import ARCHIVE_JOBS, is_coursehubs, render_chart
from helpers.commands import coursehub

MODULE = CHART / "files" / "archive" / "coursehub_archive.py"
_spec = importlib.util.spec_from_file_location("coursehub_archive", MODULE)
assert _spec and _spec.loader
archiving = importlib.util.module_from_spec(_spec)
sys.modules["coursehub_archive"] = archiving  # dataclasses look their module up by name
_spec.loader.exec_module(archiving)

STAMP = "20261125T000000Z"


def make_home(homes: Path, account: str) -> Path:
    home = homes / account
    (home / "project" / "data").mkdir(parents=True)
    (home / "project" / "analysis.ipynb").write_text('{"cells": []}\n')
    (home / "project" / "data" / "big.bin").write_bytes(os.urandom(300_000))
    (home / ".hidden").write_text("dotfile\n")
    (home / "project" / "run.sh").write_text("#!/bin/sh\n")
    (home / "project" / "run.sh").chmod(0o755)
    (home / "empty" / "nested-empty").mkdir(parents=True)
    (home / "empty").chmod(0o750)
    return home


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    make_home(tmp_path / "homes", "collab-shared-1")
    return tmp_path / "homes"


def snapshot(home: Path) -> dict[str, tuple[str, int, bytes]]:
    """Every entry's kind, mode and content (files) below `home`."""
    out: dict[str, tuple[str, int, bytes]] = {}
    for p in sorted(home.rglob("*")):
        st = p.lstat()
        kind = "dir" if p.is_dir() and not p.is_symlink() else "file" if p.is_file() and not p.is_symlink() else "other"
        out[str(p.relative_to(home))] = (kind, st.st_mode & 0o777, p.read_bytes() if kind == "file" else b"")
    return out


def run_module(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    """The module as the Job runs it: `python coursehub_archive.py ...` (optionally as an unprivileged user).

    As another user it runs on the system's plain Python (the venv's interpreter lives under /root), from a
    copy in a folder that user can read, as the Job mounts the one file: the checkout's own folders may not be
    open to others (a clone under a 0700 home or `mktemp -d` folder).
    """
    if user is None:
        return subprocess.run(
            [sys.executable, str(MODULE), *args], capture_output=True, text=True, check=False, timeout=120
        )
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin") or pytest.skip("no system python3")
    mounted = Path(tempfile.mkdtemp(prefix="coursehub-archive-module-"))
    try:
        mounted.chmod(0o755)
        module = mounted / MODULE.name
        shutil.copyfile(MODULE, module)
        module.chmod(0o644)
        return subprocess.run(
            [python, str(module), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            user=user,
            group=user,
            extra_groups=[],
        )
    finally:
        shutil.rmtree(mounted)


def no_partials(dest: Path) -> None:
    assert not list(dest.glob("*.partial")), list(dest.iterdir())


def test_an_archive_restores_byte_identical_with_modes_and_empty_folders(homes: Path, tmp_path: Path) -> None:
    home = homes / "collab-shared-1"
    before = snapshot(home)
    result = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive", stamp=STAMP)
    assert result.archive.name == f"collab-shared-1-{STAMP}.tar.gz"
    assert (result.files, result.warnings) == (4, [])
    manifest = json.loads(archiving.manifest_path(result.archive).read_text())
    assert {e["path"] for e in manifest["entries"]} == set(before)
    assert manifest["archive_sha256"] == hashlib.sha256(result.archive.read_bytes()).hexdigest()
    done = archiving.restore_account(result.archive, homes, account="collab-shared-1", stamp="r1")
    assert done.folder == home / "restored-r1" and done.files == 4 and done.not_restored == []
    assert snapshot(done.folder) == before
    assert (done.folder / "empty" / "nested-empty").is_dir()


def test_symlinks_and_fifos_are_recorded_and_reported_never_dropped_silently(homes: Path, tmp_path: Path) -> None:
    home = homes / "collab-shared-1"
    (home / "link-to-etc").symlink_to("/etc/passwd")
    os.mkfifo(home / "project" / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    with contextlib.chdir(home):  # a socket's path is at most 107 bytes: bind it by name, whatever tmp_path's depth
        sock.bind("kernel.sock")
    try:
        lines, ok = archiving.run_archive(homes, tmp_path / "archive", ["collab-shared-1"], stamp=STAMP)
    finally:
        sock.close()
    assert ok, lines
    assert "warning collab-shared-1: symlink link-to-etc recorded in the manifest, not archived" in lines
    assert "warning collab-shared-1: fifo project/pipe recorded in the manifest, not archived" in lines
    assert "warning collab-shared-1: socket kernel.sock recorded in the manifest, not archived" in lines
    archive = tmp_path / "archive" / f"collab-shared-1-{STAMP}.tar.gz"
    entries = {e["path"]: e for e in json.loads(archiving.manifest_path(archive).read_text())["entries"]}
    assert entries["link-to-etc"] == {"path": "link-to-etc", "type": "symlink", "target": "/etc/passwd"}
    result = run_module("restore", "--homes", str(homes), "--archive", str(archive))
    assert result.returncode == 0, result.stderr
    assert "not restored collab-shared-1: symlink link-to-etc -> /etc/passwd (recorded in the manifest only)" in (
        result.stdout
    )
    assert "not restored collab-shared-1: fifo project/pipe" in result.stdout
    restored = next(home.glob("restored-*"))
    assert not (restored / "link-to-etc").exists() and not (restored / "project" / "pipe").exists()
    assert (restored / "project" / "run.sh").read_text() == "#!/bin/sh\n"


def test_a_file_written_while_archived_gives_an_archive_that_matches_its_manifest(homes: Path, tmp_path: Path) -> None:
    """A group still writing: the bytes hashed are the bytes archived, so restore succeeds."""
    busy = homes / "collab-shared-1" / "project" / "busy.bin"
    busy.write_bytes(os.urandom(48 << 20))
    stop = threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        fd = os.open(busy, os.O_WRONLY)
        try:
            while not stop.is_set():
                os.pwrite(fd, os.urandom(1 << 16), (writes * 7919 << 12) % ((48 << 20) - (1 << 16)))
                writes += 1
        finally:
            os.close(fd)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while writes < 10:
            time.sleep(0.001)
        result = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive", running=True)
    finally:
        stop.set()
        thread.join()
    assert "project/busy.bin changed while it was archived: the archive holds the bytes read" in result.warnings
    assert result.warnings[0] == "its server was running: files being written may be caught half-way"
    done = archiving.restore_account(result.archive, homes, path="project/busy.bin", stamp="r")
    entry = next(
        e
        for e in json.loads(archiving.manifest_path(result.archive).read_text())["entries"]
        if e["path"].endswith("busy.bin")
    )
    assert hashlib.sha256((done.folder / "project" / "busy.bin").read_bytes()).hexdigest() == entry["sha256"]


def test_each_account_is_archived_on_its_own_and_the_exit_code_says_if_all_did(tmp_path: Path) -> None:
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    make_home(homes, "alice")
    make_home(homes, "carol")
    dest.mkdir()
    result = run_module("archive", "--homes", str(homes), "--dest", str(dest), "alice", "bob", "carol")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("archived alice: alice-") and lines[2].startswith("archived carol: carol-")
    assert lines[1] == f"FAILED bob: has no home folder {homes / 'bob'} (never started a server?)"
    assert lines[-1] == "3 accounts: 1 failed (exit code 1)"
    assert "Traceback" not in result.stdout + result.stderr
    assert sorted(p.name.split("-")[0] for p in dest.glob("*.tar.gz")) == ["alice", "carol"]
    no_partials(dest)


def test_an_unreadable_file_fails_its_account_only_read_by_a_real_unprivileged_user() -> None:
    """chmod 000 means nothing to root, so the module runs as `nobody` here, as the Job runs as the singleuser uid."""
    base = Path(tempfile.mkdtemp(prefix="coursehub-archive-"))
    try:
        base.chmod(0o755)
        homes, dest = base / "homes", base / "archive"
        for account in ("alice", "bob"):
            make_home(homes, account)
        (homes / "alice" / "project" / "secret.txt").write_text("mine\n")
        (homes / "alice" / "project" / "secret.txt").chmod(0o000)
        dest.mkdir()
        for path in (homes, dest, *homes.rglob("*")):
            os.chown(path, 65534, 65534, follow_symlinks=False)
        result = run_module("archive", "--homes", str(homes), "--dest", str(dest), "--all", user=65534)
        assert result.returncode == 1, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == (
            "FAILED alice: cannot read project/secret.txt: Permission denied "
            "(make it readable or remove it, then archive again)"
        )
        assert lines[1].startswith("archived bob: bob-")
        assert [p.name.split("-")[0] for p in dest.glob("*.tar.gz")] == ["bob"]
        no_partials(dest)
    finally:
        shutil.rmtree(base)


def test_a_full_archive_volume_fails_that_account_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    make_home(homes, "alice")
    make_home(homes, "bob")
    (homes / "bob" / "model.bin").write_bytes(os.urandom(2 << 20))  # random: gzip cannot shrink it
    make_home(homes, "carol")
    dest.mkdir()
    lines, ok = archiving.run_archive(homes, dest, ["alice", "bob", "carol"], max_bytes=1 << 20, stamp=STAMP)
    assert not ok
    assert lines[1] == f"FAILED bob: disk full while writing bob-{STAMP}.tar.gz: nothing kept"
    assert lines[0].startswith("archived alice") and lines[2].startswith("archived carol")
    assert sorted(p.name for p in dest.iterdir()) == [
        f"alice-{STAMP}.manifest.json",
        f"alice-{STAMP}.tar.gz",
        f"carol-{STAMP}.manifest.json",
        f"carol-{STAMP}.tar.gz",
        f"report-{STAMP}.txt",
    ]
    assert (dest / f"report-{STAMP}.txt").read_text().splitlines() == lines


def test_a_sparse_file_is_stored_as_its_data_and_restored_with_its_holes(homes: Path, tmp_path: Path) -> None:
    sparse = homes / "collab-shared-1" / "sparse.img"
    with open(sparse, "wb") as f:
        f.truncate(512 << 20)
        f.seek(100 << 20)
        f.write(b"middle" * 1000)
        f.seek((512 << 20) - 5)
        f.write(b"tail!")
    if sparse.stat().st_blocks * 512 > 1 << 20:
        pytest.skip(f"{tmp_path} cannot hold sparse files, so there is nothing to test here")
    result = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive", stamp=STAMP)
    assert result.archive.stat().st_size < 1 << 20
    entry = next(
        e
        for e in json.loads(archiving.manifest_path(result.archive).read_text())["entries"]
        if e["path"] == "sparse.img"
    )
    assert entry["size"] == 512 << 20 and entry["stored"] < 1 << 20
    with tarfile.open(result.archive) as tar:
        assert tar.getmember("sparse.img").pax_headers["COURSEHUB.sparse.size"] == str(512 << 20)
    done = archiving.restore_account(result.archive, homes, stamp="r")
    restored = done.folder / "sparse.img"
    assert restored.stat().st_size == 512 << 20
    assert restored.stat().st_blocks * 512 < 1 << 20, "restore wrote the holes as real blocks"
    with open(restored, "rb") as f:
        f.seek(100 << 20)
        assert f.read(6000) == b"middle" * 1000
        f.seek((512 << 20) - 5)
        assert f.read() == b"tail!"
        f.seek(1 << 20)
        assert f.read(1 << 20) == bytes(1 << 20)


def test_restore_checks_the_cap_and_the_free_space_before_writing_anything(homes: Path, tmp_path: Path) -> None:
    result = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive", stamp=STAMP)
    with pytest.raises(archiving.ArchiveError, match=r"more than the cap of 1000: nothing restored"):
        archiving.restore_account(result.archive, homes, max_bytes=1000)
    manifest = archiving.manifest_path(result.archive)
    data = json.loads(manifest.read_text())
    data["entries"][-1]["stored"] = 1 << 60  # claims more than any disk holds: refused before anything is read
    manifest.write_text(json.dumps(data))
    with pytest.raises(archiving.ArchiveError, match=r"needs \d+ bytes, .* free: nothing restored"):
        archiving.restore_account(result.archive, homes)
    assert not list((homes / "collab-shared-1").glob("restored-*"))


def crafted(archive: Path, tmp_path: Path, name: str) -> None:
    """Rewrite `archive` and its manifest consistently with one more file entry called `name`."""
    manifest = archiving.manifest_path(archive)
    data = json.loads(manifest.read_text())
    payload = b"owned\n"
    evil = tmp_path / "payload"
    evil.write_bytes(payload)
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.add(evil, arcname=name)
    data["entries"] = [
        {
            "path": name,
            "type": "file",
            "mode": 0o777,
            "size": len(payload),
            "stored": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
    ]
    data["archive_sha256"] = hashlib.sha256(archive.read_bytes()).hexdigest()
    manifest.write_text(json.dumps(data))


@pytest.mark.parametrize("name", ["../victim.txt", "project/../../victim.txt", "/tmp/victim.txt", "a//b"])
def test_restore_confines_every_manifest_path_to_the_home(homes: Path, tmp_path: Path, name: str) -> None:
    victim = homes / "victim.txt"
    victim.write_text("not yours\n")
    victim.chmod(0o600)
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive").archive
    crafted(archive, tmp_path, name)
    result = run_module("restore", "--homes", str(homes), "--archive", str(archive))
    assert result.returncode == 1
    assert (
        result.stderr
        == f"error: {archiving.manifest_path(archive)}: entry {name!r} leaves the home folder: not restored\n"
    )
    assert victim.read_text() == "not yours\n" and victim.stat().st_mode & 0o777 == 0o600
    assert not list((homes / "collab-shared-1").glob("restored-*"))


def test_restore_never_follows_a_symlink_a_student_planted(homes: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive").archive
    home = homes / "collab-shared-1"
    (home / "restored-planted").symlink_to(outside)
    with pytest.raises(archiving.ArchiveError, match="restored-planted already exists: not overwritten"):
        archiving.restore_account(archive, homes, stamp="planted")
    shutil.move(home, tmp_path / "real-home")
    home.symlink_to(tmp_path / "real-home")  # the home itself swapped for a link
    with pytest.raises(archiving.ArchiveError, match=r"cannot open home folder .*: nothing restored"):
        archiving.restore_account(archive, homes, stamp="r")
    assert list(outside.iterdir()) == [] and not list((tmp_path / "real-home").glob("restored-r*"))


def test_a_missing_or_cut_manifest_is_one_line(homes: Path, tmp_path: Path) -> None:
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive").archive
    manifest = archiving.manifest_path(archive)
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2])
    result = run_module("restore", "--homes", str(homes), "--archive", str(archive))
    assert (result.returncode, result.stderr) == (
        1,
        f"error: {manifest} cannot be read (JSONDecodeError: cut short?): not restored\n",
    )
    manifest.unlink()
    result = run_module("restore", "--homes", str(homes), "--archive", str(archive))
    assert (result.returncode, result.stderr) == (
        1,
        f"error: {manifest} is missing: cannot restore {archive.name} without it\n",
    )
    assert not list((homes / "collab-shared-1").glob("restored-*"))


def test_restore_refuses_a_damaged_or_foreign_archive(homes: Path, tmp_path: Path) -> None:
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive").archive
    with pytest.raises(archiving.ArchiveError, match="not collab-shared-2's"):
        archiving.restore_account(archive, homes, account="collab-shared-2")
    with open(archive, "ab") as f:
        f.write(b"garbage")
    with pytest.raises(archiving.ArchiveError, match="does not match its manifest"):
        archiving.restore_account(archive, homes)
    with open(archive, "r+b") as f:
        f.truncate(archive.stat().st_size // 2)
    result = run_module("restore", "--homes", str(homes), "--archive", str(archive))
    assert result.returncode == 1 and result.stderr.startswith(f"error: {archive.name} is damaged or cut short (")
    assert len(result.stderr.splitlines()) == 1
    assert not list((homes / "collab-shared-1").glob("restored-*"))


def test_an_archive_of_the_format_before_issue_23_still_restores(homes: Path, tmp_path: Path) -> None:
    """Format 2 had no `folder` and hashed a sparse file over its holes too (as zeros)."""
    home = homes / "collab-shared-1"
    holey_file(home / "sparse.img", 8 << 20)
    before = snapshot(home)
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive").archive
    assert archive is not None
    manifest = archiving.manifest_path(archive)
    data = json.loads(manifest.read_text())
    del data["folder"]
    data["format"] = "coursehub-archive/2"
    sparse = next(e for e in data["entries"] if e["path"] == "sparse.img")
    sparse["sha256"] = hashlib.sha256((home / "sparse.img").read_bytes()).hexdigest()
    manifest.write_text(json.dumps(data))
    done = archiving.restore_account(archive, homes, account="collab-shared-1", stamp="old")
    assert snapshot(done.folder) == before
    sparse["sha256"] = "0" * 64
    manifest.write_text(json.dumps(data))
    with pytest.raises(archiving.ArchiveError, match=r"sparse\.img differs from the manifest: nothing kept"):
        archiving.restore_account(archive, homes, stamp="bad")
    data["format"], data["folder"] = "coursehub-archive/3", "collab-shared-2"  # not the account's home folder
    manifest.write_text(json.dumps(data))
    with pytest.raises(archiving.ArchiveError, match="folder 'collab-shared-2' is not the account's home folder"):
        archiving.restore_account(archive, homes, stamp="other")
    assert sorted(p.name for p in homes.iterdir()) == ["collab-shared-1"]
    assert [p.name for p in home.glob("restored-*")] == ["restored-old"]


def test_one_folder_or_one_file_comes_back_beside_the_home_never_over_it(homes: Path, tmp_path: Path) -> None:
    home = homes / "collab-shared-1"
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive").archive
    (home / "project" / "analysis.ipynb").write_text("changed since\n")
    folder = archiving.restore_account(archive, homes, path="project/data/", stamp="a")
    assert sorted(str(p.relative_to(folder.folder)) for p in folder.folder.rglob("*")) == [
        "project",
        "project/data",
        "project/data/big.bin",
    ]
    assert (folder.folder / "project" / "data" / "big.bin").read_bytes() == (home / "project/data/big.bin").read_bytes()
    # The restored folder's parent comes back with its archived mode (the restore makes folders 0o700 first).
    assert (folder.folder / "project").stat().st_mode & 0o777 == (home / "project").stat().st_mode & 0o777 == 0o755
    one = archiving.restore_account(archive, homes, path="project/analysis.ipynb", stamp="b")
    assert (one.folder / "project" / "analysis.ipynb").read_text() == '{"cells": []}\n'
    assert (home / "project" / "analysis.ipynb").read_text() == "changed since\n"
    with pytest.raises(archiving.ArchiveError, match="restored-b already exists: not overwritten"):
        archiving.restore_account(archive, homes, path="project", stamp="b")
    with pytest.raises(archiving.ArchiveError, match="holds no file or folder 'thesis'"):
        archiving.restore_account(archive, homes, path="thesis")


def test_a_removed_home_is_restored_into_a_new_one(homes: Path, tmp_path: Path) -> None:
    before = snapshot(homes / "collab-shared-1")
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive").archive
    shutil.rmtree(homes / "collab-shared-1")
    done = archiving.restore_account(archive, homes, stamp="r")
    assert snapshot(done.folder) == before


def test_the_whole_course_is_every_home_folder(tmp_path: Path) -> None:
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    for account in ("alice", "bob", "collab-shared-1"):
        make_home(homes, account)
    (homes / "lost+found").mkdir()
    (homes / ".snapshot").mkdir()
    (homes / "stray-file").write_text("x")
    dest.mkdir()
    result = run_module("archive", "--homes", str(homes), "--dest", str(dest), "--all")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "archived alice",
        "archived bob",
        "archived collab-shared-1",
        "3 accounts",
    ]
    assert run_module("archive", "--homes", str(homes), "--dest", str(dest), "--all", "alice").returncode == 2


def test_running_servers_are_archived_with_a_warning_or_skipped(tmp_path: Path) -> None:
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    make_home(homes, "alice")
    make_home(homes, "bob")
    dest.mkdir()
    running = tmp_path / "running.txt"
    running.write_text("bob\n")
    common = ("archive", "--homes", str(homes), "alice", "bob")
    warned = run_module(*common, "--dest", str(dest / "1"), "--running-file", str(running))
    assert warned.returncode == 0
    assert "warning bob: its server was running: files being written may be caught half-way" in warned.stdout
    skipped = run_module(*common, "--dest", str(dest / "2"), "--running", "bob", "--running-servers", "skip")
    assert skipped.returncode == 0
    assert "skipped bob: its server is running (archive.runningServers: skip)" in skipped.stdout.splitlines()
    assert [p.name.split("-")[0] for p in (dest / "2").glob("*.tar.gz")] == ["alice"]


def test_retention_prunes_old_archives_but_keeps_each_accounts_newest(tmp_path: Path) -> None:
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    make_home(homes, "alice")
    make_home(homes, "bob")
    dest.mkdir()
    for stamp in ("20260101T000000Z", "20260601T000000Z", "20261120T000000Z"):
        archiving.archive_account(homes, "alice", dest, stamp=stamp)
    archiving.archive_account(homes, "bob", dest, stamp="20260101T000000Z")
    stale = dest / "carol-20260101T000000Z.tar.gz.partial"
    stale.write_bytes(b"killed half-way")
    now = 1795996800.0  # 2026-11-30T00:00:00Z
    os.utime(stale, (now - 3 * 86400, now - 3 * 86400))
    lines = archiving.prune(dest, 30, now=now)
    assert lines == [
        "pruned alice: alice-20260101T000000Z.tar.gz (older than 30 days)",
        "pruned alice: alice-20260601T000000Z.tar.gz (older than 30 days)",
        "pruned carol-20260101T000000Z.tar.gz.partial: left by an interrupted run",
    ]
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith("report-")) == [
        "alice-20261120T000000Z.manifest.json",
        "alice-20261120T000000Z.tar.gz",
        "bob-20260101T000000Z.manifest.json",  # bob's only archive stays, however old
        "bob-20260101T000000Z.tar.gz",
    ]
    lines, ok = archiving.run_archive(homes, dest, ["alice"], retention_days=1, stamp="20261201T000000Z")
    assert ok and "pruned alice: alice-20261120T000000Z.tar.gz (older than 1 days)" in lines
    result = run_module("prune", "--dest", str(dest), "--retention-days", "1")
    assert (result.returncode, result.stdout) == (0, "prune: nothing to remove\n")  # the newest of each stays


# Issue 23: a student cannot steer the archive Job (findings 6, 7, 9, 10).

# A real process swapping two names atomically (renameat2 RENAME_EXCHANGE) as fast as it can, until SIGTERM;
# it prints how many swaps it made.
RACER = """
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
AT_FDCWD, RENAME_EXCHANGE = -100, 2
a, b = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
swaps = 0
print("ready", flush=True)
while not stop:
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE):
        sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
    swaps += 1
print(swaps, flush=True)
"""
RACE_ROUNDS = 150


def test_a_student_swapping_a_folder_for_a_link_never_gets_another_home_into_an_archive(tmp_path: Path) -> None:
    """Finding 6: mallory's `work` folder and her link `swap -> ../victim` trade places all through 150 archives."""
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    victim, work = homes / "victim", homes / "mallory" / "work"
    victim.mkdir(parents=True)
    work.mkdir(parents=True)
    for i in range(40):  # the same names and sizes in both, so a path-walking archive takes either without a hitch
        (victim / f"notes-{i:02}.txt").write_bytes(b"VICTIM-SECRET-%02d\n" % i * 64)
        (work / f"notes-{i:02}.txt").write_bytes(b"mallory-owns-%03d\n" % i * 64)
    (homes / "mallory" / "swap").symlink_to("../victim")
    racer = subprocess.Popen(
        [sys.executable, "-c", RACER, str(work), str(homes / "mallory" / "swap")], stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
        for i in range(RACE_ROUNDS):
            lines += archiving.run_archive(homes, dest, ["mallory"], stamp=f"race{i:03}")[0]
    finally:
        racer.terminate()
        swaps, _ = racer.communicate(timeout=30)
    assert racer.returncode == 0 and int(swaps) > RACE_ROUNDS, swaps  # it swapped all along
    leaked = []
    for archive in sorted(dest.glob("mallory-*.tar.gz")):
        with tarfile.open(archive) as tar:
            for member in tar:
                data = tar.extractfile(member) if member.isreg() else None
                if data is not None and b"VICTIM" in data.read():
                    leaked.append(f"{archive.name}: {member.name}")
    assert leaked == []
    # Each round archived mallory's own files or failed her account, in one line, with the report written.
    allowed = (
        "archived mallory: ",
        "warning mallory: symlink swap recorded in the manifest, not archived",
        "warning mallory: symlink work recorded in the manifest, not archived",
        "FAILED mallory: swap was swapped while it was archived",
        "FAILED mallory: work was swapped while it was archived",
        "1 accounts: ",
    )
    assert [line for line in lines if not line.startswith(allowed)] == []
    assert len(list(dest.glob("report-race*.txt"))) == RACE_ROUNDS
    no_partials(dest)


def data_extents(path: Path) -> list[tuple[int, int]]:
    """The file's runs of data between holes, as the filesystem reports them (SEEK_DATA/SEEK_HOLE)."""
    out, offset, size = [], 0, path.stat().st_size
    with open(path, "rb") as f:
        while offset < size:
            try:
                start = os.lseek(f.fileno(), offset, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            offset = os.lseek(f.fileno(), start, os.SEEK_HOLE)
            out.append((start, offset - start))
    return out


def holey_file(path: Path, size: int) -> list[tuple[int, int]]:
    """A file of `size` bytes that is holes but for three blocks of data; its data extents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in ((0, b"head" * 1024), (size // 2, b"middle" * 100), (size - 5, b"tail!")):
            f.seek(offset)
            f.write(data)
    if path.stat().st_blocks * 512 > 1 << 20:
        pytest.skip(f"{path.parent} cannot hold sparse files, so there is nothing to test here")
    return data_extents(path)


def test_a_64_gib_file_of_holes_is_archived_as_its_data_and_restored_with_its_holes(tmp_path: Path) -> None:
    """Finding 7: cost follows the data stored, not the size (the old module hashed 64 GiB of zeros, twice)."""
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    size = 64 << 30
    disk = homes / "alice" / "vm" / "disk.img"
    extents = holey_file(disk, size)
    stored = sum(length for _, length in extents)
    assert len(extents) == 3 and stored < 1 << 20
    with open(disk, "rb") as f:
        data = b"".join(os.pread(f.fileno(), length, start) for start, length in extents)
    archived = run_module("archive", "--homes", str(homes), "--dest", str(dest), "alice")
    assert archived.returncode == 0, archived.stdout + archived.stderr
    (archive,) = dest.glob("alice-*.tar.gz")
    entry = next(
        e for e in json.loads(archiving.manifest_path(archive).read_text())["entries"] if e["path"] == "vm/disk.img"
    )
    assert entry["size"] == size and entry["stored"] == stored
    assert [tuple(e) for e in entry["extents"]] == extents
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()  # the data read, hashed once; the holes never
    with tarfile.open(archive) as tar:
        member = tar.getmember("vm/disk.img")
        assert member.size == stored and member.pax_headers["COURSEHUB.sparse.size"] == str(size)
        held = tar.extractfile(member)
        assert held is not None and held.read() == data
    restored = run_module("restore", "--homes", str(homes), "--archive", str(archive), "--account", "alice")
    assert restored.returncode == 0, restored.stderr
    (copy,) = (homes / "alice").glob("restored-*/vm/disk.img")
    assert copy.stat().st_size == size
    assert copy.stat().st_blocks * 512 < 1 << 20, "restore wrote the holes as real blocks"
    assert data_extents(copy) == extents  # the same data at the same offsets, holes everywhere else
    with open(copy, "rb") as f:
        assert b"".join(os.pread(f.fileno(), length, start) for start, length in extents) == data


def test_an_account_over_its_data_budget_fails_alone_and_the_run_goes_on_and_reports(tmp_path: Path) -> None:
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    for account in ("alice", "bob", "carol"):
        make_home(homes, account)
    (homes / "bob" / "model.bin").write_bytes(os.urandom(2 << 20))
    holey_file(homes / "carol" / "disk.img", 64 << 30)  # 64 GiB of holes: only its data counts
    result = run_module(
        "archive",
        "--homes",
        str(homes),
        "--dest",
        str(dest),
        "--account-max-bytes",
        str(1 << 20),
        "alice",
        "bob",
        "carol",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("archived alice: alice-") and lines[2].startswith("archived carol: carol-")
    assert lines[1].startswith("FAILED bob: model.bin holds 2097152 bytes of data, which with the ")
    assert lines[1].endswith("over the account's budget of 1048576 bytes (--account-max-bytes): nothing kept")
    assert lines[-1] == "3 accounts: 1 failed (exit code 1)"
    (report,) = dest.glob("report-*.txt")
    assert report.read_text().splitlines() == lines
    assert sorted(p.name.split("-")[0] for p in dest.glob("*.tar.gz")) == ["alice", "carol"]
    no_partials(dest)


def test_a_home_nested_too_deep_fails_alone(tmp_path: Path) -> None:
    """The walk holds a descriptor per folder level: 300 levels fail that account, not the run."""
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    make_home(homes, "alice")
    make_home(homes, "bob")
    (homes / "alice" / "/".join(["d"] * 300)).mkdir(parents=True)
    lines, ok = archiving.run_archive(homes, dest, ["alice", "bob"], stamp=STAMP)
    assert (
        not ok
        and lines[0] == f"FAILED alice: {'/'.join(['d'] * 257)} is nested more than 256 folders deep: not archived"
    )
    assert lines[1].startswith("archived bob: ")


def test_an_account_over_its_time_budget_fails_in_one_line_and_the_report_is_written(tmp_path: Path) -> None:
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    make_home(homes, "alice")
    make_home(homes, "bob")
    result = run_module(
        "archive", "--homes", str(homes), "--dest", str(dest), "--account-max-seconds", "0", "alice", "bob"
    )
    assert result.returncode == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines == [
        "FAILED alice: took longer than its time budget of 0 s (--account-max-seconds): nothing kept",
        "FAILED bob: took longer than its time budget of 0 s (--account-max-seconds): nothing kept",
        "2 accounts: 2 failed (exit code 1)",
    ]
    assert [p.read_text().splitlines() for p in dest.glob("report-*.txt")] == [lines]
    assert not list(dest.glob("*.tar.gz"))
    no_partials(dest)


def test_a_run_stopped_by_sigterm_still_writes_its_report(tmp_path: Path) -> None:
    """The Job's deadline sends SIGTERM: the account being archived and those after it are FAILED lines."""
    homes, dest = tmp_path / "homes", tmp_path / "archive"
    for account in ("alice", "bob", "carol"):
        make_home(homes, account)
    with open(homes / "bob" / "model.bin", "wb") as f:  # random: seconds of gzip, so SIGTERM comes while bob is read
        for _ in range(128):
            f.write(os.urandom(1 << 20))
    run = subprocess.Popen(
        [sys.executable, str(MODULE), "archive", "--homes", str(homes), "--dest", str(dest), "alice", "bob", "carol"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not list(dest.glob("bob-*.tar.gz.partial")):  # waits for bob's archive to be begun, asserts no time
            assert run.poll() is None, run.communicate()
            time.sleep(0.005)
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert (run.returncode, err) == (1, "")
    lines = out.splitlines()
    assert lines[0].startswith("archived alice: alice-")
    assert lines[1:] == [
        "FAILED bob: the run was stopped (SIGTERM: the Job's deadline, or the Job deleted): nothing kept",
        "FAILED carol: not archived: the run was stopped (SIGTERM) before it",
        "3 accounts: 2 failed (exit code 1)",
    ]
    assert [p.read_text().splitlines() for p in dest.glob("report-*.txt")] == [lines]
    assert [p.name.split("-")[0] for p in dest.glob("*.tar.gz")] == ["alice"]
    no_partials(dest)


# Hub user names and KubeSpawner 7's home folders (finding 9).
SLUG_NAMES = [
    "alice",
    "collab-lab.team_b-2",
    "alice@berkeley.edu",
    "Alice.Smith+stat159@Berkeley.EDU",
    "Alice",
    "ALICE",
    "a--b",
    "-lead",
    "trail-",
    "0day",
    "1-" + "a" * 60,
    "_",
    "",
    "a" * 48,
    "a" * 49,
    "a" * 63,
    "a" * 64,
    "x" * 300,
    "josé",
    "émile.zola",
    "学生",
    "İstanbul",
    "straße",
    "ǅemal",
    "a\n",
    "a b",
    "a" * 36 + ".b",
]


def test_home_folders_are_kubespawner_7s_safe_slugs() -> None:
    from kubespawner import slugs

    assert archiving.home_folder("collab-lab.team_b-2") == "collab-lab-team-b-2---00d171e6"
    rng = random.Random(23)
    alphabet = string.ascii_letters + string.digits + "-._@+~ é学İß\u2028"
    names = SLUG_NAMES + ["".join(rng.choices(alphabet, k=rng.randint(1, 90))) for _ in range(2000)]
    for name in names:
        assert archiving.safe_slug(name) == slugs.safe_slug(name), name
        for length in (12, 32, 48, 63):
            assert archiving.safe_slug(name, max_length=length) == slugs.safe_slug(name, max_length=length), name
        assert archiving.home_folder(name) == slugs.safe_slug(name, max_length=48), name


def test_home_folders_are_the_subpath_kubespawner_7_mounts() -> None:
    """The real KubeSpawner 7 builds each user's pod with values/common.yaml's `subPath: "{username}"`."""
    from traitlets.config import Config

    from coursehub.chart.pods import PodUser, pod_manifest

    config = Config()
    config.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "homes"}}]
    config.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan", "subPath": "{username}"}]
    for name in [n for n in SLUG_NAMES if n]:
        (mount,) = pod_manifest(config, PodUser(name))["spec"]["containers"][0]["volumeMounts"]
        assert archiving.home_folder(name) == mount["subPath"], name


def test_homes_named_by_their_slug_are_archived_by_user_and_restored_into_the_slug_folder(tmp_path: Path) -> None:
    from kubespawner.slugs import safe_slug

    homes, dest = tmp_path / "homes", tmp_path / "archive"
    users = {"collab-lab.team_b-2": "collab-lab-team-b-2---00d171e6", "Alice@Berkeley.EDU": ""}
    users["Alice@Berkeley.EDU"] = safe_slug("Alice@Berkeley.EDU", max_length=48)
    before = {user: snapshot(make_home(homes, folder)) for user, folder in users.items()}
    result = run_module("archive", "--homes", str(homes), "--dest", str(dest), *users)
    assert result.returncode == 0, result.stdout + result.stderr
    for user, folder in users.items():
        (archive,) = dest.glob(f"{user}-*.tar.gz")  # archives and the report name the hub user
        assert f"archived {user}: {archive.name} (home folder {folder}, 4 files, " in result.stdout
        manifest = json.loads(archiving.manifest_path(archive).read_text())
        assert (manifest["account"], manifest["folder"]) == (user, folder)
        restored = run_module("restore", "--homes", str(homes), "--archive", str(archive), "--account", user)
        assert restored.returncode == 0, restored.stderr
        (copy,) = (homes / folder).glob("restored-*")
        assert snapshot(copy) == before[user]
    assert sorted(p.name for p in homes.iterdir()) == sorted(users.values())  # no folder a pod would not mount
    # --all archives each home folder by its name; the hub user's name still restores it.
    whole = run_module("archive", "--homes", str(homes), "--dest", str(tmp_path / "all"), "--all")
    assert whole.returncode == 0, whole.stdout + whole.stderr
    (archive,) = (tmp_path / "all").glob("collab-lab-team-b-2---00d171e6-*.tar.gz")
    # (stamped by hand: the restore above may have taken this second's folder name)
    done = archiving.restore_account(archive, homes, account="collab-lab.team_b-2", stamp="all")
    assert done.folder == homes / "collab-lab-team-b-2---00d171e6" / "restored-all"
    # The --all archive was made after the first restore, so it holds that restored folder too.
    again = {k: v for k, v in snapshot(done.folder).items() if not k.startswith("restored-")}
    assert again == before["collab-lab.team_b-2"]


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry below `root` (itself included), with its mode and a file's content."""
    return {
        str(p): (p.lstat().st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else b"")
        for p in [root, *root.rglob("*")]
    }


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--homes", "{tmp}/nowhere"], "error: {tmp}/nowhere: --homes: no such folder. Fix: give the folder the"),
        (["--homes", "{archive}"], "error: {archive}: --homes: is not a folder. Fix: give the folder the homes"),
        (["--archive", "{tmp}/archive/ghost.tar.gz"], "error: {tmp}/archive/ghost.tar.gz: --archive: no such archive"),
        (["--account", "../bob"], "error: {archive}: --account: '../bob' is not a hub user name. Fix: "),
        (["--account", "collab-shared-2"], "error: {archive}: --account: {name} is collab-shared-1's archive, not"),
        (["--path", "../bob"], "error: {archive}: --path: '../bob' leaves the home folder. Fix: give a path inside"),
        (["--path", "thesis"], "error: {archive}: --path: {name} holds no file or folder 'thesis'. Fix: "),
    ],
)
def test_restore_with_bad_input_is_one_line_exit_code_2_and_changes_nothing(
    homes: Path, tmp_path: Path, flags: list[str], line: str
) -> None:
    """Finding 10: `restore --homes <missing folder>` ended in a traceback."""
    archive = archiving.archive_account(homes, "collab-shared-1", tmp_path / "archive").archive
    assert archive is not None
    given = {"--homes": str(homes), "--archive": str(archive)}
    for key, value in zip(flags[::2], flags[1::2], strict=True):
        given[key] = value.format(tmp=tmp_path, archive=archive)
    before = tree(tmp_path)
    result = run_module("restore", *[part for pair in given.items() for part in pair])
    assert (result.returncode, result.stdout, result.stderr.count("\n")) == (2, "", 1), result.stderr
    assert result.stderr.startswith(line.format(tmp=tmp_path, archive=archive, name=archive.name)), result.stderr
    assert tree(tmp_path) == before


def test_archive_with_a_missing_homes_folder_is_one_line(tmp_path: Path) -> None:
    for which in (["--all"], ["alice"]):
        result = run_module("archive", "--homes", str(tmp_path / "nowhere"), "--dest", str(tmp_path / "a"), *which)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            f"error: {tmp_path / 'nowhere'}: --homes: no such folder. "
            "Fix: give the folder the homes volume is mounted at (nothing was read or changed)\n"
        )
    assert sorted(tmp_path.iterdir()) == []


# The Jobs, rendered by real Helm with the real z2jh chart.


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    job = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return job["template"]["spec"]


@pytest.fixture(scope="module")
def jobs() -> Iterator[list[dict[str, Any]]]:
    """stat159's archive Job, CronJob and restore Job."""
    objs = render_chart(ARCHIVE_JOBS, course="stat159")
    yield [o for o in objs if o["kind"] in ("Job", "CronJob") and is_coursehubs(o)]


def test_normal_renders_hold_the_archive_code_but_no_job() -> None:
    objs = render_chart(course="stat159")
    kinds = {(o["kind"], o["metadata"].get("name")) for o in objs}
    assert ("ConfigMap", "coursehub-archive") in kinds
    assert not [o for o in objs if o["kind"] in ("Job", "CronJob") and is_coursehubs(o)]


def test_every_archive_and_restore_pod_runs_with_least_privilege(jobs: list[dict[str, Any]]) -> None:
    assert sorted(o["kind"] for o in jobs) == ["CronJob", "Job", "Job"]
    for obj in jobs:
        job = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
        assert job["backoffLimit"] == 0
        assert job["activeDeadlineSeconds"] == 21600 and job["ttlSecondsAfterFinished"] == 604800
        pod = pod_spec(obj)
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"] == {
            "runAsUser": 1000,
            "runAsGroup": 100,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        (container,) = pod["containers"]
        assert container["image"] == "python:3.12.8-slim-bookworm" and container["imagePullPolicy"] == "Always"
        assert container["securityContext"] == {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        }
        assert container["resources"] == {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        }
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mounts["/tmp"]["name"]]["emptyDir"] == {"sizeLimit": "64Mi"}
        restoring = container["args"][0] == "restore"
        assert mounts["/homes"]["readOnly"] is not restoring
        assert volumes["homes"]["persistentVolumeClaim"].get("readOnly") is not restoring
        assert mounts["/archive"]["readOnly"] is restoring
        assert mounts["/opt/coursehub"]["readOnly"] is True


def test_the_archive_pods_get_no_network(jobs: list[dict[str, Any]]) -> None:
    (policy,) = [
        o
        for o in render_chart(course="stat159")
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "coursehub-archive"
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]  # no rule: nothing allowed
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for obj in jobs:
        job = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
        assert selector.items() <= job["template"]["metadata"]["labels"].items()
    for version in kube.SUPPORTED:
        assert kube.problems(policy, version) == []


@pytest.mark.parametrize("version", kube.SUPPORTED)
def test_the_jobs_pass_strict_kubernetes_schemas(jobs: list[dict[str, Any]], version: str) -> None:
    for obj in jobs:
        assert kube.problems(obj, version) == [], obj["kind"]


def test_the_jobs_run_the_commands_their_values_give(jobs: list[dict[str, Any]]) -> None:
    by_command = {pod_spec(o)["containers"][0]["args"][0]: o for o in jobs if o["kind"] == "Job"}
    assert by_command["archive"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "archive",
        "--homes",
        "/homes",
        "--dest",
        "/archive",
        "--running-servers",
        "warn",
        *[f"collab-shared-{i}" for i in range(1, 5)],
    ]
    assert pod_spec(by_command["restore"])["containers"][0]["args"] == [
        "restore",
        "--homes",
        "/homes",
        "--archive",
        "/archive/alice-20261125T000000Z.tar.gz",
        "--account",
        "alice",
        "--path",
        "project/data",
    ]
    (whole,) = [
        o
        for o in render_chart(
            {
                "archive.run": True,
                "archive.all": True,
                "archive.runningServers": "skip",
                "archive.running": ["alice", "bob"],
                "archive.retentionDays": 180,
                "archive.maxBytes": 5000000000,
                "archive.accountMaxBytes": 10**11,
                "archive.accountMaxSeconds": 600,
                "archive.image.digest": "sha256:" + "ab" * 32,
            },
            course="stat159",
        )
        if o["kind"] == "Job" and is_coursehubs(o)
    ]
    container = pod_spec(whole)["containers"][0]
    assert container["args"][5:] == [
        "--running-servers",
        "skip",
        "--running",
        "alice,bob",
        "--max-bytes",
        "5000000000",
        "--account-max-bytes",
        "100000000000",
        "--account-max-seconds",
        "600",
        "--retention-days",
        "180",
        "--all",
    ]
    assert container["image"] == "python:3.12.8-slim-bookworm@sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"archive.image.tag": "3.12-slim"}, "archive.image.tag"),
        ({"archive.uid": 0}, "archive.uid"),
        ({"archive.runningServers": "ignore"}, "archive.runningServers"),
        ({"archive.restore.path": "../other-home"}, "archive.restore.path"),
        ({"archive.retentionDays": -1}, "archive.retentionDays"),
        ({"archive.accountMaxSeconds": -5}, "archive.accountMaxSeconds"),
    ],
)
def test_the_schema_refuses_moving_images_root_and_escaping_paths(setting: dict[str, Any], key: str) -> None:
    from coursehub.errors import CoursehubError

    with pytest.raises(CoursehubError, match=key.replace(".", "[./]")):  # Helm 3 says a.b, Helm 4 /a/b
        render_chart(setting, course="stat159")


def test_make_archive_and_restore_print_the_commands_that_start_them() -> None:
    result = coursehub("archive", "--course", "stat159")
    assert result.returncode == 0, result.stderr
    command = result.stdout.strip().splitlines()[-1]
    render_part, _, start = command.partition(" | ")
    assert shlex.split(start) == ["kubectl", "--namespace", "stat159", "create", "-f", "-"]
    assert "--set archive.run=true" in render_part and "--show-only templates/archive-job.yaml" in render_part
    result = coursehub("archive", "--course", "stat159", "--all", "--running", "alice,bob")
    assert result.returncode == 0, result.stderr
    assert "--set archive.all=true" in result.stdout and "--set-string 'archive.running={alice,bob}'" in result.stdout
    result = coursehub("archive", "--course", "stat159", "--accounts", "alice,bob")
    assert "--set-string 'archive.accounts={alice,bob}'" in result.stdout
    result = coursehub(
        "restore", "--course", "stat159", "--account", "alice", "--archive", "alice-x.tar.gz", "--path", "project/"
    )
    assert result.returncode == 0, result.stderr
    assert "archive.restore.account=alice" in result.stdout and "archive.restore.path=project/" in result.stdout
    result = coursehub(
        "restore", "--course", "stat159", "--account", "alice", "--archive", "alice-x.tar.gz", "--path", "a, b/"
    )
    assert "--set-string 'archive.restore.path=a\\, b/'" in result.stdout  # Helm reads `\,` as a comma
    result = coursehub("restore", "--course", "stat159", "--account", "alice", "--archive", "bob-x.tar.gz")
    assert result.returncode == 1 and "is not alice's archive" in result.stderr
    # ALL=1 names an archive by the home folder KubeSpawner gave the user: that one is the user's too
    slugged = f"{archiving.home_folder('collab-lab.team_b-2')}-20261206T000000Z.tar.gz"
    result = coursehub("restore", "--course", "stat159", "--account", "collab-lab.team_b-2", "--archive", slugged)
    assert result.returncode == 0, result.stderr
    assert "archive.restore.account=collab-lab.team_b-2" in result.stdout
    result = coursehub("archive", "--course", "stat159", "--all", "--accounts", "alice")
    assert result.returncode == 1 and "either" in result.stderr
