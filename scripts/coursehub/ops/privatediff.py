"""`make private-diff`: which keys of a course's private layer changed since a commit, never a value.

The private layer (values/<course>.secret.enc.yaml, or the git-ignored
values/<course>.secret.yaml) is ciphertext in review. This compares its version
at a git commit (the last deploy's) with the work tree's and prints the key
paths added, removed or changed (keychanges.py: values redacted, lists as
counts, membership down to the groups only). The old version comes from
`git cat-file` and is decrypted by sops from a pipe: no plaintext is written
anywhere. When both versions are encrypted and their recipients (the age keys
that can decrypt them, read from sops' metadata) differ, a line says which keys
were added and removed: public keys, not secrets.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursehub.courses import ENCRYPTED_SUFFIX, SECRET_SUFFIX, parse_yaml
from coursehub.errors import CoursehubError, Problem
from coursehub.ops import sops
from coursehub.ops.keychanges import changes
from coursehub.paths import display
from coursehub.paths import values_dir as default_values_dir

WHERE = "make private-diff"
COURSE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Version:
    """One side of the comparison: the layer's path in the repository (None: there is none), its plaintext and,
    when it is encrypted, who can decrypt it (sops' recipients)."""

    path: str | None
    data: dict[str, Any]
    recipients: frozenset[str] | None = None


def private_diff(course: str, base: str, values_dir: Path | None = None) -> list[str]:
    """A heading, then one line per changed key path, or `no changes`."""
    values_dir = (values_dir or default_values_dir()).resolve()
    if not COURSE_NAME.fullmatch(course):
        raise CoursehubError(Problem(WHERE, "COURSE", f"{course!r} is not a course name", "name a course in values/"))
    repo = _toplevel(values_dir)
    commit = _commit(repo, base)
    folder = values_dir.relative_to(repo).as_posix()
    in_git = f"{folder}/" if folder != "." else ""
    if not (values_dir / f"{course}.yaml").is_file() and not _blob(repo, commit, f"{in_git}{course}.yaml"):
        raise CoursehubError(
            Problem(
                display(values_dir / f"{course}.yaml"),
                "",
                f"there is no course {course!r} here or at {base}",
                "name a course in values/",
            )
        )
    old = _at_commit(repo, commit, in_git, course)
    new = _in_work_tree(values_dir, in_git, course)
    lines = [f"{course}: private layer at {base} ({commit[:12]}) -> work tree"]
    if old.path and new.path and old.path != new.path:
        lines.append(f"moved file {old.path} -> {new.path}")
    elif new.path and not old.path:
        lines.append(f"new file {new.path}")
    elif old.path and not new.path:
        lines.append(f"removed file {old.path}")
    elif not old.path and not new.path:
        lines.append(f"no private layer ({in_git}{course}{ENCRYPTED_SUFFIX}) at {base} or in the work tree")
    if old.recipients is not None and new.recipients is not None and old.recipients != new.recipients:
        said = [
            f"{verb} {', '.join(sorted(keys))}"
            for verb, keys in (("added", new.recipients - old.recipients), ("removed", old.recipients - new.recipients))
            if keys
        ]
        lines.append(f"recipients changed: {'; '.join(said)}")
    found = changes(old.data, new.data)
    return lines + (found or ["no key changes" if lines[-1].startswith("recipients") else "no changes"])


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True)
    except FileNotFoundError:
        raise CoursehubError(Problem("git", "", "is not installed", "install git")) from None


def _toplevel(values_dir: Path) -> Path:
    result = _git(values_dir, "rev-parse", "--show-toplevel")
    if result.returncode != 0:
        raise CoursehubError(
            Problem(
                display(values_dir),
                "",
                "is not in a git repository, so there is no earlier version to compare with",
                "run it in the course repository's clone",
            )
        )
    return Path(result.stdout.decode().strip()).resolve()


def _commit(repo: Path, base: str) -> str:
    bad = not base or base.startswith("-")  # never an option to git
    result = None if bad else _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{base}^{{commit}}")
    if result is None or result.returncode != 0:
        raise CoursehubError(
            Problem(
                WHERE,
                "BASE",
                f"{base!r} is not a commit in {repo}",
                "give a commit, branch or tag this clone has (a shallow clone lacks history: fetch-depth: 0)",
            )
        )
    return result.stdout.decode().strip()


def _blob(repo: Path, commit: str, path: str) -> str | None:
    """The object id of `path` at `commit`, if it is a file there."""
    listed = _git(repo, "ls-tree", "-z", commit, "--", path).stdout.decode()
    meta = listed.split("\t", 1)[0].split()
    return meta[2] if len(meta) == 3 and meta[1] == "blob" else None


def _at_commit(repo: Path, commit: str, in_git: str, course: str) -> Version:
    found = []
    for suffix in (ENCRYPTED_SUFFIX, SECRET_SUFFIX):
        path = f"{in_git}{course}{suffix}"
        blob = _blob(repo, commit, path)
        if blob:
            found.append((path, blob, suffix == ENCRYPTED_SUFFIX))
    if not found:
        return Version(None, {})
    if len(found) > 1:
        raise CoursehubError(
            Problem(
                f"{found[1][0]} at {commit[:12]}",
                "",
                f"exists beside {found[0][0]}, so it is unclear which secrets counted",
                "compare with a commit that has one of them",
            )
        )
    path, blob, encrypted = found[0]
    name = f"{path} at {commit[:12]}"
    shown = _git(repo, "cat-file", "blob", blob)
    if shown.returncode != 0:
        raise CoursehubError(Problem(name, "", "cannot be read from git", "check the clone (git fsck)"))
    text = _text(shown.stdout, name)
    if not encrypted:
        return Version(path, parse_yaml(text, name, keep=False))
    return Version(path, parse_yaml(_decrypt(text, name), name, keep=False), _recipients(text, name))


def _in_work_tree(values_dir: Path, in_git: str, course: str) -> Version:
    encrypted, plain = values_dir / f"{course}{ENCRYPTED_SUFFIX}", values_dir / f"{course}{SECRET_SUFFIX}"
    if encrypted.is_file() and plain.is_file():
        raise CoursehubError(
            Problem(
                display(plain),
                "",
                f"exists beside {display(encrypted)}, so it is unclear which secrets count",
                f"keep one: `make edit-secrets COURSE={course}` edits the encrypted one; then delete this file",
            )
        )
    for path in (encrypted, plain):
        if path.is_file():
            try:
                raw = path.read_bytes()
            except OSError as e:
                raise CoursehubError(
                    Problem(display(path), "", f"cannot be read ({e.strerror})", "check its permissions")
                ) from None
            text, name = _text(raw, display(path)), display(path)
            if path != encrypted:
                return Version(f"{in_git}{path.name}", parse_yaml(text, name, keep=False))
            data = parse_yaml(_decrypt(text, name), name, keep=False)
            return Version(f"{in_git}{path.name}", data, _recipients(text, name))
    return Version(None, {})


def _text(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CoursehubError(Problem(name, "", "is not UTF-8 text", "save the file as UTF-8")) from None


def _recipients(text: str, name: str) -> frozenset[str]:
    """Who can decrypt a file, from its sops metadata (sops has just decrypted it, so it has some)."""
    found = sops.recipients(text)
    if found is None:
        raise CoursehubError(Problem(name, "sops", "has no sops metadata", "`make edit-secrets` re-encrypts it"))
    return found


def _decrypt(text: str, name: str) -> str:
    """sops decrypt of a file's text given through a pipe: the plaintext stays in this process's memory."""
    result = subprocess.run(
        sops.command("decrypt", "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"),
        input=text,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = lines[0].rstrip(".") if lines else "sops failed"
        raise CoursehubError(Problem(name, "", f"cannot be decrypted ({reason})", sops.NO_KEY_FIX))
    return result.stdout
