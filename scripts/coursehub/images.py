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
import shutil
import subprocess
import sys
from dataclasses import dataclass
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
    """The variant's environment, built first if needed. Returns the venv folder."""
    env = variant.env
    if variant.built:
        return env
    if env.exists():  # an earlier build was interrupted
        shutil.rmtree(env)
    print(f"building {variant.ref}'s Python environment in {display(env)} (cached afterwards)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    result = subprocess.run(
        [
            str(env / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-r",
            str(variant.requirements),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(env, ignore_errors=True)
        raise CoursehubError(
            Problem(
                display(variant.requirements),
                "",
                "pip could not build the environment:\n" + result.stderr[-2000:],
                "correct the pins named above",
            )
        )
    (env / _COMPLETE).write_text(variant.requirements.read_text())
    return env
