"""Course images: their definitions in image/<course>/, and their Python environments built here.

    image/<course>/image.yaml            name: the image's repository (values point at it)
    image/<course>/<tag>/Dockerfile      how ops build that variant
    image/<course>/<tag>/requirements.txt  every Python package, pinned

A course's values deploy the variant whose folder is named by
`singleuser.image.tag`. No container engine exists here, so an image's Python
environment is built as a venv in .tools/envs/<course>-<tag>-<hash of its
requirements>: changing a pin builds a new environment for that variant and
leaves every other one alone.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml

from coursehub.errors import CoursehubError, Problem
from coursehub.paths import ROOT, TOOLS, display

IMAGES = ROOT / "image"
ENVS = TOOLS / "envs"
_COMPLETE = ".coursehub-complete"


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
        digest = hashlib.sha256(self.requirements.read_bytes()).hexdigest()[:12]
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


def ensure_env(variant: Variant) -> Path:
    """The variant's environment, built first if needed. Returns the venv folder.

    A first build takes minutes: it reports each step, with package counts and
    sizes, on stderr so nobody stares at a silent terminal.
    """
    env = variant.env
    if variant.built:
        return env
    if env.exists():  # an earlier build was interrupted
        shutil.rmtree(env)
    total = len(variant.pins())
    started = time.monotonic()
    say = partial(print, file=sys.stderr, flush=True)
    say(f"building {variant.ref}'s Python environment in {display(env)} (once; cached afterwards)")
    say("  step 1/3: creating the virtual environment")
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    say(f"  step 2/3: installing {total} pinned packages from {display(variant.requirements)} (pip; minutes)")
    progress = PipProgress(total)
    tail: list[str] = []
    with subprocess.Popen(
        [
            str(env / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-r",
            str(variant.requirements),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as pip:
        assert pip.stdout is not None
        for line in pip.stdout:
            tail = [*tail[-40:], line]
            message = progress.feed(line)
            if message:
                say(f"    {message}")
    if pip.returncode != 0:
        shutil.rmtree(env, ignore_errors=True)
        raise CoursehubError(
            Problem(
                display(variant.requirements),
                "",
                "pip could not build the environment:\n" + "".join(tail)[-2000:],
                "correct the pins named above",
            )
        )
    (env / _COMPLETE).write_text(variant.requirements.read_text())
    size = sum(f.stat().st_size for f in env.rglob("*") if f.is_file() and not f.is_symlink())
    say(f"  step 3/3: done: {total} packages, {size / 1e6:.0f} MB on disk, in {time.monotonic() - started:.0f} s")
    return env


class PipProgress:
    """Turns pip's output into a line every `every` packages: how many of the pins, and how many MB so far."""

    def __init__(self, total: int, every: int = 10) -> None:
        self.total, self.every = total, every
        self.collected = 0
        self.megabytes = 0.0

    def feed(self, line: str) -> str | None:
        line = line.strip()
        size = re.search(r"^(?:Downloading|Using cached) \S+ \(([\d.]+) (kB|MB|GB)\)$", line)
        if size:
            self.megabytes += float(size[1]) * {"kB": 1e-3, "MB": 1.0, "GB": 1e3}[size[2]]
            return None
        if line.startswith(("Collecting ", "Processing ")):  # from the index, or a wheel in a local mirror
            self.collected += 1
            local = Path(line.removeprefix("Processing ").split(" (from ")[0])
            if line.startswith("Processing ") and local.is_file():
                self.megabytes += local.stat().st_size / 1e6
            if self.collected % self.every == 0 or self.collected == self.total:
                return f"fetched {self.collected}/{self.total} packages ({self.megabytes:.1f} MB so far)"
            return None
        if line.startswith("Installing collected packages:"):
            count = len(line.partition(":")[2].split(","))
            return f"unpacking {count} packages ({self.megabytes:.1f} MB downloaded) into the environment"
        return None
