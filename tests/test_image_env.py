"""Image environments are built with uv: each step reported with counts and sizes, a bad pin one line and no folder.

Real builds from PyPI of a two-package variant in a tmp folder, with an empty
uv cache of their own (so the packages really are downloaded) and a PATH with
no uv on it (the uv used is the one pinned in coursehub's venv).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from coursehub.errors import CoursehubError
from coursehub.images import build as images
from helpers.files import stand_in_program


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """image/tiny/1/ in tmp_path, environments in tmp_path/envs; returns its requirements file."""
    (tmp_path / "image" / "tiny" / "1").mkdir(parents=True)
    (tmp_path / "image" / "tiny" / "image.yaml").write_text("name: example/tiny\n")
    monkeypatch.setattr(images, "ENVS", tmp_path / "envs")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    (tmp_path / "no-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    return tmp_path / "image" / "tiny" / "1" / "requirements.txt"


def test_an_environment_is_built_with_uv_and_reports_each_step(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny.write_text("six==1.16.0\niniconfig==2.0.0\n")
    started = time.monotonic()
    env = images.ensure_env(images.deployed("tiny", "1", tmp_path / "image"))
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert env.parent == tmp_path / "envs" and images.deployed("tiny", "1", tmp_path / "image").built
    imported = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import six, iniconfig; print(six.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == "1.16.0"
    assert "uv = " in (env / "pyvenv.cfg").read_text()  # uv made the venv, not python -m venv
    assert "step 1/3: creating the virtual environment (uv venv)" in err
    assert "step 2/3: installing 2 pinned packages from" in err and "(uv)" in err
    assert re.search(r"resolved 2 packages for 2 pins in [\d.]+m?s\n", err), err
    assert re.search(r"fetched 2 packages \(downloads and uv's cache\) in [\d.]+m?s\n", err), err
    assert re.search(r"installed 2 packages into the environment in [\d.]+m?s\n", err), err
    assert "checked: the file pins every dependency of every package (uv pip check)\n" in err
    done = re.search(r"step 3/3: done: 2 packages, ([\d.]+) MB on disk, in (\d+) s", err)
    assert done and float(done[1]) > 0 and int(done[2]) <= took + 1, err
    assert (tmp_path / "uv-cache").is_dir()  # downloaded into the test's own empty cache
    images.ensure_env(images.deployed("tiny", "1", tmp_path / "image"))
    assert capsys.readouterr().err == ""  # built once: silent afterwards


# A bad pin, and a dependency the file does not pin: the environment is exactly the file, as the image's
# `pip install --no-deps` is, so a dependency left out would be missing in the image; the build fails on it as
# the Dockerfile's `pip check` does.
BAD_FILES = {
    "a bad pin": (
        "six==1.16.0\niniconfig==99.0.0\n",
        "iniconfig==99.0.0: uv could not build the environment (",
        ("no version of iniconfig==99.0.0", "Fix: correct the pin"),
    ),
    "a dependency left unpinned": (
        "python-dateutil==2.9.0.post0\n",  # depends on six, which the file does not pin
        "six: the file does not pin every dependency: six>=",
        ("(for python-dateutil)", "nothing was kept", "Fix: pin each of them in the file"),
    ),
}


@pytest.mark.parametrize(("requirements", "starts", "says"), BAD_FILES.values(), ids=BAD_FILES)
def test_a_bad_file_is_one_line_naming_the_package_and_leaves_no_folder(
    tiny: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    requirements: str,
    starts: str,
    says: tuple[str, ...],
) -> None:
    tiny.write_text(requirements)
    variant = images.deployed("tiny", "1", tmp_path / "image")
    with pytest.raises(CoursehubError) as failed:
        images.ensure_env(variant)
    message = str(failed.value)
    assert "\n" not in message, message
    assert message.startswith(f"{tiny}: {starts}"), message
    assert all(part in message for part in says), message
    assert not variant.env.exists() and list((tmp_path / "envs").iterdir()) == []
    assert "step 3/3" not in capsys.readouterr().err


def test_the_image_probe_leaves_bytecode_where_pythondontwritebytecode_is_set(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An environment's first probe imports every module of its Jupyter packages: it writes their bytecode as the
    servers there do, so that on a machine with PYTHONDONTWRITEBYTECODE set a later walk does not compile them
    again."""
    from coursehub.images.check import probe

    tiny.write_text("traitlets==5.14.3\n")
    env = images.ensure_env(images.deployed("tiny", "1", tmp_path / "image"))
    assert not list(env.glob("lib/python3.*/site-packages/traitlets/config/__pycache__/*.pyc"))  # uv wrote none
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    versions, flags = probe(env, ["jupyterhub-singleuser", "--Application.log_level=INFO", "--Application.nope=1"])
    assert flags["--Application.log_level=INFO"] is None and "no trait nope" in str(flags["--Application.nope=1"])
    assert versions["jupyterlab"] is None  # the tiny image has no Jupyter: the probe ran in it, not in the venv
    assert list(env.glob("lib/python3.*/site-packages/traitlets/config/__pycache__/configurable.*.pyc"))


def test_the_image_probe_walks_an_environment_once_and_answers_the_same_from_its_index(
    tiny: Path, tmp_path: Path
) -> None:
    """The first probe imports every module and writes the index of configurable classes into the environment;
    the next imports only the modules its flags name and gives the same answers. A class the index does not
    list, and an index that cannot answer (here: a module that does not import), are walked past."""
    from coursehub.images.check import PROBE

    tiny.write_text("traitlets==5.14.3\n")
    env = images.ensure_env(images.deployed("tiny", "1", tmp_path / "image"))
    flags = ["--Application.log_level=INFO", "--Application.nope=1", "--x=1"]

    def run(*extra: str) -> dict[str, Any]:
        result = subprocess.run(
            [str(env / "bin" / "python"), str(PROBE), json.dumps(["jupyterhub-singleuser", *flags, *extra])],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout)

    first = run()
    (index,) = env.glob(".coursehub-configurables-*.json")
    assert first["walked"] is True and "Application" in json.loads(index.read_text())
    assert "no trait nope" in first["flags"]["--Application.nope=1"]
    second = run()
    assert second["walked"] is False and second["flags"] == first["flags"]
    misspelled = run("--Aplication.log_level=INFO")  # not in the index: only a walk may say it is not there
    assert misspelled["walked"] is True
    assert "did you mean Application?" in misspelled["flags"]["--Aplication.log_level=INFO"]
    index.write_text(json.dumps({**json.loads(index.read_text()), "Application": ["coursehub_no_such_module"]}))
    third = run()
    assert third["walked"] is True and third["flags"] == first["flags"]
    assert json.loads(index.read_text())["Application"] != ["coursehub_no_such_module"]  # written again


def test_two_validates_at_once_run_the_live_image_check_once(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make validate`'s image step from two threads at once (as the suite's workers or two shells would): the
    check runs once, the other waits for it and then reports its pass."""
    from coursehub.chart import validate as validating
    from coursehub.courses import load_course
    from coursehub.images import check

    tiny.write_text("six==1.16.0\n")
    variant = images.deployed("tiny", "1", tmp_path / "image")
    images.ensure_env(variant)
    monkeypatch.setattr(validating, "deployed", lambda course, tag: variant)
    ran: list[list[str]] = []

    def live_check_stand_in(checked: images.Variant, cmd: list[str]) -> list[check.Verdict]:
        """TEST DOUBLE for check_command: the tiny environment has no server to start (test_image_check runs the
        real one). It takes as long as a short check and records a pass, as the real one does."""
        ran.append(cmd)
        time.sleep(0.5)
        check._remember_pass(checked, cmd)
        return []

    monkeypatch.setattr(validating, "check_command", live_check_stand_in)
    course = load_course("stat159")
    reports = [validating.Report("stat159"), validating.Report("stat159")]
    threads = [threading.Thread(target=validating._image, args=(course, report)) for report in reports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ran) == 1, ran
    assert check.passed_before(variant, ran[0])
    assert [any("passed on" in note for note in r.notes) for r in reports].count(True) == 1, [r.notes for r in reports]


def test_the_probe_searches_the_images_path_without_nodejs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the servers do (test_localhub, test_live_hub): the probe makes JupyterLab's classes, which run yarn where
    they find Node.js, and the images have none. Stand-ins here (helpers.files.stand_in_program): the environment's
    `python` (it writes down what its PATH finds and answers as the probe does) and a folder first on this
    process's PATH with a `node` and a `git` of its own; the real probe runs in the tests above."""
    from coursehub.images.check import probe

    env, seen, machine = tmp_path / "env", tmp_path / "seen", tmp_path / "machine-bin"
    for name in ("node", "git"):
        stand_in_program(machine / name)
    monkeypatch.setenv("PATH", f"{machine}{os.pathsep}{os.environ['PATH']}")
    stand_in_program(
        env / "bin" / "python",
        f'{{ echo "$PATH"; command -v node || echo no node; command -v git || echo no git; }} > {seen}\n'
        """echo '{"versions": {}, "flags": {}}'\n""",
    )
    assert probe(env, ["jupyterhub-singleuser"]) == ({}, {})
    search_path, node, git = seen.read_text().splitlines()
    assert search_path.split(os.pathsep)[0] == str(env / "bin")
    assert node == "no node" and git != "no git" and str(machine) not in search_path
