"""How the test run is laid out: the order of its files and where its temporary folders go (conftest's hooks)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# The files that take longest, longest first (about two minutes down to half a minute, in a clean-clone run).
# `make test` hands whole files to its workers in collection order: one of these starting last would leave the
# run waiting on it, with the other workers idle (checkov, half a minute and not live, once started last and
# kept one worker busy alone for that long). A name that goes stale only costs time; tests/test_tools.py checks
# each still names a file.
LONGEST_FILES = ("test_image_check.py", "test_browser.py", "test_staff.py", "test_sync_shares.py", "test_checkov.py")


# Where the tests' temporary folders go: a memory-backed file system when the machine has one with room. Each
# live hub keeps its SQLite database, and each server its files, in a test's tmp_path, and JupyterHub commits
# several times per API call: on this machine's disk a commit waits about 5 ms for fsync, in /dev/shm 0.2 ms (the
# 1,000-group course test took 202 s on disk, 128 s in memory). Nothing else changes: the same hub, database
# and servers, restarted as often. COURSEHUB_TEST_TMPDIR names another folder (a disk one, to compare).
MEMORY_FS, MEMORY_FS_ROOM = Path("/dev/shm"), 2 << 30
TEMP_ROOT_ENV = "COURSEHUB_TEST_TMPDIR"


def temp_root() -> tuple[Path | None, str]:
    """(the folder for this run's temporary files or None for the default, one line saying which and why)."""
    if os.environ.get(TEMP_ROOT_ENV):
        return Path(os.environ[TEMP_ROOT_ENV]), f"temporary files in {os.environ[TEMP_ROOT_ENV]} (${TEMP_ROOT_ENV})"
    try:
        room = shutil.disk_usage(MEMORY_FS).free
    except OSError:
        return None, f"temporary files on disk: no {MEMORY_FS} here (hub tests wait on fsync; slower, not wrong)"
    if room < MEMORY_FS_ROOM or not os.access(MEMORY_FS, os.W_OK):
        return None, (
            f"temporary files on disk: {MEMORY_FS} has {room >> 20} MiB free, under {MEMORY_FS_ROOM >> 20} MiB "
            "(hub tests wait on fsync; slower, not wrong)"
        )
    return MEMORY_FS / f"coursehub-tests-{os.getuid()}", f"temporary files in memory ({MEMORY_FS})"
