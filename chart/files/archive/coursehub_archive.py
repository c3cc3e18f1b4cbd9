"""Archive, prune and restore home directories (Python 3.11+, standard library only).

Run by the chart's archive and restore Jobs (templates/archive-*.yaml,
restore-job.yaml) from a ConfigMap, as the singleuser uid, with the home
directories' volume at --homes and the archive volume at --dest/--archive.
Tests import it as a module.

    python coursehub_archive.py archive --homes /homes --dest /archive (--all | ACCOUNT...)
        [--running a,b] [--running-servers warn|skip] [--max-bytes N] [--retention-days N]
        [--account-max-bytes N] [--account-max-seconds N]
    python coursehub_archive.py prune --dest /archive --retention-days N
    python coursehub_archive.py restore --homes /homes --archive /archive/A-STAMP.tar.gz
        [--account A] [--path project/] [--max-bytes N]

Homes: an account's home is the folder KubeSpawner 7 mounts for it, the
singleuser `subPath: "{username}"` expanded to the user's safe slug
(`home_folder`: `collab-lab.team_b-2` lives in `collab-lab-team-b-2---00d171e6`).
Archives, manifests and the report name the hub user; `--all` archives every
folder under --homes and names each by its folder.

Archive: one compressed tar per account and a manifest beside it. A home is
walked by handle: every folder and file is opened relative to its parent's open
descriptor without following links, and must be the very entry (device and
inode) its folder's listing showed, on the homes' device. A student swapping
folders for links while the Job runs fails their own account, and never gets
another home's files into an archive. Every file is read once: the same bytes
are hashed and written into the tar, so the manifest describes exactly what the
archive holds, even if a running server changes the file meanwhile. Files with
holes are stored as their data extents (SEEK_DATA/SEEK_HOLE): only data is read
and hashed, so a file costs the data it holds, not its size. The finished
archive is read back and checked against the manifest before it is renamed into
place. Symlinks and special files are recorded in the manifest, not archived;
empty folders are kept.

Budgets: one account may read at most --account-max-bytes of stored data
(default 20 GiB) and take at most --account-max-seconds (default 1800; the
Job's deadline is 6 hours). An account over either, a race, an unreadable file
or a full archive volume is one FAILED line of the report; the run goes on with
the next account, nothing `.partial` stays behind, the report is always written
(also when SIGTERM stops the run: the account being archived and those after it
are FAILED lines), and the exit code is 1 when any account failed.

Restore never overwrites: it writes into a new folder `restored-<stamp>` inside
the account's home, opened by handle from --homes, every manifest path confined
to that folder (no `..`, no absolute paths, no symlinked parents: every folder
is opened relative to its parent without following links), after checking the
archive against its manifest and the restored size against the free space and
the cap. Bad input (a --homes or archive that is not there, an account the
archive is not of) is one line and exit code 2, with nothing changed; a damaged
archive or manifest is one line and exit code 1.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import errno
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import string
import sys
import tarfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

FORMAT = "coursehub-archive/3"
# Format 2 (homes named like the hub user; a sparse file's sha256 over its holes too) is still restored.
OLD_FORMAT = "coursehub-archive/2"
STAMP = "%Y%m%dT%H%M%SZ"
CHUNK = 1 << 20
ZEROS = bytes(CHUNK)
# Hub user names and home folder names the Jobs accept: one path component, never hidden or `..`.
ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$")
# PAX header keys that carry a sparse file's extents and logical size.
SPARSE_MAP = "COURSEHUB.sparse.map"
SPARSE_SIZE = "COURSEHUB.sparse.size"
NOT_HOMES = {"lost+found"}
ACCOUNT_MAX_BYTES = 20 << 30
ACCOUNT_MAX_SECONDS = 1800
# Runs of data between holes one file may have (its extent map travels in the tar header and the manifest).
MAX_EXTENTS = 1 << 16
# Folders within folders one home may have: the walk holds a descriptor open for each.
MAX_DEPTH = 256
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# KubeSpawner 7 (slug_scheme "safe") expands {username} to safe_slug(name, max_length=48).
SLUG_MAX_LENGTH = 48
SLUG_HASH_LENGTH = 8
_SLUG_CHARS = re.compile(r"[a-z0-9-]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
# Set by SIGTERM (the Job's deadline, or the Job deleted): the run stops at the next safe point and reports.
TERMINATED = threading.Event()


class ArchiveError(Exception):
    """One account's (or one restore's) failure, as the one line the report shows."""


class BadInput(ArchiveError):
    """A flag names something that is not there or not allowed: nothing was read or changed (exit code 2)."""

    def __init__(self, file: object, key: str, message: str, fix: str) -> None:
        super().__init__(f"{file}: {key}: {message}. Fix: {fix}")


def safe_slug(name: str, max_length: int | None = None) -> str:
    """KubeSpawner 7's `kubespawner.slugs.safe_slug` (its default validity rule), with the standard library only.

    A name that is already a DNS label (lower-case letters, digits, `-`; a letter first; at most 63 characters,
    and `max_length`) and has no `--` stays as it is; any other becomes its lower-cased letters and digits, runs
    of anything else one `-`, cut to fit, then `---` and the first 8 hex digits of the name's sha256.
    """
    if "--" not in name and _is_dns_label(name) and (max_length is None or len(name) <= max_length):
        return name
    return _strip_and_hash(name, max_length or 32)


def _is_dns_label(name: str) -> bool:
    return (
        0 < len(name) <= 63
        and name[0] in string.ascii_lowercase
        and name[-1] in string.ascii_lowercase + string.digits
        and _SLUG_CHARS.fullmatch(name) is not None
    )


def _strip_and_hash(name: str, max_length: int) -> str:
    keep = max_length - (SLUG_HASH_LENGTH + 3)
    if keep < 1:
        raise ValueError(f"cannot make safe names shorter than {SLUG_HASH_LENGTH + 4}")
    digest = hashlib.sha256(name.encode("utf8")).hexdigest()[:SLUG_HASH_LENGTH]
    safe = _NOT_ALNUM.sub("-", name.lower()).lstrip("-")[:keep].rstrip("-")
    if safe and safe[0] not in string.ascii_lowercase:
        safe = "x-" + safe[: keep - 2]
    return f"{safe or 'x'}---{digest}"


def home_folder(account: str) -> str:
    """The folder under the homes volume KubeSpawner 7 mounts as `account`'s home (`subPath: "{username}"`)."""
    return safe_slug(account, max_length=SLUG_MAX_LENGTH)


@dataclass
class Budget:
    """The bytes this run may still write (--max-bytes); None: no cap but the disk's."""

    left: int | None

    def take(self, n: int) -> None:
        if self.left is None:
            return
        if n > self.left:
            raise OSError(errno.ENOSPC, "the run's byte cap (--max-bytes) is reached")
        self.left -= n

    def give_back(self, n: int) -> None:
        """Bytes of a removed .partial file are free again."""
        if self.left is not None:
            self.left += n


@dataclass
class Limits:
    """One account's budgets: the stored data it may read and the time it may take, from when it starts."""

    max_bytes: int = ACCOUNT_MAX_BYTES
    max_seconds: float = ACCOUNT_MAX_SECONDS
    used: int = 0
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.max_seconds

    def take(self, rel: str, n: int) -> None:
        if self.used + n > self.max_bytes:
            raise ArchiveError(
                f"{rel} holds {n} bytes of data, which with the {self.used} before it is over the account's budget "
                f"of {self.max_bytes} bytes (--account-max-bytes): nothing kept"
            )
        self.used += n

    def check(self) -> None:
        """Called at every step of the walk and every block read: the time budget and SIGTERM."""
        if TERMINATED.is_set():
            raise ArchiveError("the run was stopped (SIGTERM: the Job's deadline, or the Job deleted): nothing kept")
        if time.monotonic() >= self.deadline:
            raise ArchiveError(
                f"took longer than its time budget of {self.max_seconds:g} s (--account-max-seconds): nothing kept"
            )


class _Sink:
    """The archive file as tarfile writes it: counted against the budget and hashed."""

    def __init__(self, raw: IO[bytes], budget: Budget) -> None:
        self.raw, self.budget, self.digest, self.size = raw, budget, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.budget.take(len(data))
        self.raw.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


class _Source:
    """One file's data extents as tarfile reads them, hashed as they are read; holes are neither read nor hashed."""

    def __init__(self, fd: int, rel: str, extents: list[tuple[int, int]], limits: Limits) -> None:
        self.fd, self.rel, self.limits, self.digest = fd, rel, limits, hashlib.sha256()
        self.extents, self.index, self.done = extents, 0, 0  # done: bytes read of extents[index]

    def read(self, n: int) -> bytes:
        self.limits.check()
        out = bytearray()
        while len(out) < n and self.index < len(self.extents):
            start, length = self.extents[self.index]
            try:
                data = os.pread(self.fd, min(n - len(out), length - self.done), start + self.done)
            except OSError as e:
                raise ArchiveError(f"cannot read {self.rel}: {e.strerror}") from None
            if not data:
                break  # the file shrank: tarfile reports "unexpected end of data"
            self.digest.update(data)
            out += data
            self.done += len(data)
            if self.done == length:
                self.index, self.done = self.index + 1, 0
        return bytes(out)


def _extents(fd: int, size: int, rel: str) -> list[tuple[int, int]]:
    """The file's data extents (offset, length); one extent when it has no holes or the filesystem cannot tell."""
    try:
        if os.lseek(fd, 0, os.SEEK_HOLE) >= size:
            return [(0, size)] if size else []
    except OSError:
        return [(0, size)] if size else []
    extents: list[tuple[int, int]] = []
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # only a hole is left
                break
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        if end <= start:  # the file shrank meanwhile: what is left is past its size
            break
        extents.append((start, end - start))
        if len(extents) > MAX_EXTENTS:
            raise ArchiveError(
                f"{rel} has more than {MAX_EXTENTS} runs of data between holes: copy it without its holes "
                "(cp --sparse=never) or remove it, then archive again"
            )
        offset = end
    return extents


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def _swapped(rel: str) -> ArchiveError:
    return ArchiveError(
        f"{rel} was swapped while it was archived (a link or another entry put in its place): "
        "archive again when its server is stopped"
    )


def _open_seen(name: str, dir_fd: int, seen: os.stat_result, flags: int, rel: str) -> int | None:
    """Open `name` in the folder open at `dir_fd`, never following a link, and only if it is still the entry
    (device and inode) its listing showed; None if it is gone."""
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO):  # a link, a file or a socket put in its place
            raise _swapped(rel) from None
        raise ArchiveError(
            f"cannot read {rel}: {e.strerror} (make it readable or remove it, then archive again)"
        ) from None
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino):
        os.close(fd)
        raise _swapped(rel)
    return fd


def _walk(dir_fd: int, dev: int, limits: Limits, rel: str = "") -> Iterator[tuple[str, str, os.stat_result, int]]:
    """(path, name, lstat, descriptor of its folder) of every entry below the folder open at `dir_fd`, parents
    first, sorted. Each folder is opened relative to its parent's descriptor, as the entry its listing showed,
    on the homes' device `dev`: a path is never resolved again, so no link is ever followed."""
    try:
        with os.scandir(dir_fd) as it:
            names = sorted(e.name for e in it)
    except OSError as e:
        raise ArchiveError(f"cannot list folder {rel or '.'}: {e.strerror}") from None
    for name in names:
        limits.check()
        path = f"{rel}/{name}" if rel else name
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:  # removed since the folder was listed: not archived, not in the manifest
            continue
        except OSError as e:
            raise ArchiveError(f"cannot read {path}: {e.strerror}") from None
        yield path, name, st, dir_fd
        if not stat.S_ISDIR(st.st_mode):
            continue
        if path.count("/") >= MAX_DEPTH:
            raise ArchiveError(f"{path} is nested more than {MAX_DEPTH} folders deep: not archived")
        if st.st_dev != dev:
            raise ArchiveError(f"{path} is another filesystem mounted in the home: not archived")
        child = _open_seen(name, dir_fd, st, DIR_FLAGS, path)
        if child is None:  # removed since it was listed: kept as the empty folder it now is in the manifest
            continue
        try:
            yield from _walk(child, dev, limits, path)
        finally:
            os.close(child)


def manifest_path(archive: Path) -> Path:
    return archive.with_name(archive.name.removesuffix(".tar.gz") + ".manifest.json")


@dataclass
class Result:
    account: str
    archive: Path | None = None
    files: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    folder: str = ""


def _add_file(
    tar: tarfile.TarFile, parent_fd: int, name: str, seen: os.stat_result, rel: str, result: Result, limits: Limits
) -> dict[str, Any] | None:
    fd = _open_seen(name, parent_fd, seen, FILE_FLAGS, rel)
    if fd is None:
        result.warnings.append(f"{rel} was removed while archiving: not in the archive")
        return None
    try:
        before = os.fstat(fd)
        try:
            extents = _extents(fd, before.st_size, rel)
        except OSError as e:
            raise ArchiveError(f"cannot read {rel}: {e.strerror}") from None
        stored = sum(length for _, length in extents)
        limits.take(rel, stored)
        info = tarfile.TarInfo(rel)
        info.size, info.mode, info.mtime = stored, before.st_mode & 0o777, int(before.st_mtime)
        sparse = stored < before.st_size
        if sparse:
            info.pax_headers = {SPARSE_MAP: json.dumps(extents), SPARSE_SIZE: str(before.st_size)}
        source = _Source(fd, rel, extents, limits)
        try:
            tar.addfile(info, source)
        except OSError as e:
            if "unexpected end of data" in str(e):
                raise ArchiveError(
                    f"{rel} shrank while it was archived (a server writing?): archive again when it is stopped"
                ) from None
            raise
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            result.warnings.append(f"{rel} changed while it was archived: the archive holds the bytes read")
        entry: dict[str, Any] = {
            "path": rel,
            "type": "file",
            "mode": info.mode,
            "size": before.st_size,
            "stored": stored,
            "sha256": source.digest.hexdigest(),  # of the stored data: the extents, in order
        }
        if sparse:
            entry["extents"] = extents
        result.files += 1
        result.bytes += before.st_size
        return entry
    finally:
        os.close(fd)


def _hash_member(
    data: IO[bytes],
    entry: dict[str, Any],
    legacy: bool = False,
    write_fd: int | None = None,
    limits: Limits | None = None,
) -> str:
    """Hash one member's stored data as read from the tar, optionally writing each extent at its offset (holes
    stay holes). `legacy`: format 2, whose sha256 covers the holes as zeros."""
    digest, pos = hashlib.sha256(), 0
    for start, length in entry.get("extents", [(0, entry["size"])] if entry["size"] else []):
        if legacy:
            pos = _hash_zeros(digest, pos, start)
        if write_fd is not None:
            os.lseek(write_fd, start, os.SEEK_SET)
        while length:
            if limits is not None:
                limits.check()
            block = data.read(min(CHUNK, length))
            if not block:
                raise ArchiveError(f"{entry['path']} is cut short in the archive")
            digest.update(block)
            if write_fd is not None:
                view = memoryview(block)
                while view:
                    view = view[os.write(write_fd, view) :]
            pos += len(block)
            length -= len(block)
    if legacy:
        _hash_zeros(digest, pos, entry["size"])
    if write_fd is not None:
        os.ftruncate(write_fd, entry["size"])
    return digest.hexdigest()


def _hash_zeros(digest: Any, pos: int, to: int) -> int:
    while pos < to:
        n = min(CHUNK, to - pos)
        digest.update(ZEROS[:n])
        pos += n
    return pos


class _ReadHasher:
    def __init__(self, raw: IO[bytes], limits: Limits | None) -> None:
        self.raw, self.limits, self.digest = raw, limits, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        if self.limits is not None:
            self.limits.check()
        data = self.raw.read(n)
        self.digest.update(data)
        return data

    def drain(self) -> str:
        while self.read(CHUNK):
            pass
        return self.digest.hexdigest()


def _check_archive(
    archive: Path, manifest: dict[str, Any], paths: set[str] | None = None, limits: Limits | None = None
) -> None:
    """Read `archive` back: its sha256, and every member against the manifest (only `paths` hashed, if given)."""
    expected = {e["path"]: e for e in manifest["entries"] if e["type"] in ("file", "dir")}
    legacy = manifest["format"] == OLD_FORMAT
    seen: set[str] = set()
    with open(archive, "rb") as raw:
        reader = _ReadHasher(raw, limits)
        try:
            with tarfile.open(fileobj=reader, mode="r|gz") as tar:  # type: ignore[call-overload]
                for member in tar:
                    entry = expected.get(member.name)
                    if entry is None or member.name in seen:
                        raise ArchiveError(f"{archive.name}: entry {member.name!r} is not in its manifest")
                    seen.add(member.name)
                    if entry["type"] == "dir" and not member.isdir():
                        raise ArchiveError(f"{archive.name}: {member.name} is not a folder as its manifest says")
                    if entry["type"] == "file":
                        if not member.isreg() or member.size != entry["stored"]:
                            raise ArchiveError(f"{archive.name}: {member.name} differs from its manifest")
                        if paths is None or member.name in paths:
                            data = tar.extractfile(member)
                            assert data is not None
                            if _hash_member(data, entry, legacy, limits=limits) != entry["sha256"]:
                                raise ArchiveError(f"{archive.name}: {member.name} differs from its manifest (sha256)")
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise ArchiveError(f"{archive.name} is damaged or cut short ({e})") from None
        if reader.drain() != manifest["archive_sha256"]:
            raise ArchiveError(f"{archive.name} does not match its manifest (sha256 differs)")
    if missing := set(expected) - seen:
        raise ArchiveError(f"{archive.name} lacks {len(missing)} entries of its manifest, e.g. {min(missing)}")


def _fsync_replace(partial: Path, target: Path) -> None:
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, target)


def open_homes(homes: Path) -> int:
    """The homes volume's folder, opened once: every home is then found relative to it. BadInput if it is not there."""
    fix = "give the folder the homes volume is mounted at (nothing was read or changed)"
    try:
        return os.open(homes, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BadInput(homes, "--homes", "no such folder", fix) from None
    except NotADirectoryError:
        raise BadInput(homes, "--homes", "is not a folder", fix) from None
    except OSError as e:
        raise BadInput(homes, "--homes", f"cannot be opened ({e.strerror})", fix) from None


def _open_home(homes: Path, homes_fd: int, folder: str) -> int:
    """The home folder `folder`, opened by handle from the homes folder: a folder on the homes' device, never a link."""
    home = homes / folder
    try:
        st = os.stat(folder, dir_fd=homes_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise ArchiveError(f"has no home folder {home} (never started a server?)") from None
    except OSError as e:
        raise ArchiveError(f"cannot read home folder {home}: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ArchiveError(f"{home} is not a folder")
    if st.st_dev != os.fstat(homes_fd).st_dev:
        raise ArchiveError(f"{home} is another filesystem mounted in the homes volume: not archived")
    fd = _open_seen(folder, homes_fd, st, DIR_FLAGS, str(home))
    if fd is None:
        raise ArchiveError(f"has no home folder {home} (removed while archiving)")
    return fd


def archive_account(
    homes: Path,
    account: str,
    dest: Path,
    stamp: str | None = None,
    budget: Budget | None = None,
    running: bool = False,
    limits: Limits | None = None,
    folder: str | None = None,
) -> Result:
    """Write <dest>/<account>-<stamp>.tar.gz and its manifest, checked; raises ArchiveError with one line.

    The home is `folder` under `homes` (default: the folder KubeSpawner 7 mounts for the hub user `account`).
    """
    if not ACCOUNT.match(account):
        raise ArchiveError(f"{account!r} is not a hub user name")
    folder = folder or home_folder(account)
    limits = limits or Limits()
    homes_fd = open_homes(homes)
    try:
        home_fd = _open_home(homes, homes_fd, folder)
    finally:
        os.close(homes_fd)
    try:
        return _archive_home(home_fd, account, folder, dest, stamp, budget or Budget(None), running, limits)
    finally:
        os.close(home_fd)


def _archive_home(
    home_fd: int,
    account: str,
    folder: str,
    dest: Path,
    stamp: str | None,
    budget: Budget,
    running: bool,
    limits: Limits,
) -> Result:
    stamp = stamp or time.strftime(STAMP, time.gmtime())
    target = dest / f"{account}-{stamp}.tar.gz"
    if target.exists() or manifest_path(target).exists():
        raise ArchiveError(f"{target} already exists: not overwritten")
    result = Result(account, target, folder=folder)
    if running:
        result.warnings.append("its server was running: files being written may be caught half-way")
    partial = dest / (target.name + ".partial")
    manifest_partial = dest / (manifest_path(target).name + ".partial")
    entries: list[dict[str, Any]] = []
    sink: _Sink | None = None
    text = b""
    created: list[Path] = []  # only what this run made is removed on failure
    dev = os.fstat(home_fd).st_dev
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with open(partial, "xb") as raw:
            created.append(partial)
            sink = _Sink(raw, budget)
            with (
                tarfile.open(fileobj=sink, mode="w:gz", format=tarfile.PAX_FORMAT) as tar,  # type: ignore[call-overload]
                contextlib.closing(_walk(home_fd, dev, limits)) as walk,
            ):
                for rel, name, st, parent_fd in walk:
                    if (entry := _archive_entry(tar, parent_fd, name, st, rel, result, limits)) is not None:
                        entries.append(entry)
            raw.flush()
            os.fsync(raw.fileno())
        manifest = {
            "format": FORMAT,
            "account": account,
            "folder": folder,
            "created": stamp,
            "archive": target.name,
            "archive_sha256": sink.digest.hexdigest(),
            "archive_bytes": sink.size,
            "entries": entries,
            "warnings": result.warnings,
        }
        _check_archive(partial, manifest, limits=limits)
        manifest_text = json.dumps(manifest, indent=1).encode()
        budget.take(len(manifest_text))
        text = manifest_text  # taken from the budget: given back if the run fails from here
        with open(manifest_partial, "xb") as f:
            created.append(manifest_partial)
            f.write(text)
        # The manifest first: an archive in place always has its manifest beside it.
        _fsync_replace(manifest_partial, manifest_path(target))
        created.append(manifest_path(target))
        _fsync_replace(partial, target)
    except BaseException as e:
        for leftover in created:
            leftover.unlink(missing_ok=True)
        budget.give_back((sink.size if sink else 0) + len(text))
        if isinstance(e, OSError):
            what = "disk full" if e.errno == errno.ENOSPC else f"{e.strerror or e} ({e.filename})"
            raise ArchiveError(f"{what} while writing {target.name}: nothing kept") from None
        raise
    return result


def _archive_entry(
    tar: tarfile.TarFile, parent_fd: int, name: str, st: os.stat_result, rel: str, result: Result, limits: Limits
) -> dict[str, Any] | None:
    kind = _kind(st.st_mode)
    if kind == "file":
        return _add_file(tar, parent_fd, name, st, rel, result, limits)
    if kind == "dir":
        info = tarfile.TarInfo(rel)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, st.st_mode & 0o777, int(st.st_mtime)
        tar.addfile(info)
        return {"path": rel, "type": "dir", "mode": info.mode}
    entry = {"path": rel, "type": kind}
    if kind == "symlink":
        try:
            entry["target"] = os.readlink(name, dir_fd=parent_fd)
        except FileNotFoundError:
            result.warnings.append(f"{rel} was removed while archiving: not in the archive")
            return None
        except OSError:  # EINVAL: no longer a link
            raise _swapped(rel) from None
    result.warnings.append(f"{kind} {rel} recorded in the manifest, not archived")
    return entry


def home_accounts(homes: Path) -> list[str]:
    """Every home folder under `homes` (the whole course), by folder name."""
    return sorted(
        e.name
        for e in os.scandir(homes)
        if e.is_dir(follow_symlinks=False) and e.name not in NOT_HOMES and ACCOUNT.match(e.name)
    )


def prune(dest: Path, retention_days: int, now: float | None = None) -> list[str]:
    """Remove archives older than `retention_days` (never an account's newest) and stale .partial files."""
    now = time.time() if now is None else now
    cutoff = now - retention_days * 86400
    lines: list[str] = []
    by_account: dict[str, list[tuple[float, Path]]] = {}
    for path in sorted(dest.glob("*.manifest.json")):
        try:
            manifest = json.loads(path.read_text())
            created = calendar.timegm(time.strptime(manifest["created"], STAMP))
            by_account.setdefault(manifest["account"], []).append((created, path))
        except (OSError, ValueError, KeyError, TypeError) as e:
            lines.append(f"prune: kept {path.name}: cannot read its date ({e})")
    for account, found in sorted(by_account.items()):
        for created, path in sorted(found)[:-1]:  # the newest always stays
            if created < cutoff:
                archive = path.with_name(path.name.removesuffix(".manifest.json") + ".tar.gz")
                archive.unlink(missing_ok=True)
                path.unlink()
                lines.append(f"pruned {account}: {archive.name} (older than {retention_days} days)")
    for partial in sorted(dest.glob("*.partial")):
        if partial.stat().st_mtime < now - 86400:
            partial.unlink()
            lines.append(f"pruned {partial.name}: left by an interrupted run")
    return lines


def run_archive(
    homes: Path,
    dest: Path,
    accounts: list[str],
    running: set[str] | None = None,
    running_servers: str = "warn",
    max_bytes: int | None = None,
    retention_days: int = 0,
    stamp: str | None = None,
    *,
    folders: bool = False,
    account_max_bytes: int = ACCOUNT_MAX_BYTES,
    account_max_seconds: float = ACCOUNT_MAX_SECONDS,
) -> tuple[list[str], bool]:
    """Archive every account on its own; returns the report lines and whether all succeeded.

    `accounts` are hub user names, or home folder names with `folders` (--all). `running` may name either.
    """
    budget, lines, ok = Budget(max_bytes), [], True
    running = running or set()
    running_folders = running | {home_folder(name) for name in running}
    stamp = stamp or time.strftime(STAMP, time.gmtime())
    for account in accounts:
        folder = account if folders else home_folder(account)
        if TERMINATED.is_set():
            lines.append(f"FAILED {account}: not archived: the run was stopped (SIGTERM) before it")
            ok = False
            continue
        if folder in running_folders and running_servers == "skip":
            lines.append(f"skipped {account}: its server is running (archive.runningServers: skip)")
            continue
        limits = Limits(account_max_bytes, account_max_seconds)
        try:
            result = archive_account(
                homes, account, dest, stamp, budget, running=folder in running_folders, limits=limits, folder=folder
            )
        except ArchiveError as e:
            lines.append(f"FAILED {account}: {e}")
            ok = False
            continue
        except Exception as e:  # one account's surprise must not end the run for the others
            lines.append(f"FAILED {account}: {type(e).__name__}: {e}")
            ok = False
            continue
        assert result.archive is not None
        where = "" if folder == account else f"home folder {folder}, "
        lines.append(f"archived {account}: {result.archive.name} ({where}{result.files} files, {result.bytes} bytes)")
        lines += [f"warning {account}: {w}" for w in result.warnings]
    if retention_days > 0 and not TERMINATED.is_set():
        lines += prune(dest, retention_days)
    failed = sum(line.startswith("FAILED") for line in lines)
    lines.append(f"{len(accounts)} accounts: {failed} failed" + ("" if ok else " (exit code 1)"))
    # The Job's log goes with the Job (ttlSecondsAfterFinished): keep the report beside the archives.
    report = dest / f"report-{stamp}.txt"
    partial = dest / (report.name + ".partial")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with open(partial, "x") as f:
            f.write("\n".join(lines) + "\n")
        _fsync_replace(partial, report)
    except OSError as e:
        partial.unlink(missing_ok=True)
        lines.append(f"report not written to {report}: {e.strerror}")
    return lines, ok


def load_manifest(archive: Path) -> dict[str, Any]:
    """The archive's manifest, checked for shape and confinement; ArchiveError with one line otherwise."""
    path = manifest_path(archive)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArchiveError(f"{path} is missing: cannot restore {archive.name} without it") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ArchiveError(f"{path} cannot be read ({type(e).__name__}: cut short?): not restored") from None
    try:
        if manifest["format"] not in (FORMAT, OLD_FORMAT) or not ACCOUNT.match(manifest["account"]):
            raise ValueError("format or account")
        # Format 2 has no folder: its home is where KubeSpawner 7 mounts the account's home now.
        folder = manifest.setdefault("folder", home_folder(manifest["account"]))
        if not isinstance(folder, str) or folder not in (manifest["account"], home_folder(manifest["account"])):
            raise ValueError(f"folder {folder!r} is not the account's home folder")
        for entry in manifest["entries"]:
            _parts(entry["path"], path)
            if entry["type"] == "file":
                int(entry["size"]), int(entry["stored"]), int(entry["mode"]), str(entry["sha256"])
                if "extents" in entry:
                    _check_extents(entry)
        str(manifest["archive_sha256"])
    except (KeyError, TypeError, ValueError) as e:
        raise ArchiveError(f"{path} is not a complete coursehub manifest ({e}): not restored") from None
    return manifest


def _check_extents(entry: dict[str, Any]) -> None:
    end = 0
    for start, length in entry["extents"]:
        if not (isinstance(start, int) and isinstance(length, int) and start >= end and length > 0):
            raise ValueError(f"extents of {entry['path']}")
        end = start + length
    if end > entry["size"] or sum(length for _, length in entry["extents"]) != entry["stored"]:
        raise ValueError(f"extents of {entry['path']}")


def _parts(rel: str, manifest: Path) -> list[str]:
    parts = rel.split("/") if isinstance(rel, str) else []
    if not parts or rel.startswith("/") or "\0" in rel or any(p in ("", ".", "..") for p in parts):
        raise ArchiveError(f"{manifest}: entry {rel!r} leaves the home folder: not restored")
    return parts


def _open_dir(root_fd: int, parts: list[str], dev: int, mode: int = 0o700) -> int:
    """Open (creating) root/parts... one component at a time, never following a symlink, never off device `dev`."""
    # load_manifest has refused such paths already; this keeps it true whatever the caller.
    if any(p in ("", ".", "..") or "/" in p for p in parts):
        raise ArchiveError(f"{'/'.join(parts)!r} leaves the restore folder: not restored")
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                os.mkdir(part, mode, dir_fd=fd)
            except FileExistsError:
                pass
            child = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
            if os.fstat(fd).st_dev != dev:
                raise ArchiveError(f"{'/'.join(parts)} is on another filesystem: nothing kept")
        return fd
    except BaseException:
        os.close(fd)
        raise


@dataclass
class Restored:
    account: str
    folder: Path
    files: int
    not_restored: list[str]


def restore_account(
    archive: Path,
    homes: Path,
    account: str | None = None,
    path: str | None = None,
    stamp: str | None = None,
    max_bytes: int | None = None,
) -> Restored:
    """Restore an archive (or one folder or file of it, `path`) into <home>/restored-<stamp>/.

    `account` is the hub user the archive must be of (its name, or the name whose home folder it was made from).
    BadInput when a flag names something that is not there; ArchiveError for a damaged archive; nothing changed.
    """
    homes_fd = open_homes(homes)
    try:
        return _restore(archive, homes, homes_fd, account, path, stamp, max_bytes)
    finally:
        os.close(homes_fd)


def _restore(
    archive: Path,
    homes: Path,
    homes_fd: int,
    account: str | None,
    path: str | None,
    stamp: str | None,
    max_bytes: int | None,
) -> Restored:
    if account is not None and not ACCOUNT.match(account):
        raise BadInput(archive, "--account", f"{account!r} is not a hub user name", "give the name the hub shows")
    if not archive.is_file():
        raise BadInput(archive, "--archive", "no such archive", "name one of <account>-<time>.tar.gz in the volume")
    manifest = load_manifest(archive)
    owner, folder = manifest["account"], manifest["folder"]
    if account is not None and account != owner and home_folder(account) != folder:
        raise BadInput(
            archive, "--account", f"{archive.name} is {owner}'s archive, not {account}'s", f"restore it as {owner}"
        )
    entries = manifest["entries"]
    if path is not None:
        want = path.strip("/")
        try:
            parts = _parts(want, manifest_path(archive))
        except ArchiveError:
            raise BadInput(archive, "--path", f"{path!r} leaves the home folder", "give a path inside it") from None
        ancestors = {"/".join(parts[:i]) for i in range(1, len(parts))}  # restored with their modes too
        chosen = [e for e in entries if e["path"] == want or e["path"].startswith(want + "/")]
        if not chosen:
            raise BadInput(
                archive, "--path", f"{archive.name} holds no file or folder {want!r}", "name one its manifest lists"
            )
        entries = [e for e in entries if e["path"] in ancestors and e["type"] == "dir"] + chosen
    files = {e["path"]: e for e in entries if e["type"] == "file"}
    need = sum(e["stored"] for e in files.values())
    if max_bytes is not None and need > max_bytes:
        raise ArchiveError(f"restoring needs {need} bytes, more than the cap of {max_bytes}: nothing restored")
    space = os.fstatvfs(homes_fd)
    free = space.f_bavail * space.f_frsize
    if need > free:
        raise ArchiveError(f"restoring needs {need} bytes, {homes} has {free} free: nothing restored")
    _check_archive(archive, manifest, paths=set())  # the archive's sha256 and layout, before writing anything
    home = homes / folder
    stamp = stamp or time.strftime(STAMP, time.gmtime())
    restored = f"restored-{stamp}"
    dev = os.fstat(homes_fd).st_dev
    try:
        try:
            os.mkdir(folder, 0o755, dir_fd=homes_fd)  # a home removed since: restore beside nothing
        except FileExistsError:
            pass
        home_fd = os.open(folder, DIR_FLAGS, dir_fd=homes_fd)
    except OSError as e:
        raise ArchiveError(f"cannot open home folder {home}: {e.strerror}: nothing restored") from None
    try:
        if os.fstat(home_fd).st_dev != dev:
            raise ArchiveError(f"cannot open home folder {home}: another filesystem is mounted there: nothing restored")
        try:
            os.mkdir(restored, 0o700, dir_fd=home_fd)
        except FileExistsError:
            raise ArchiveError(f"{home / restored} already exists: not overwritten") from None
        root_fd = os.open(restored, DIR_FLAGS, dir_fd=home_fd)
        try:
            _restore_into(root_fd, dev, archive, manifest, entries, files)
        except BaseException:
            shutil.rmtree(restored, dir_fd=home_fd)
            raise
        finally:
            os.close(root_fd)
    except OSError as e:
        raise ArchiveError(f"{e.strerror or e} while restoring into {home / restored}: nothing kept") from None
    finally:
        os.close(home_fd)
    not_restored = [
        f"{e['type']} {e['path']}" + (f" -> {e['target']}" if "target" in e else "")
        for e in entries
        if e["type"] not in ("file", "dir")
    ]
    return Restored(owner, home / restored, len(files), not_restored)


def _restore_into(
    root_fd: int,
    dev: int,
    archive: Path,
    manifest: dict[str, Any],
    entries: list[dict[str, Any]],
    files: dict[str, dict[str, Any]],
) -> None:
    legacy = manifest["format"] == OLD_FORMAT
    dirs = [e for e in entries if e["type"] == "dir"]
    for entry in dirs:
        os.close(_open_dir(root_fd, entry["path"].split("/"), dev))
    done: set[str] = set()
    with tarfile.open(archive, mode="r|gz") as tar:
        for member in tar:
            entry = files.get(member.name)
            if entry is None:
                continue
            *parents, name = _parts(member.name, manifest_path(archive))
            parent_fd = _open_dir(root_fd, parents, dev)
            try:
                fd = os.open(
                    name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent_fd
                )
                try:
                    data = tar.extractfile(member)
                    assert data is not None
                    if _hash_member(data, entry, legacy, write_fd=fd) != entry["sha256"]:
                        raise ArchiveError(f"{member.name} differs from the manifest: nothing kept")
                    os.fchmod(fd, entry["mode"] & 0o777)
                finally:
                    os.close(fd)
            finally:
                os.close(parent_fd)
            done.add(member.name)
    if missing := set(files) - done:
        raise ArchiveError(f"{archive.name} lacks {min(missing)}: nothing kept")
    for entry in sorted(dirs, key=lambda e: -e["path"].count("/")):
        fd = _open_dir(root_fd, entry["path"].split("/"), dev)
        try:
            os.fchmod(fd, entry["mode"] & 0o777)
        finally:
            os.close(fd)


def _running(value: str | None, file: Path | None) -> set[str]:
    names = set(filter(None, (value or "").split(",")))
    if file is not None:
        names |= {line.strip() for line in file.read_text().splitlines() if line.strip()}
    return names


def whole_number(text: str) -> int:
    """A non-negative whole number (argparse type)."""
    n = int(text)
    if n < 0:
        raise ValueError(text)
    return n


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coursehub_archive")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("archive")
    a.add_argument("--homes", type=Path, required=True)
    a.add_argument("--dest", type=Path, required=True)
    a.add_argument("--all", action="store_true", help="every home folder under --homes")
    a.add_argument("--running", help="accounts whose servers are running, comma-separated")
    a.add_argument("--running-file", type=Path, help="the same, one per line")
    a.add_argument("--running-servers", choices=("warn", "skip"), default="warn")
    a.add_argument("--max-bytes", type=int, help="cap on the bytes this run writes")
    a.add_argument("--retention-days", type=int, default=0, help="then prune archives older than this")
    a.add_argument(
        "--account-max-bytes",
        type=whole_number,
        default=ACCOUNT_MAX_BYTES,
        help="stored data one account may read (holes do not count); default %(default)s (20 GiB)",
    )
    a.add_argument(
        "--account-max-seconds",
        type=whole_number,
        default=ACCOUNT_MAX_SECONDS,
        help="time one account may take; default %(default)s",
    )
    a.add_argument("accounts", nargs="*")
    p = sub.add_parser("prune")
    p.add_argument("--dest", type=Path, required=True)
    p.add_argument("--retention-days", type=int, required=True)
    r = sub.add_parser("restore")
    r.add_argument("--homes", type=Path, required=True)
    r.add_argument("--archive", type=Path, required=True)
    r.add_argument("--account", help="refuse an archive of another account")
    r.add_argument("--path", help="restore only this folder or file of the archive")
    r.add_argument("--max-bytes", type=int, help="cap on the bytes restored")
    return parser


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "prune":
        print("\n".join(prune(args.dest, args.retention_days) or ["prune: nothing to remove"]))
        return 0
    try:
        if args.command == "archive":
            return _main_archive(parser, args)
        done = restore_account(args.archive, args.homes, args.account, args.path, max_bytes=args.max_bytes)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ArchiveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"restored {done.account}: {done.files} files into {done.folder}")
    for line in done.not_restored:
        print(f"not restored {done.account}: {line} (recorded in the manifest only)")
    return 0


def _main_archive(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.all == bool(args.accounts):
        parser.error("give either --all or account names")
    os.close(open_homes(args.homes))
    try:
        running = _running(args.running, args.running_file)
    except OSError as e:
        raise BadInput(
            args.running_file, "--running-file", e.strerror or "cannot be read", "name a file that is there"
        ) from None
    accounts = home_accounts(args.homes) if args.all else args.accounts
    signal.signal(signal.SIGTERM, lambda *_: TERMINATED.set())  # stop at the next safe point, then report
    lines, ok = run_archive(
        args.homes,
        args.dest,
        accounts,
        running,
        args.running_servers,
        args.max_bytes,
        args.retention_days,
        folders=args.all,
        account_max_bytes=args.account_max_bytes,
        account_max_seconds=args.account_max_seconds,
    )
    print("\n".join(lines), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
