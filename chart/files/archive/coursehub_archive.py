"""Archive, prune and restore home directories (Python 3.11+, standard library only).

Run by the chart's archive and restore Jobs (templates/archive-*.yaml,
restore-job.yaml) from a ConfigMap, with the home directories' volume at --homes
and the archive volume at --dest/--archive. Tests import it as a module.

    python coursehub_archive.py archive --homes /homes --dest /archive (--all | ACCOUNT...)
        [--running a,b] [--running-servers warn|skip] [--max-bytes N] [--retention-days N]
    python coursehub_archive.py prune --dest /archive --retention-days N
    python coursehub_archive.py restore --homes /homes --archive /archive/A-STAMP.tar.gz
        [--account A] [--path project/] [--max-bytes N]

Archive: one compressed tar per account and a manifest beside it. Every file is
read once: the same bytes are hashed and written into the tar, so the manifest
describes exactly what the archive holds, even if a running server changes the
file meanwhile. The finished archive is read back and checked against the
manifest before it is renamed into place. Files with holes are stored as their
data extents only. Symlinks and special files are recorded in the manifest, not
archived; empty folders are kept. Each account is archived on its own: a failure
is one line of the report, nothing `.partial` stays behind, and the exit code is
1 when any account failed.

Restore never overwrites: it writes into a new folder `restored-<stamp>` inside
the account's home, every manifest path confined to that folder (no `..`, no
absolute paths, no symlinked parents: every folder is opened relative to its
parent without following links), after checking the archive against its
manifest and the restored size against the free space and the cap.
"""

from __future__ import annotations

import argparse
import calendar
import errno
import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tarfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

FORMAT = "coursehub-archive/2"
STAMP = "%Y%m%dT%H%M%SZ"
CHUNK = 1 << 20
ZEROS = bytes(CHUNK)
# Home folder names the Jobs accept: one path component, never hidden or `..`.
ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$")
# PAX header keys that carry a sparse file's extents and logical size.
SPARSE_MAP = "COURSEHUB.sparse.map"
SPARSE_SIZE = "COURSEHUB.sparse.size"
NOT_HOMES = {"lost+found"}


class ArchiveError(Exception):
    """One account's (or one restore's) failure, as the one line the report shows."""


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
    """One file's bytes as tarfile reads them: the data extents, hashed as logical content (holes as zeros)."""

    def __init__(self, fd: int, size: int, extents: list[tuple[int, int]]) -> None:
        self.fd, self.size, self.digest = fd, size, hashlib.sha256()
        self.pending = list(extents)
        self.pos = 0  # logical offset hashed so far

    def _zeros_to(self, offset: int) -> None:
        while self.pos < offset:
            n = min(CHUNK, offset - self.pos)
            self.digest.update(ZEROS[:n])
            self.pos += n

    def read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n and self.pending:
            start, length = self.pending[0]
            self._zeros_to(start)
            data = os.pread(self.fd, min(n - len(out), length), start)
            if not data:
                break  # the file shrank: tarfile reports "unexpected end of data"
            self.digest.update(data)
            self.pos += len(data)
            out += data
            self.pending[0] = (start + len(data), length - len(data))
            if self.pending[0][1] == 0:
                self.pending.pop(0)
        return bytes(out)

    def finish(self) -> str:
        self._zeros_to(self.size)
        return self.digest.hexdigest()


def _extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The file's data extents (offset, length); one extent when it has no holes or the filesystem cannot tell."""
    try:
        if os.lseek(fd, 0, os.SEEK_HOLE) >= size:
            return [(0, size)] if size else []
    except OSError:
        return [(0, size)] if size else []
    extents, offset = [], 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # only a hole is left
                break
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        if end > start:
            extents.append((start, end - start))
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


def _walk(home: Path, rel: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under `home`, parents first, sorted, symlinks not followed."""
    folder = home / rel if rel else home
    try:
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it)
    except OSError as e:
        raise ArchiveError(f"cannot list folder {rel or '.'}: {e.strerror}") from None
    for name in names:
        path = f"{rel}/{name}" if rel else name
        try:
            st = os.lstat(home / path)
        except FileNotFoundError:  # removed since the folder was listed: not archived, not in the manifest
            continue
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(home, path)


def manifest_path(archive: Path) -> Path:
    return archive.with_name(archive.name.removesuffix(".tar.gz") + ".manifest.json")


@dataclass
class Result:
    account: str
    archive: Path | None = None
    files: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)


def _add_file(tar: tarfile.TarFile, home: Path, rel: str, result: Result) -> dict[str, Any] | None:
    try:
        fd = os.open(home / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        result.warnings.append(f"{rel} was removed while archiving: not in the archive")
        return None
    except OSError as e:
        raise ArchiveError(
            f"cannot read {rel}: {e.strerror} (make it readable or remove it, then archive again)"
        ) from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise ArchiveError(f"{rel} became a {_kind(before.st_mode)} while archiving: archive again")
        extents = _extents(fd, before.st_size)
        stored = sum(length for _, length in extents)
        info = tarfile.TarInfo(rel)
        info.size, info.mode, info.mtime = stored, before.st_mode & 0o777, int(before.st_mtime)
        sparse = stored < before.st_size
        if sparse:
            info.pax_headers = {SPARSE_MAP: json.dumps(extents), SPARSE_SIZE: str(before.st_size)}
        source = _Source(fd, before.st_size, extents)
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
            "sha256": source.finish(),
        }
        if sparse:
            entry["extents"] = extents
        result.files += 1
        result.bytes += before.st_size
        return entry
    finally:
        os.close(fd)


def _hash_member(data: IO[bytes], entry: dict[str, Any], write_fd: int | None = None) -> str:
    """Hash one member's logical content as read from the tar (optionally writing it, holes left as holes)."""
    digest, pos = hashlib.sha256(), 0
    for start, length in entry.get("extents", [(0, entry["size"])] if entry["size"] else []):
        while pos < start:
            n = min(CHUNK, start - pos)
            digest.update(ZEROS[:n])
            pos += n
        if write_fd is not None:
            os.lseek(write_fd, start, os.SEEK_SET)
        while length:
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
    while pos < entry["size"]:
        n = min(CHUNK, entry["size"] - pos)
        digest.update(ZEROS[:n])
        pos += n
    if write_fd is not None:
        os.ftruncate(write_fd, entry["size"])
    return digest.hexdigest()


class _ReadHasher:
    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.digest = raw, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.digest.update(data)
        return data

    def drain(self) -> str:
        while self.read(CHUNK):
            pass
        return self.digest.hexdigest()


def _check_archive(archive: Path, manifest: dict[str, Any], paths: set[str] | None = None) -> None:
    """Read `archive` back: its sha256, and every member against the manifest (only `paths` hashed, if given)."""
    expected = {e["path"]: e for e in manifest["entries"] if e["type"] in ("file", "dir")}
    seen: set[str] = set()
    with open(archive, "rb") as raw:
        reader = _ReadHasher(raw)
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
                            if _hash_member(data, entry) != entry["sha256"]:
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


def archive_account(
    homes: Path,
    account: str,
    dest: Path,
    stamp: str | None = None,
    budget: Budget | None = None,
    running: bool = False,
) -> Result:
    """Write <dest>/<account>-<stamp>.tar.gz and its manifest, checked; raises ArchiveError with one line."""
    if not ACCOUNT.match(account):
        raise ArchiveError(f"{account!r} is not a home folder name")
    home = homes / account
    try:
        if not stat.S_ISDIR(os.lstat(home).st_mode):
            raise ArchiveError(f"{home} is not a folder")
    except FileNotFoundError:
        raise ArchiveError(f"has no home folder {home} (never started a server?)") from None
    stamp = stamp or time.strftime(STAMP, time.gmtime())
    target = dest / f"{account}-{stamp}.tar.gz"
    if target.exists() or manifest_path(target).exists():
        raise ArchiveError(f"{target} already exists: not overwritten")
    result = Result(account, target)
    if running:
        result.warnings.append("its server was running: files being written may be caught half-way")
    partial = dest / (target.name + ".partial")
    manifest_partial = dest / (manifest_path(target).name + ".partial")
    entries: list[dict[str, Any]] = []
    budget = budget or Budget(None)
    sink: _Sink | None = None
    text = b""
    created: list[Path] = []  # only what this run made is removed on failure
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with open(partial, "xb") as raw:
            created.append(partial)
            sink = _Sink(raw, budget)
            with tarfile.open(fileobj=sink, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for rel, st in _walk(home):
                    kind = _kind(st.st_mode)
                    if kind == "file":
                        if (entry := _add_file(tar, home, rel, result)) is not None:
                            entries.append(entry)
                    elif kind == "dir":
                        info = tarfile.TarInfo(rel)
                        info.type, info.mode, info.mtime = tarfile.DIRTYPE, st.st_mode & 0o777, int(st.st_mtime)
                        tar.addfile(info)
                        entries.append({"path": rel, "type": "dir", "mode": info.mode})
                    else:
                        entry = {"path": rel, "type": kind}
                        if kind == "symlink":
                            entry["target"] = os.readlink(home / rel)
                        entries.append(entry)
                        result.warnings.append(f"{kind} {rel} recorded in the manifest, not archived")
            raw.flush()
            os.fsync(raw.fileno())
        manifest = {
            "format": FORMAT,
            "account": account,
            "created": stamp,
            "archive": target.name,
            "archive_sha256": sink.digest.hexdigest(),
            "archive_bytes": sink.size,
            "entries": entries,
            "warnings": result.warnings,
        }
        _check_archive(partial, manifest)
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


def home_accounts(homes: Path) -> list[str]:
    """Every home folder under `homes` (the whole course)."""
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
) -> tuple[list[str], bool]:
    """Archive every account on its own; returns the report lines and whether all succeeded."""
    budget, lines, ok, running = Budget(max_bytes), [], True, running or set()
    stamp = stamp or time.strftime(STAMP, time.gmtime())
    for account in accounts:
        if account in running and running_servers == "skip":
            lines.append(f"skipped {account}: its server is running (archive.runningServers: skip)")
            continue
        try:
            result = archive_account(homes, account, dest, stamp, budget, running=account in running)
        except ArchiveError as e:
            lines.append(f"FAILED {account}: {e}")
            ok = False
            continue
        except Exception as e:  # one account's surprise must not end the run for the others
            lines.append(f"FAILED {account}: {type(e).__name__}: {e}")
            ok = False
            continue
        assert result.archive is not None
        lines.append(f"archived {account}: {result.archive.name} ({result.files} files, {result.bytes} bytes)")
        lines += [f"warning {account}: {w}" for w in result.warnings]
    if retention_days > 0:
        lines += prune(dest, retention_days)
    failed = sum(line.startswith("FAILED") for line in lines)
    lines.append(f"{len(accounts)} accounts: {failed} failed" + ("" if ok else " (exit code 1)"))
    # The Job's log goes with the Job (ttlSecondsAfterFinished): keep the report beside the archives.
    report = dest / f"report-{stamp}.txt"
    partial = dest / (report.name + ".partial")
    try:
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
        if manifest["format"] != FORMAT or not ACCOUNT.match(manifest["account"]):
            raise ValueError("format or account")
        for entry in manifest["entries"]:
            _parts(entry["path"], path)
            if entry["type"] == "file":
                int(entry["size"]), int(entry["stored"]), int(entry["mode"]), str(entry["sha256"])
        str(manifest["archive_sha256"])
    except (KeyError, TypeError, ValueError) as e:
        raise ArchiveError(f"{path} is not a complete coursehub manifest ({e}): not restored") from None
    return manifest


def _parts(rel: str, manifest: Path) -> list[str]:
    parts = rel.split("/") if isinstance(rel, str) else []
    if not parts or rel.startswith("/") or "\0" in rel or any(p in ("", ".", "..") for p in parts):
        raise ArchiveError(f"{manifest}: entry {rel!r} leaves the home folder: not restored")
    return parts


def _open_dir(root_fd: int, parts: list[str], mode: int = 0o700) -> int:
    """Open (creating) root/parts... one component at a time, never following a symlink."""
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
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = child
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
    """Restore an archive (or one folder or file of it, `path`) into <home>/restored-<stamp>/."""
    manifest = load_manifest(archive)
    if account is not None and manifest["account"] != account:
        raise ArchiveError(f"{archive.name} is {manifest['account']}'s archive, not {account}'s: not restored")
    account = manifest["account"]
    entries = manifest["entries"]
    if path is not None:
        want = path.strip("/")
        _parts(want, manifest_path(archive))
        parts = want.split("/")
        ancestors = {"/".join(parts[:i]) for i in range(1, len(parts))}  # restored with their modes too
        chosen = [e for e in entries if e["path"] == want or e["path"].startswith(want + "/")]
        if not chosen:
            raise ArchiveError(f"{archive.name} holds no file or folder {want!r}: nothing restored")
        entries = [e for e in entries if e["path"] in ancestors and e["type"] == "dir"] + chosen
    files = {e["path"]: e for e in entries if e["type"] == "file"}
    need = sum(e["stored"] for e in files.values())
    if max_bytes is not None and need > max_bytes:
        raise ArchiveError(f"restoring needs {need} bytes, more than the cap of {max_bytes}: nothing restored")
    free = shutil.disk_usage(homes).free
    if need > free:
        raise ArchiveError(f"restoring needs {need} bytes, {homes} has {free} free: nothing restored")
    if not archive.is_file():
        raise ArchiveError(f"{archive} is missing: nothing restored")
    _check_archive(archive, manifest, paths=set())  # the archive's sha256 and layout, before writing anything
    home = homes / account
    stamp = stamp or time.strftime(STAMP, time.gmtime())
    folder = f"restored-{stamp}"
    try:
        try:
            os.mkdir(home, 0o755)  # a home removed since: restore beside nothing
        except FileExistsError:
            pass
        home_fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise ArchiveError(f"cannot open home folder {home}: {e.strerror}: nothing restored") from None
    try:
        try:
            os.mkdir(folder, 0o700, dir_fd=home_fd)
        except FileExistsError:
            raise ArchiveError(f"{home / folder} already exists: not overwritten") from None
        root_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=home_fd)
        try:
            _restore_into(root_fd, archive, manifest, entries, files)
        except BaseException:
            shutil.rmtree(folder, dir_fd=home_fd)
            raise
        finally:
            os.close(root_fd)
    except OSError as e:
        raise ArchiveError(f"{e.strerror or e} while restoring into {home / folder}: nothing kept") from None
    finally:
        os.close(home_fd)
    not_restored = [
        f"{e['type']} {e['path']}" + (f" -> {e['target']}" if "target" in e else "")
        for e in entries
        if e["type"] not in ("file", "dir")
    ]
    return Restored(account, home / folder, len(files), not_restored)


def _restore_into(
    root_fd: int,
    archive: Path,
    manifest: dict[str, Any],
    entries: list[dict[str, Any]],
    files: dict[str, dict[str, Any]],
) -> None:
    dirs = [e for e in entries if e["type"] == "dir"]
    for entry in dirs:
        os.close(_open_dir(root_fd, entry["path"].split("/")))
    done: set[str] = set()
    with tarfile.open(archive, mode="r|gz") as tar:
        for member in tar:
            entry = files.get(member.name)
            if entry is None:
                continue
            *parents, name = _parts(member.name, manifest_path(archive))
            parent_fd = _open_dir(root_fd, parents)
            try:
                fd = os.open(
                    name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent_fd
                )
                try:
                    data = tar.extractfile(member)
                    assert data is not None
                    if _hash_member(data, entry, write_fd=fd) != entry["sha256"]:
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
        fd = _open_dir(root_fd, entry["path"].split("/"))
        try:
            os.fchmod(fd, entry["mode"] & 0o777)
        finally:
            os.close(fd)


def _running(value: str | None, file: Path | None) -> set[str]:
    names = set(filter(None, (value or "").split(",")))
    if file is not None:
        names |= {line.strip() for line in file.read_text().splitlines() if line.strip()}
    return names


def main(argv: list[str]) -> int:
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
    args = parser.parse_args(argv)
    if args.command == "archive":
        if args.all == bool(args.accounts):
            parser.error("give either --all or account names")
        accounts = home_accounts(args.homes) if args.all else args.accounts
        try:
            running = _running(args.running, args.running_file)
        except OSError as e:
            print(f"error: {args.running_file}: {e.strerror}", file=sys.stderr)
            return 1
        lines, ok = run_archive(
            args.homes, args.dest, accounts, running, args.running_servers, args.max_bytes, args.retention_days
        )
        print("\n".join(lines), flush=True)
        return 0 if ok else 1
    if args.command == "prune":
        print("\n".join(prune(args.dest, args.retention_days) or ["prune: nothing to remove"]))
        return 0
    try:
        done = restore_account(args.archive, args.homes, args.account, args.path, max_bytes=args.max_bytes)
    except ArchiveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"restored {done.account}: {done.files} files into {done.folder}")
    for line in done.not_restored:
        print(f"not restored {done.account}: {line} (recorded in the manifest only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
