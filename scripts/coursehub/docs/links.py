"""Every internal link of the built site must land: the page (or file) it names exists, and so does the anchor.

Sphinx itself (with MyST's cross-references, warnings as errors) refuses a Markdown link to a missing page or
heading; this reads the HTML it wrote, so a link written as raw HTML, a theme's link and an image are checked
too. External links are not followed: the build runs without a network.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[tuple[str, int]] = []  # (href or src, line)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            elif (name == "href" and tag in ("a", "link")) or (name == "src" and tag in ("img", "script")):
                self.links.append((value, self.getpos()[0]))


def _read(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(errors="replace"))
    page.close()
    return page


def broken(site: Path) -> list[str]:
    """One line per internal link of the HTML site in `site` that lands nowhere: `page.html:line: link: why`."""
    site = site.resolve()
    # the site's pages; _static/ and _sources/ hold the theme's and Sphinx's files (templates among them), not pages
    pages = {
        path: _read(path)
        for path in sorted(site.rglob("*.html"))
        if not path.relative_to(site).parts[0].startswith("_")
    }
    found = []
    for path, page in pages.items():
        for link, line in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("//", "mailto:", "javascript:")):
                continue  # external: not followed without a network
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path.resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(site)}:{line}: {link}"
            if not target.is_relative_to(site):
                found.append(f"{where}: points outside the site")
            elif not target.is_file():
                found.append(f"{where}: no such file in the site")
            elif parts.fragment and target.suffix == ".html":
                anchors = pages[target].ids if target in pages else _read(target).ids
                if unquote(parts.fragment) not in anchors:
                    found.append(f"{where}: no anchor #{parts.fragment} on that page")
    return found
