"""`python -m coursehub.docs [--out DIR]`: build the documentation site (what `make docs` runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coursehub.docs.build import OUT, build
from coursehub.errors import CoursehubError
from coursehub.paths import display


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursehub.docs", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help="the build folder (default: docs/_build)")
    args = parser.parse_args(argv)
    try:
        built = build(out=args.out)
    except CoursehubError as error:
        print(error, file=sys.stderr)
        return 1
    if built.output:
        print(built.output, file=sys.stderr if not built.ok else sys.stdout)
    if not built.ok:
        print("docs: the build failed (warnings are errors): fix the lines above", file=sys.stderr)
        return 1
    print(f"docs: built into {display(built.html)}/index.html (warnings as errors, internal links checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
