"""coursehub's hub image, and the environment the local hub runs from (`make check-hub-image`).

    image/hub/image.yaml                   name: the image's repository (chart/values.yaml's jupyterhub.hub.image)
    image/hub/<tag>/Dockerfile             FROM z2jh 4.4.0's hub image; its build context is the repository root
    image/hub/<tag>/requirements.txt       what the image changes in the base image's packages, hash-pinned
    image/hub/<tag>/local-requirements.txt the image's packages a hub process imports, for the local hub
    image/hub/<tag>/content.sha256         the hash of everything the image is built from (content_sha256)

An image tag is never built twice: the deploy workflow pushes a tag once and skips it after. So a change to
anything the image is built from (hub/, the Dockerfile, its requirements) must be a new tag, which a plain
`helm upgrade` then rolls out; `content.sha256` is how a change that forgot it is caught.

The local environment is a course image's (build.py: uv, exactly the file, `uv pip check`, cached in
.tools/envs/ by the file's hash), built from local-requirements.txt, and then the coursehub-hub package is
installed into it from the very files the Dockerfile copies, as the Dockerfile installs it.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coursehub.chart import upstream
from coursehub.errors import CoursehubError, Problem
from coursehub.images.build import IMAGES, Variant, ensure_env, uv_bin
from coursehub.paths import CHART, display

HUB = "hub"  # the image's folder in image/, and its environments' prefix in .tools/envs/
CONTENT_FILE = "content.sha256"
NEW_TAG = (
    "hub/ or the image changed: make a new tag image/hub/<version>/, bump hub/pyproject.toml's version and "
    "point chart/values.yaml's jupyterhub.hub.image.tag at it"
)
# JupyterHub's security release: 5.5.1 to 5.5.4 fix GHSA-c4gm-pwx9-9w8j, GHSA-69wv-m5fw-2fhp and
# GHSA-mj6q-mp44-53v8; 5.5.3 refuses the 64-character tokens z2jh generates (5.5.4 fixed it), as does 6.1.0.
SECURITY_RELEASE = (5, 5, 4)
BROKEN_RELEASES = frozenset({"5.5.3", "6.1.0"})
_INSTALLED = ".coursehub-hub-installed"  # in the environment: the content hash the package was installed from
_IGNORED = ("__pycache__",)  # never copied into the image (Dockerfile.dockerignore) nor hashed


@dataclass(frozen=True)
class HubImage(Variant):
    """One tag of the hub image. As a Variant (build.py) its environment is the local hub's."""

    @property
    def requirements(self) -> Path:  # what the local environment is built from
        return self.folder / "local-requirements.txt"

    def pins(self) -> dict[str, str]:
        return _hashed(super().pins())

    def image_pins(self) -> dict[str, str]:
        """What the image's requirements.txt pins."""
        return _hashed(Variant(self.course, self.name, self.tag, self.folder).pins())

    @property
    def dockerfile(self) -> Path:
        return self.folder / "Dockerfile"

    @property
    def root(self) -> Path:
        """The build context: the repository the image/ folder is in."""
        return self.folder.parents[2]


def _hashed(pins: dict[str, str]) -> dict[str, str]:
    """Variant.pins() read from a hash-pinned file: a pin's line ends with the backslash before its hashes."""
    return {name: version.removesuffix("\\").strip() for name, version in pins.items()}


def tags(images: Path = IMAGES) -> list[HubImage]:
    """Every tag of the hub image, in folder order."""
    meta = images / HUB / "image.yaml"
    name = (yaml.safe_load(meta.read_text()) or {}).get("name") if meta.is_file() else None
    if not isinstance(name, str) or not name:
        raise CoursehubError(
            Problem(display(meta), "name", "does not name the hub image", "write name: quay.io/coursehub/hub")
        )
    return [
        HubImage(HUB, name, d.name, d)
        for d in sorted((images / HUB).iterdir())
        if d.is_dir() and (d / "Dockerfile").is_file()
    ]


def deployed(values: Path = CHART / "values.yaml", images: Path = IMAGES) -> HubImage:
    """The tag the chart deploys: jupyterhub.hub.image in chart/values.yaml."""
    where = display(values)
    image = ((yaml.safe_load(values.read_text()) or {}).get("jupyterhub") or {}).get("hub", {}).get("image") or {}
    found = tags(images)
    name, tag = image.get("name"), str(image.get("tag") or "")
    if found and name != found[0].name:
        raise CoursehubError(
            Problem(
                where,
                "jupyterhub.hub.image.name",
                f"is {name!r}, not the hub image {found[0].name!r}",
                f"set it to {found[0].name} (image/hub/image.yaml)",
            )
        )
    for hub in found:
        if hub.tag == tag:
            return hub
    raise CoursehubError(
        Problem(
            where,
            "jupyterhub.hub.image.tag",
            f"is {tag!r}, and image/hub/ has no such tag",
            "add image/hub/<tag>/ or name one of: " + (", ".join(h.tag for h in found) or "(none yet)"),
        )
    )


# --- what the image is built from ---------------------------------------------------------------------


def copied(image: HubImage) -> list[Path]:
    """Every file the Dockerfile's COPY lines take from the build context (folders walked, caches left out)."""
    text = re.sub(r"\\\n", " ", image.dockerfile.read_text())
    files: set[Path] = set()
    for line in text.splitlines():
        words = shlex.split(line.split(" #")[0]) if line.strip().upper().startswith("COPY ") else []
        sources = [w for w in words[1:-1] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words):
            continue  # from another stage or image, not from the context
        for source in sources:
            path = image.root / source
            if not path.exists():
                raise CoursehubError(
                    Problem(display(image.dockerfile), source, "is copied but does not exist", "correct the COPY line")
                )
            walked = sorted(path.rglob("*")) if path.is_dir() else [path]
            files |= {f for f in walked if f.is_file() and not set(_IGNORED) & set(f.relative_to(path).parts)}
    return sorted(files)


def content_sha256(image: HubImage) -> str:
    """The sha256 of what the image is built from: its Dockerfile (and that file's .dockerignore) and every file the
    Dockerfile copies, each by its path in the build context and its bytes."""
    built_from = [image.dockerfile, image.folder / "Dockerfile.dockerignore", *copied(image)]
    return _sha256(image.root, [p for p in built_from if p.is_file()])


def _sha256(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(set(files)):
        digest.update(
            f"{path.relative_to(root).as_posix()}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode()
        )
    return digest.hexdigest()


def recorded_sha256(image: HubImage) -> str:
    """The hash content.sha256 holds (its one line that is not a comment), or "" when there is none."""
    path = image.folder / CONTENT_FILE
    lines = [line.strip() for line in path.read_text().splitlines()] if path.is_file() else []
    return next((line for line in lines if line and not line.startswith("#")), "")


def content_problems(image: HubImage) -> list[Problem]:
    recorded, now = recorded_sha256(image), content_sha256(image)
    if recorded == now:
        return []
    return [
        Problem(
            display(image.folder / CONTENT_FILE),
            image.tag,
            f"holds {recorded[:12] or 'nothing'}, but what the image is built from hashes to {now} (for a NEW tag's "
            "content.sha256: a pushed tag's image is never rebuilt, and the deploy workflow refuses a tag whose "
            "pushed image was built from other files)",
            NEW_TAG,
        )
    ]


BASE = f"quay.io/jupyterhub/k8s-hub:{upstream.VERSION}"  # z2jh's hub image, of the chart coursehub layers on
CONFIG_D = "/usr/local/etc/jupyterhub/jupyterhub_config.d/"  # where z2jh's jupyterhub_config.py runs *.py from


def dockerfile_problems(image: HubImage) -> list[Problem]:
    """The Dockerfile builds on z2jh's own hub image at the chart's version, puts the config file where z2jh runs it,
    copies its own tag's files (a new tag starts as a copy of the last), and ends as the base image's user."""
    lines = [line.strip() for line in re.sub(r"\\\n", " ", image.dockerfile.read_text()).splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    where, problems = display(image.dockerfile), []
    bases = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    if bases != [BASE]:
        problems.append(Problem(where, "FROM", f"is {' '.join(bases) or 'missing'}", f"build FROM {BASE} alone"))
    copies = [line.split() for line in lines if line.upper().startswith("COPY ")]
    if not any(len(w) == 3 and "jupyterhub_config.d" in w[1] and w[2].startswith(CONFIG_D) for w in copies):
        problems.append(
            Problem(where, "COPY", f"puts no jupyterhub_config.d file into {CONFIG_D}", f"COPY it into {CONFIG_D}")
        )
    for path in copied(image):
        relative = path.relative_to(image.root)
        if relative.parts[0] == IMAGES.name and not path.is_relative_to(image.folder):
            problems.append(
                Problem(where, "COPY", f"takes {relative} from another tag", f"copy this tag's own ({image.tag})")
            )
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    if not users or users[-1] in ("root", "0"):
        problems.append(Problem(where, "USER", "leaves the image running as root", "end with USER 1000, as z2jh's"))
    return problems


def pin_problems(image: HubImage) -> list[Problem]:
    """The local environment pins what the image pins, and the image pins JupyterHub's security release."""
    problems = []
    local, pinned = image.pins(), image.image_pins()
    for package, version in sorted(pinned.items()):
        if local.get(package) != version:
            problems.append(
                Problem(
                    display(image.requirements),
                    package,
                    f"pins {local.get(package) or 'nothing'}, the image {version}",
                    f"pin {package}=={version}, as requirements.txt does (the local hub runs what the pod runs)",
                )
            )
    version = pinned.get("jupyterhub", "")
    from coursehub_hub.patches import PROVEN_ON

    tooling = importlib.metadata.version("jupyterhub")
    if version and (version not in PROVEN_ON or version != tooling):
        problems.append(
            Problem(
                display(image.folder / "requirements.txt"),
                "jupyterhub",
                f"pins {version}, but the hub side's wrappers are proven on {', '.join(PROVEN_ON)} and the tooling "
                f"(every test, the local hub's checks) runs {tooling}",
                "pin a proven JupyterHub, the one requirements.txt pins too (or prove the new one: "
                "hub/coursehub_hub/patches.py PROVEN_ON, tests/test_hub_python.py on it)",
            )
        )
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:3])
    if not version or numbers < SECURITY_RELEASE or version in BROKEN_RELEASES:
        problems.append(
            Problem(
                display(image.folder / "requirements.txt"),
                "jupyterhub",
                f"pins {version or 'nothing'}, not JupyterHub's security release",
                "pin jupyterhub 5.5.4 or a later 5.5.x (never 5.5.3 or 6.1.0) in a new tag",
            )
        )
    return problems


# --- the local environment ----------------------------------------------------------------------------


def ensure_hub_env(image: HubImage) -> Path:
    """The local hub's environment for this tag: built from local-requirements.txt (once), with coursehub-hub
    installed from the files the Dockerfile copies (again whenever they change). Returns the venv folder."""
    env = ensure_env(image)
    content = _sha256(image.root, _package_files(image))
    marker = env / _INSTALLED
    if marker.is_file() and marker.read_text() == content:
        return env
    locks = env.parent.parent / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (marker.is_file() and marker.read_text() == content):
            _install_package(image, env)
            marker.write_text(content)
    return env


def _package_files(image: HubImage) -> list[Path]:
    """What the Dockerfile copies from hub/ to install the package (not the config file it puts elsewhere)."""
    return [
        p for p in copied(image) if p.relative_to(image.root).parts[0] == HUB and "jupyterhub_config.d" not in p.parts
    ]


def _install_package(image: HubImage, env: Path) -> None:
    """`pip install --no-deps --no-build-isolation` of hub/ as the Dockerfile runs it, from a copy of exactly the
    files it copies (a build in hub/ itself would leave build/ and egg-info there). Bytecode is compiled for the
    whole environment: where PYTHONDONTWRITEBYTECODE is set (CI here) every hub start would compile JupyterHub."""
    python = ["--python", str(env / "bin" / "python")]
    with tempfile.TemporaryDirectory(prefix="coursehub-hub-") as scratch:
        for path in _package_files(image):
            relative = path.relative_to(image.root)
            (Path(scratch) / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, Path(scratch) / relative)
        command = [str(uv_bin()), "pip", "install", "--color", "never", "--no-deps", "--no-build-isolation"]
        command += ["--reinstall-package", "coursehub-hub", "--compile-bytecode", *python, str(Path(scratch) / HUB)]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        said = (result.stdout + result.stderr).strip().replace("\n", "; ")[-600:]
        raise CoursehubError(
            Problem(
                display(image.root / HUB / "pyproject.toml"),
                "",
                f"coursehub-hub did not install into {display(env)} ({said})",
                "make hub/ installable (pip install --no-deps hub/ must work), then run make check-hub-image again",
            )
        )


# --- the check ----------------------------------------------------------------------------------------

# Run by the environment's own Python (-I: nothing from this checkout or PYTHONPATH): the image's config file,
# exactly as z2jh runs it, on a small declaration, and what it left behind.
_PROBE = r"""
import gc, inspect, json, sys
from importlib import metadata
from traitlets.config import Config
import jupyterhub
from jupyterhub import orm, scopes
from jupyterhub.app import JupyterHub

config_file, declaration = sys.argv[1], json.loads(sys.argv[2])
targets = {
    "JupyterHub.start": (JupyterHub, "start"),
    "JupyterHub.init_db": (JupyterHub, "init_db"),
    "JupyterHub.init_role_creation": (JupyterHub, "init_role_creation"),
    "JupyterHub.init_role_assignment": (JupyterHub, "init_role_assignment"),
    "orm.Role.find": (orm.Role, "find"),
    "orm.Group.find": (orm.Group, "find"),
    "scopes.get_scopes_for": (scopes, "get_scopes_for"),
}
before = {name: inspect.getattr_static(*where) for name, where in targets.items()}
c = Config()
c.JupyterHub.authenticator_class = "generic-oauth"
values = {"custom.coursehub": declaration}
exec(compile(open(config_file).read(), config_file, "exec"), {"c": c, "get_config": lambda k, d=None: values.get(k, d)})
import coursehub_hub
from oauthenticator.generic import GenericOAuthenticator
auth = c.JupyterHub.authenticator_class
print(json.dumps({
    "jupyterhub": jupyterhub.__version__,
    "package": metadata.version("coursehub-hub"),
    "package_file": coursehub_hub.__file__,
    "prefix": sys.prefix,
    "roles": [role["name"] for role in c.JupyterHub.load_roles],
    "authenticator": getattr(auth, "__name__", repr(auth)),
    "wraps_the_course_authenticator": isinstance(auth, type) and issubclass(auth, GenericOAuthenticator),
    "refused": sorted(getattr(auth, "coursehub_refuses", ((), ""))[0]),
    "post_auth_hook": "post_auth_hook" in c.Authenticator and callable(c.Authenticator.post_auth_hook),
    "gc": gc.isenabled(),
    "patched": sorted(name for name, where in targets.items() if inspect.getattr_static(*where) is not before[name]),
}))
"""
_DECLARATION = {
    "course": "coursehub-check",
    "sharedAccounts": [{"group": "check-1", "account": "collab-check-1"}],
    "members": {"check-1": ["student-a"]},
}


def version_problems(image: HubImage) -> list[Problem]:
    """A tag is the package's version: hub/pyproject.toml's version is the tag the chart deploys."""
    package = tomllib.loads((image.root / HUB / "pyproject.toml").read_text())["project"]["version"]
    if package == image.tag:
        return []
    return [
        Problem(
            "hub/pyproject.toml",
            "project.version",
            f"is {package}, but the hub image's tag is {image.tag}",
            "give the package the tag's version (a new hub side is a new version and a new tag)",
        )
    ]


def check(image: HubImage) -> list[Problem]:
    """Everything `make check-hub-image` proves, as one line per problem: the content hash, the pins, and in the
    environment built from them: every dependency pinned, JupyterHub the pinned release, and the image's config
    file configuring a hub (the shared account's role, the refusing authenticator) without patching JupyterHub or
    leaving the garbage collector off outside a hub."""
    problems = dockerfile_problems(image) + content_problems(image) + pin_problems(image) + version_problems(image)
    try:
        env = ensure_hub_env(image)
    except CoursehubError as e:
        return problems + e.problems
    python = env / "bin" / "python"
    checked = subprocess.run(
        [str(uv_bin()), "pip", "check", "--color", "never", "--python", str(python)], capture_output=True, text=True
    )
    if checked.returncode != 0:
        said = (checked.stdout + checked.stderr).strip().replace("\n", "; ")[:600]
        problems.append(
            Problem(
                display(image.requirements),
                "",
                f"the environment does not hold every dependency: {said}",
                "pin each missing package in local-requirements.in and compile it again",
            )
        )
    return problems + configure_problems(image, python)


def configure_problems(image: HubImage, python: Path) -> list[Problem]:
    config_file = next((p for p in copied(image) if "jupyterhub_config.d" in p.parts), None)
    where = display(image.dockerfile)
    if config_file is None:
        return [Problem(where, "COPY", "copies no jupyterhub_config.d file", "copy hub/jupyterhub_config.d/*.py")]
    with tempfile.TemporaryDirectory(prefix="coursehub-hub-check-") as cwd:  # no hub database here
        ran = subprocess.run(
            [str(python), "-I", "-c", _PROBE, str(config_file), json.dumps(_DECLARATION)],
            capture_output=True,
            text=True,
            cwd=cwd,
        )
    if ran.returncode != 0:
        last = (ran.stderr.strip().splitlines() or ["no output"])[-1]
        return [Problem(display(config_file), "", f"fails in the hub environment ({last})", "run it there and fix it")]
    found: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    pinned = image.image_pins().get("jupyterhub")
    version = tomllib.loads((image.root / HUB / "pyproject.toml").read_text())["project"]["version"]
    expected = {
        "jupyterhub": (found["jupyterhub"] == pinned, f"JupyterHub is {found['jupyterhub']}, not the pinned {pinned}"),
        "package": (found["package"] == version, f"coursehub-hub is {found['package']}, hub/ is {version}"),
        "package_file": (
            Path(found["package_file"]).is_relative_to(found["prefix"]),
            f"coursehub_hub was imported from {found['package_file']}, not from the environment",
        ),
        "roles": (
            "coursehub-access-check-1" in found["roles"],
            f"load_roles has no role for the declared shared account ({found['roles']})",
        ),
        "authenticator": (
            found["wraps_the_course_authenticator"] and "collab-check-1" in found["refused"],
            f"the authenticator ({found['authenticator']}) does not refuse the shared account",
        ),
        "post_auth_hook": (found["post_auth_hook"], "Authenticator.post_auth_hook is not set"),
        "gc": (found["gc"], "the garbage collector is off after the config ran outside a hub"),
        "patched": (not found["patched"], f"JupyterHub was patched outside a hub: {', '.join(found['patched'])}"),
    }
    fix = "the hub side (hub/coursehub_hub) must configure a hub through configure() alone; see the message"
    return [Problem(display(config_file), key, message, fix) for key, (ok, message) in expected.items() if not ok]
