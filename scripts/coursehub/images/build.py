"""Course images: their definitions in image/<course>/, and their Python environments built here.

    image/<course>/image.yaml            name: the image's repository (values point at it)
    image/<course>/<tag>/Dockerfile      how ops build that variant
    image/<course>/<tag>/requirements.txt  every Python package, pinned

A course's values deploy the variant whose folder is named by
`singleuser.image.tag`. No container engine exists here, so an image's Python
environment is built as a venv in .tools/envs/<course>-<tag>-<hash of its
requirements>: changing a pin builds a new environment for that variant and
leaves every other one alone. Environments are built with uv (pinned in
requirements.in, run from coursehub's own venv): several times faster than pip
on a first run (`make bench` measures it).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from coursehub.errors import CoursehubError, Problem
from coursehub.paths import ROOT, TOOLS, display

IMAGES = ROOT / "image"
ENVS = TOOLS / "envs"
_COMPLETE = ".coursehub-complete"
BUILDER = b"uv --no-deps\n"  # how environments are built: part of their folder names (Variant.env)


@dataclass(frozen=True)
class Variant:
    course: str
    name: str  # the image repository
    tag: str
    folder: Path

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def requirements(self) -> Path:
        return self.folder / "requirements.txt"

    def pins(self) -> dict[str, str]:
        """Package name (normalised) -> pinned version."""
        pins = {}
        for line in self.requirements.read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                name, _, version = line.partition("==")
                pins[name.strip().lower().replace("_", "-")] = version.strip()
        return pins

    @property
    def env(self) -> Path:
        # The builder is part of the name: environments built another way earlier (by pip, or by uv with their
        # dependencies resolved) are not taken for these, so the image check runs on what a new machine builds.
        digest = hashlib.sha256(BUILDER + self.requirements.read_bytes()).hexdigest()[:12]
        return ENVS / f"{self.course}-{self.tag}-{digest}"

    @property
    def built(self) -> bool:
        return (self.env / _COMPLETE).exists()


def variants(course: str, images: Path = IMAGES) -> list[Variant]:
    """Every variant of a course's image, oldest tag first."""
    meta = images / course / "image.yaml"
    if not meta.is_file():
        raise CoursehubError(
            Problem(
                display(meta),
                "",
                f"course {course} has no image definition",
                f"create {display(meta)} with the image's name, and one folder per tag",
            )
        )
    name = (yaml.safe_load(meta.read_text()) or {}).get("name")
    if not isinstance(name, str) or not name:
        raise CoursehubError(Problem(display(meta), "name", "is missing", "give the image's repository name"))
    found = [
        Variant(course, name, d.name, d)
        for d in sorted((images / course).iterdir())
        if d.is_dir() and (d / "requirements.txt").is_file()
    ]
    if not found:
        raise CoursehubError(
            Problem(
                display(images / course), "", "has no variant folder", "add <tag>/Dockerfile and <tag>/requirements.txt"
            )
        )
    return found


def deployed(course: str, tag: str, images: Path = IMAGES) -> Variant:
    """The variant a course's values deploy."""
    for variant in variants(course, images):
        if variant.tag == tag:
            return variant
    raise CoursehubError(
        Problem(
            display(images / course),
            tag,
            f"there is no image variant {tag!r}",
            f"add image/{course}/{tag}/ or set singleuser.image.tag to an existing variant",
        )
    )


def uv_bin() -> Path:
    """uv from the venv coursehub runs in (requirements pin and hash it), never whatever `uv` is on PATH."""
    uv = Path(sysconfig.get_path("scripts")) / "uv"
    if not uv.is_file():
        raise CoursehubError(
            Problem(
                "requirements.txt",
                "uv",
                f"is not installed in coursehub's venv ({sys.prefix})",
                "run make venv, which installs the pinned uv",
            )
        )
    return uv


def ensure_env(variant: Variant) -> Path:
    """The variant's environment, built first if needed. Returns the venv folder.

    Two processes may want the same environment at once (parallel tests, a demo beside a test run): the
    first builds it under a lock beside it, the other waits and then finds it built. The environment is
    built in place (its scripts name their own path), never moved.
    """
    if variant.built:
        return variant.env
    locks = variant.env.parent.parent / "locks"  # beside the environments' folder, which holds environments only
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{variant.env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if not variant.built:
            build_env(variant, variant.env)
    return variant.env


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


HEARTBEAT_S = 15.0


def build_env(variant: Variant, env: Path, environ: Mapping[str, str] | None = None) -> None:
    """Build the variant's environment in `env` with uv, reporting each step with counts and sizes on stderr.

    Whatever stops the build (a bad pin, no network, Ctrl-C) removes the
    half-built folder, so the next run starts clean; a failure of uv is one
    line naming the requirements file and, when uv names it, the pin.
    `environ` replaces the process environment for uv (the benchmark gives it
    an empty cache).
    """
    uv = uv_bin()
    if env.exists():  # an earlier build was interrupted before this code removed it
        shutil.rmtree(env)
    total = len(variant.pins())
    started = time.monotonic()
    _say(f"building {variant.ref}'s Python environment in {display(env)} (once; cached afterwards)")
    try:
        _say("  step 1/3: creating the virtual environment (uv venv)")
        # --no-project: the repository's pyproject.toml describes coursehub, not the image.
        venv = [str(uv), "venv", "--no-project", "--color", "never", "--python", sys.executable, str(env)]
        _run_uv(venv, variant, UvProgress(0), "check that coursehub's Python and its venv are intact", environ)
        _say(f"  step 2/3: installing {total} pinned packages from {display(variant.requirements)} (uv)")
        python = ["--python", str(env / "bin" / "python")]
        # --no-deps: exactly the file, as the Dockerfile's `pip install --no-deps` (a file may leave out on
        # purpose a package nothing needs); `uv pip check` then fails on any dependency the file does not pin.
        install = [str(uv), "pip", "install", "--color", "never", "--no-deps", *python]
        fix = "correct the pin uv names: a version that exists on the index for this Python"
        _run_uv([*install, "-r", str(variant.requirements)], variant, UvProgress(total), fix, environ)
        _check_pins(variant, [str(uv), "pip", "check", "--color", "never", *python], environ)
        (env / _COMPLETE).write_text(variant.requirements.read_text())
    except BaseException:
        shutil.rmtree(env, ignore_errors=True)
        raise
    size = sum(f.stat().st_size for f in env.rglob("*") if f.is_file() and not f.is_symlink())
    _say(f"  step 3/3: done: {total} packages, {size / 1e6:.1f} MB on disk, in {time.monotonic() - started:.0f} s")


def _run_uv(
    command: list[str], variant: Variant, progress: UvProgress, fix: str, environ: Mapping[str, str] | None
) -> None:
    """Run uv, turning its output into progress lines; while it is silent (downloads), say so every HEARTBEAT_S."""
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(environ if environ is not None else os.environ),
    ) as uv:
        # A thread reads, so that the wait for the next line can time out (select() misses lines already buffered).
        assert uv.stdout is not None
        reader = threading.Thread(target=_pump, args=(uv.stdout, lines.put), daemon=True)
        reader.start()
        started = time.monotonic()
        try:
            while True:
                try:
                    line = lines.get(timeout=HEARTBEAT_S)
                except queue.Empty:
                    _say(f"    still {progress.phase} ({time.monotonic() - started:.0f} s)")
                    continue
                if line is None:
                    break
                output.append(line)
                message = progress.feed(line)
                if message:
                    _say(f"    {message}")
        except BaseException:
            uv.kill()
            raise
    if uv.returncode != 0:
        raise CoursehubError(_failure(variant, output, uv.returncode, fix))


_MISSING = re.compile(r"The package `([^`]+)` requires `([^`]+)`, but it's not installed")


def _check_pins(variant: Variant, command: list[str], environ: Mapping[str, str] | None) -> None:
    """Every dependency of every installed package is in the file (as `pip check` in the Dockerfile demands)."""
    result = subprocess.run(
        command, capture_output=True, text=True, env=dict(environ if environ is not None else os.environ)
    )
    if result.returncode == 0:
        _say("    checked: the file pins every dependency of every package (uv pip check)")
        return
    said = (result.stdout + result.stderr).strip()
    missing = _MISSING.findall(said)
    found = "; ".join(f"{needed} (for {package})" for package, needed in missing) or said.replace("\n", "; ")[:600]
    raise CoursehubError(
        Problem(
            display(variant.requirements),
            re.split(r"[^A-Za-z0-9._-]", missing[0][1])[0] if missing else "",
            f"the file does not pin every dependency: {found}; nothing was kept",
            "pin each of them in the file: the image installs exactly the file (pip install --no-deps)",
        )
    )


def _pump(stream: IO[str], put: Callable[[str | None], None]) -> None:
    for line in stream:
        put(line)
    put(None)


def _failure(variant: Variant, output: list[str], status: int, fix: str) -> Problem:
    """uv's error as one line: its `error:` line and the causes under it, naming the pin when uv names one."""
    text = "".join(output)
    start = next((i for i, line in enumerate(output) if line.startswith("error:")), max(len(output) - 5, 0))
    parts = [re.sub(r"^(error|caused by|cause|hint):\s*|^[\s╰─▶]+", "", line.strip()) for line in output[start:]]
    reason = "; ".join(p for p in parts if p) or f"uv exited with status {status} and no message"
    named = [f"{name}=={version}" for name, version in variant.pins().items() if f"{name}=={version}" in text.lower()]
    return Problem(
        display(variant.requirements),
        named[0] if named else "",
        f"uv could not build the environment ({reason[:600]}); nothing was kept",
        fix,
    )


class UvProgress:
    """One line per step of `uv pip install` (resolve, fetch, install), with counts; `phase` says what runs now.

    uv prints a summary line when each step ends (nothing while it downloads when
    its output is not a terminal), so the step lines are those summaries and the
    waits between them get a heartbeat naming the step under way.
    """

    _STEP = re.compile(r"^(Resolved|Prepared|Installed|Audited) (\d+) packages? in (\S+)$")

    def __init__(self, total: int) -> None:
        self.total = total
        self.phase = "creating the environment" if total == 0 else f"resolving {total} pins"
        self.installed: list[str] = []  # name==version, as uv lists them

    def feed(self, line: str) -> str | None:
        line = line.strip()
        if line.startswith("+ "):
            self.installed.append(line[2:].strip())
            return None
        if line.startswith("warning:"):
            return line
        step = self._STEP.match(line)
        if not step:
            return None
        verb, count, took = step[1], int(step[2]), step[3]
        if verb == "Resolved":
            self.phase = f"downloading and unpacking (of {count} packages)"
            return f"resolved {count} packages for {self.total} pins in {took}"
        if verb == "Prepared":
            self.phase = "installing into the environment"
            return f"fetched {count} packages (downloads and uv's cache) in {took}"
        if verb == "Installed":
            self.phase = "finishing"
            return f"installed {count} packages into the environment in {took}"
        return f"{count} packages already installed ({took})"
