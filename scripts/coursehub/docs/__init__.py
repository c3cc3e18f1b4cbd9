"""coursehub's documentation site (docs/, Sphinx with MyST): the pages generated at build time and the build.

Reference pages are generated from what they describe, so they cannot drift: every value of
chart/values.schema.json (`values`), the `coursehub` command from its argparse parser and the Makefile's targets
from its header (`commands`), and the performance page's table and plot from `make bench`'s committed output
(`bench`). `build` stages docs/ with those pages, runs Sphinx with warnings as errors, and checks every internal
link of the result (`links`). `make docs` runs it: `python -m coursehub.docs`.
"""
