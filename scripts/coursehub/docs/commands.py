"""The command reference: the `coursehub` command from its argparse parser, and the Makefile's targets from its
header. Generated at each docs build, so a new sub-command or option appears without editing a page."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

from coursehub.docs import markdown
from coursehub.paths import ROOT, display

MAKEFILE = ROOT / "Makefile"


def parser() -> argparse.ArgumentParser:
    """The command's own parser, built as a user without $HELM_MAJOR gets it (the page shows the pinned default)."""
    from coursehub import cli

    saved = os.environ.pop("HELM_MAJOR", None)
    try:
        return cli._parser()
    finally:
        if saved is not None:
            os.environ["HELM_MAJOR"] = saved


def subcommands(command: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of every sub-command, in the order `coursehub --help` lists them."""
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _usage(command: argparse.ArgumentParser) -> str:
    """The usage line, wrapped at 88 columns whatever the terminal, without its `usage: `."""
    formatter = argparse.HelpFormatter(command.prog, width=88)
    formatter.add_usage(command.usage, command._actions, command._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def _options(command: argparse.ArgumentParser) -> list[str]:
    formatter = command._get_formatter()
    rows = []
    for action in command._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.option_strings:
            metavar = "" if action.nargs == 0 else " " + formatter._format_args(action, action.dest.upper())
            name = ", ".join(f"{option}{metavar}" for option in action.option_strings)
        else:
            name = formatter._format_args(action, action.dest)
        words = formatter._expand_help(action) if action.help else ""
        facts = []
        if action.required and action.option_strings:
            facts.append("required")
        if action.choices is not None and "{" not in name and "%(choices)" not in (action.help or ""):
            facts.append("one of " + ", ".join(markdown.code(str(c)) for c in action.choices))
        if (
            action.option_strings
            and action.default not in (None, False, argparse.SUPPRESS)
            and "default" not in (action.help or "")
        ):
            facts.append(f"default {markdown.code(str(action.default))}")
        if isinstance(action, argparse._AppendAction):
            facts.append("may be given more than once")
        said = f": {markdown.text(words)}" if words else ""
        rows.append(f"- {markdown.code(name)}{said}" + (f" ({'; '.join(facts)})" if facts else ""))
    return rows


def page(makefile: Path = MAKEFILE) -> str:
    """The `coursehub` command (global options, then each sub-command: usage, options) and the Makefile's targets."""
    command = parser()
    lines = [
        "<!-- Generated from scripts/coursehub/cli.py's parser and the Makefile's header by coursehub.docs.commands "
        "at each build: edit those, not this page. -->",
        "",
        "(commands-coursehub)=",
        "## The `coursehub` command",
        "",
        markdown.text(command.description or ""),
        "",
        "```text",
        _usage(command),
        "```",
        "",
        "Options before the sub-command:",
        "",
        *_options(command),
        "",
    ]
    for name, help, sub in subcommands(command):
        lines += [
            f"({markdown.label('command', name)})=",
            f"### `coursehub {name}`",
            "",
            markdown.text(help[:1].upper() + help[1:]) + ("." if help and not help.endswith(".") else ""),
            "",
            "```text",
            _usage(sub),
            "```",
            "",
        ]
        options = _options(sub)
        lines += [*options, ""] if options else []
    lines += [
        "(commands-make)=",
        "## The Makefile's targets",
        "",
        f"What `make help` prints: the header of {markdown.code(display(makefile))}. Most targets run the "
        "`coursehub` sub-command of the same name, installing what it needs first.",
        "",
        "```text",
        *makefile_help(makefile),
        "```",
        "",
    ]
    return "\n".join(lines)


def makefile_help(makefile: Path = MAKEFILE) -> list[str]:
    """The Makefile's header comment, as `make help` prints it (up to the first empty line, `# ` taken off)."""
    lines = []
    for line in makefile.read_text().splitlines():
        if not line.strip():
            break
        lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    return lines
