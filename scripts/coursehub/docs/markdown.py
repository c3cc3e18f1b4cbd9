"""Plain text into MyST Markdown: what the generated pages write the schema's and the parser's words with."""

from __future__ import annotations

import re

# Outside code spans, these would start emphasis, a link, a raw HTML tag (`<user>`), a table cell or an escape.
_SPECIAL = re.compile(r"([\\*_\[\]<>|])")


def text(words: str) -> str:
    """`words` as Markdown that reads as written: `code spans` stay code, everything else is escaped."""
    parts = re.split(r"(`[^`]*`)", words)
    return "".join(part if part.startswith("`") else _SPECIAL.sub(r"\\\1", part) for part in parts)


def code(value: str) -> str:
    """`value` as one inline code span, whatever backticks it holds."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def label(*parts: str) -> str:
    """A Sphinx label made of these parts: lower case, every run of other characters one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
