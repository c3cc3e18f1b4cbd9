"""Sphinx configuration of coursehub's documentation site (MyST Markdown, the PyData theme, as z2jh and JupyterHub).

Build it with `make docs`: that stages this folder with the generated reference pages (`_generated/`, see
scripts/coursehub/docs/) and builds it with every warning an error, then checks every internal link.
"""

project = "coursehub"
author = "coursehub's operators"
copyright = "coursehub's operators"

extensions = ["myst_parser", "sphinxcontrib.mermaid"]
source_suffix = {".md": "markdown"}
root_doc = "index"
# _generated/ holds the pages `make docs` writes at each build; they are included by the pages that show them.
exclude_patterns = ["_build", "_generated", "README.md"]

# Markdown: `:::` fences for directives, definition lists, and an anchor for every heading down to ###, so a
# link to `page.md#a-heading` is checked like a link to a page.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# Every reference must resolve: a link to a missing page, heading or label fails the build.
nitpicky = True
# Text as written: option names (--helm) and quotes stay what a reader types.
smartquotes = False

html_theme = "pydata_sphinx_theme"
html_title = "coursehub"
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_show_sourcelink = False
html_last_updated_fmt = None

# Mermaid diagrams are drawn by the reader's browser (mermaid.js); nothing is fetched at build time.
# Pages without sub-pages need no section navigation.
html_sidebars = {"index": [], "performance/index": []}
