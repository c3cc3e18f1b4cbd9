"""Archive and restore shared accounts' home directories (standard library only).

Run by the chart's archive and restore Jobs (templates/archive-*.yaml), from a
ConfigMap, with the home directories' volume at --homes and the archive volume
at --dest. Tests import it as a module.

    python coursehub_archive.py archive --homes /homes --dest /archive ACCOUNT...
    python coursehub_archive.py restore --homes /homes --archive /archive/ACCOUNT-STAMP.tar.gz [--force]

One compressed archive per account, with a manifest beside it listing every
file's path, size, mode and sha256 (and the archive's own sha256). Restore
checks the archive against its manifest, refuses a non-empty home unless
--force, and checks every restored file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
import time
from pathlib import Path
from typing import Any


class ArchiveError(Exception):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(home: Path) -> list[Path]:
    return sorted(p for p in home.rglob("*") if p.is_file() and not p.is_symlink())


def archive_account(homes: Path, account: str, dest: Path, stamp: str | None = None) -> Path:
    """Write <dest>/<account>-<stamp>.tar.gz and its .manifest.json; returns the archive."""
    home = homes / account
    if not home.is_dir():
        raise ArchiveError(f"{home} does not exist")
    stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{account}-{stamp}.tar.gz"
    partial = target.with_name(target.name + ".partial")
    files = _files(home)
    with tarfile.open(partial, "w:gz") as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(home)), recursive=False)
    manifest = {
        "account": account,
        "created": stamp,
        "archive": target.name,
        "archive_sha256": _sha256(partial),
        "files": [
            {
                "path": str(p.relative_to(home)),
                "size": p.stat().st_size,
                "mode": p.stat().st_mode & 0o777,
                "sha256": _sha256(p),
            }
            for p in files
        ],
    }
    os.replace(partial, target)
    manifest_path(target).write_text(json.dumps(manifest, indent=1))
    return target


def manifest_path(archive: Path) -> Path:
    return archive.with_name(archive.name.removesuffix(".tar.gz") + ".manifest.json")


def restore_account(archive: Path, homes: Path, force: bool = False, account: str | None = None) -> dict[str, Any]:
    """Restore one account's home from `archive`; returns its manifest."""
    manifest = json.loads(manifest_path(archive).read_text())
    if account is not None and manifest["account"] != account:
        raise ArchiveError(f"{archive} is {manifest['account']}'s archive, not {account}'s: not restored")
    if _sha256(archive) != manifest["archive_sha256"]:
        raise ArchiveError(f"{archive} does not match its manifest (sha256 differs): not restored")
    home = homes / manifest["account"]
    if home.exists() and any(home.iterdir()) and not force:
        raise ArchiveError(f"{home} is not empty: not restored (use --force to restore over it)")
    home.mkdir(parents=True, exist_ok=True)
    expected = {f["path"]: f for f in manifest["files"]}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            target = (home / member.name).resolve()
            if not member.isfile() or member.name not in expected or home.resolve() not in target.parents:
                raise ArchiveError(f"{archive}: unexpected entry {member.name!r}: not restored")
        tar.extractall(home, filter="data")
    for path, entry in expected.items():
        restored = home / path
        if _sha256(restored) != entry["sha256"]:
            raise ArchiveError(f"{restored} differs from the manifest after restore")
        os.chmod(restored, entry["mode"])
    return manifest


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="coursehub_archive")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("archive")
    a.add_argument("--homes", type=Path, required=True)
    a.add_argument("--dest", type=Path, required=True)
    a.add_argument("accounts", nargs="+")
    r = sub.add_parser("restore")
    r.add_argument("--homes", type=Path, required=True)
    r.add_argument("--archive", type=Path, required=True)
    r.add_argument("--account", help="refuse an archive of another account")
    r.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "archive":
            for account in args.accounts:
                print(f"archived {account}: {archive_account(args.homes, account, args.dest)}")
        else:
            manifest = restore_account(args.archive, args.homes, args.force, args.account)
            print(f"restored {manifest['account']}: {len(manifest['files'])} files")
    except ArchiveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
