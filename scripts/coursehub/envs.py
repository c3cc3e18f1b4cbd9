"""A course image's Python environment, built here as a cached venv (no container engine exists here).

image/<course>/requirements.txt pins every package of the course's singleuser
image. The venv lives in .tools/envs/<course>-<hash of that file>: changing a pin
builds a new environment for that course and leaves every other one alone.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from coursehub.errors import CoursehubError, Problem
from coursehub.paths import ROOT, TOOLS, display

IMAGES = ROOT / "image"
ENVS = TOOLS / "envs"
_COMPLETE = ".coursehub-complete"


def requirements(course: str) -> Path:
    path = IMAGES / course / "requirements.txt"
    if not path.is_file():
        raise CoursehubError(
            Problem(
                display(path),
                "",
                f"course {course} has no image requirements",
                f"pin the image's Python packages in {display(path)}",
            )
        )
    return path


def env_path(course: str) -> Path:
    digest = hashlib.sha256(requirements(course).read_bytes()).hexdigest()[:12]
    return ENVS / f"{course}-{digest}"


def ensure_env(course: str, quiet: bool = True) -> Path:
    """The course's environment, built first if needed. Returns the venv folder."""
    env = env_path(course)
    if (env / _COMPLETE).exists():
        return env
    if env.exists():  # an earlier build was interrupted
        shutil.rmtree(env)
    print(f"building {course}'s singleuser environment in {display(env)} (cached afterwards)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    result = subprocess.run([*pip, "-r", str(requirements(course))], capture_output=quiet, text=True)
    if result.returncode != 0:
        raise CoursehubError(
            Problem(
                display(requirements(course)),
                "",
                f"pip could not build the environment:\n{(result.stderr or '')[-2000:]}",
                "correct the pins named above",
            )
        )
    (env / _COMPLETE).write_text(requirements(course).read_text())
    return env
