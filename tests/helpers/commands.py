"""The `coursehub` command as the Makefile runs it: in this process (`coursehub`) or as the console script
`pip install .` installs (`installed_coursehub`, `COMMAND`)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from coursehub.paths import ROOT

# The `coursehub` command, as `make venv` (pip install --editable .) installs it beside this Python.
COMMAND = str(Path(sys.executable).with_name("coursehub"))


def _command_env(values: Path | None, upstream: Path | None) -> dict[str, str]:
    """What the Makefile would export for a command: the values folder and the upstream chart, when given."""
    pairs = {"COURSEHUB_VALUES": values, "UPSTREAM_CHART": upstream}
    return {name: str(value) for name, value in pairs.items() if value is not None}


def coursehub(*args: str, values: Path | None = None, upstream: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The `coursehub` command as the Makefile runs it (with the upstream chart the tests use, or `upstream`), run
    in this process through cli.main: the same parsing, exit code and printed lines, without a new interpreter
    importing coursehub again (1 to 2 s of CPU each). What it does not capture: output of programs the command
    starts with this process's own stdout (a real deploy's helm, sops' editor), and Python warnings (pytest
    records them). installed_coursehub() runs the console script itself."""
    from coursehub import cli

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as env, redirect_stdout(out), redirect_stderr(err):
        for name, value in _command_env(values, upstream).items():
            env.setenv(name, value)
        try:
            code = cli.main(list(args))
        except SystemExit as e:  # argparse's usage errors, as the interpreter would end on them
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
                code = 1
    return subprocess.CompletedProcess(["coursehub", *args], code, out.getvalue(), err.getvalue())


def installed_coursehub(
    *args: str, values: Path | None = None, upstream: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The console script `pip install .` installs, in a process of its own (as the Makefile runs it)."""
    env = {**os.environ, **_command_env(values, upstream)}
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, env=env, cwd=ROOT)
