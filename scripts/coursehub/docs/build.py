"""`make docs`: docs/ staged with its generated pages, built by Sphinx with warnings as errors, links checked.

The generated pages never enter docs/: the build copies docs/ into its output folder (docs/_build/src/), writes
them into `_generated/` there, and builds that copy. The tools run from their own environment, .tools/docs/
(the Makefile builds it from the hash-pinned docs/requirements.txt).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from coursehub.docs import commands, links, performance, values
from coursehub.errors import CoursehubError, Problem
from coursehub.paths import ROOT, TOOLS, display

DOCS = ROOT / "docs"
OUT = DOCS / "_build"
SPHINX_BUILD = TOOLS / "docs" / "bin" / "sphinx-build"


@dataclass(frozen=True)
class Built:
    ok: bool
    output: str  # Sphinx's warnings and the link check's lines, paths named as in docs/
    html: Path


def stage(source: Path, staged: Path, schema: Path, bench: Path) -> None:
    """A copy of `source` with the generated pages in `_generated/`."""
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(source, staged, ignore=shutil.ignore_patterns("_build", "_generated", "__pycache__"))
    generated = staged / "_generated"
    generated.mkdir()
    (generated / "values.md").write_text(values.page(schema))
    (generated / "commands.md").write_text(commands.page())
    run = performance.load(bench)
    (generated / "bench.md").write_text(performance.fragment(run, source=bench))
    (generated / "bench.svg").write_text(performance.svg(run))


def build(
    source: Path = DOCS, out: Path = OUT, schema: Path = values.SCHEMA, bench: Path = performance.BENCH_OUTPUT
) -> Built:
    """Build the site into `out`/html: Sphinx with every warning an error (nitpicky, every problem reported before
    it stops), then every internal link of the result checked."""
    if not SPHINX_BUILD.is_file():
        raise CoursehubError(
            Problem(display(SPHINX_BUILD), "", "the documentation's tools are not installed", "run make docs")
        )
    staged, html, doctrees = out / "src", out / "html", out / "doctrees"
    stage(source, staged, schema, bench)
    for old in (html, doctrees):  # a page removed from docs/ must not linger for links to land on
        shutil.rmtree(old, ignore_errors=True)
    command = [str(SPHINX_BUILD), "-b", "html", "-W", "--keep-going", "-n", "-E", "-q", "-d", str(doctrees)]
    result = subprocess.run([*command, str(staged), str(html)], capture_output=True, text=True)
    said = (result.stdout + result.stderr).replace(f"{staged.resolve()}/", f"{display(source)}/")
    said = said.replace(f"{staged}/", f"{display(source)}/")
    if result.returncode != 0:
        return Built(False, said.strip() or f"sphinx-build exited with {result.returncode}", html)
    found = links.broken(html)
    lines = [said.strip()] if said.strip() else []
    lines += [f"broken internal link: {display(html)}/{line}" for line in found]
    return Built(not found, "\n".join(lines), html)
