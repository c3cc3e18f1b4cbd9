"""The performance page's numbers: `make bench`'s committed output (docs/performance/bench.txt) as a table of
each measure against its goal, and the ratios as an SVG bar chart. Nothing is copied by hand: a new run of
`make bench` rewrites the file, and the next docs build shows it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

from coursehub.docs import markdown
from coursehub.errors import CoursehubError, Problem
from coursehub.paths import ROOT, display

BENCH_OUTPUT = ROOT / "docs" / "performance" / "bench.txt"

# The goals `make bench`'s measures are held to: (the start of the measure's name, at most this).
GOALS: tuple[tuple[str, float], ...] = (
    ("validate/render ratio", 1.0),
    ("first-run env build uv/pip", 0.3),
    ("hub first-run env build uv/pip", 0.3),
    ("hub start-up ratio", 1.5),
    ("hub restart ratio at", 1.5),
    ("roster change to enforcement", 2.0),
    ("sync requests per group, first sync", 3.0),
    ("sync requests, steady", 20.0),
    ("sync requests, one move", 10.0),
    ("canvas sync requests", 60.0),
)

# `<measure>: [<what> ]<number>[ s][ (<details>)|; <details>]`: one number a line, a ratio when it has no unit.
_MEASURE = re.compile(
    r"^(?P<name>[^:]+?): (?:(?P<what>[a-z][a-z/ -]*?) )?(?P<value>\d+(?:\.\d+)?)(?P<unit> s)?(?P<rest>(?: [(;].*)?)$"
)
_SYNC = re.compile(
    r"^sync requests at (?P<groups>\d+) groups (?P<mode>\(\w+\)): initial (?P<initial>\d+), "
    r"steady (?P<steady>\d+), one move (?P<move>\d+)$"
)
_CANVAS = re.compile(r"^canvas sync at (?P<groups>\d+) groups: requests (?P<requests>\d+), seconds (?P<seconds>[\d.]+)")
_CACHE = re.compile(r"cache (?P<cache>\d+) s: (?P<value>\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Measure:
    name: str
    value: float
    unit: str  # "" for a ratio (what the plot shows), "s", or "requests"

    @property
    def goal(self) -> float | None:
        return next((goal for start, goal in GOALS if self.name.startswith(start)), None)

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.value <= self.goal


@dataclass(frozen=True)
class Run:
    header: list[str]  # the lines `make bench` wrote first: the command, the commit, the date, the machine
    lines: list[str]  # the benchmarks' own output
    measures: list[Measure]


def parse(text: str) -> Run:
    header = [line.removeprefix("#").strip() for line in text.splitlines() if line.startswith("#")]
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    measures: list[Measure] = []
    for line in lines:
        if sync := _SYNC.match(line):
            groups, mode = int(sync["groups"]), sync["mode"]
            measures += [
                Measure(f"sync requests per group, first sync {mode}", int(sync["initial"]) / groups, "requests"),
                Measure(f"sync requests, steady {mode}", int(sync["steady"]), "requests"),
                Measure(f"sync requests, one move {mode}", int(sync["move"]), "requests"),
            ]
        elif canvas := _CANVAS.match(line):
            measures += [
                Measure(f"canvas sync requests at {canvas['groups']} groups", int(canvas["requests"]), "requests"),
                Measure(f"canvas sync at {canvas['groups']} groups", float(canvas["seconds"]), "s"),
            ]
        elif line.startswith("hub auth requests per active user per minute: "):
            measures += [
                Measure(
                    f"hub auth requests per active user per minute, cache {m['cache']} s", float(m["value"]), "requests"
                )
                for m in _CACHE.finditer(line)
            ]
        elif found := _MEASURE.match(line):
            name = f"{found['name']}: {found['what']}" if found["what"] else found["name"]
            measures.append(Measure(name, float(found["value"]), "s" if found["unit"] else ""))
    return Run(header, lines, measures)


def load(path: Path = BENCH_OUTPUT) -> Run:
    try:
        return parse(path.read_text())
    except OSError as error:
        raise CoursehubError(
            Problem(display(path), "", f"cannot be read ({error.strerror})", "run make bench, which writes it")
        ) from None


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def fragment(run: Run, svg_name: str = "bench.svg", source: Path = BENCH_OUTPUT) -> str:
    """The table, the plot and the run's own output, as MyST Markdown for the performance page to include."""
    lines = [f"<!-- Generated from {display(source)} by coursehub.docs.performance at each build. -->", ""]
    for said in run.header:  # `make bench ONLY="..." at <commit> on <date>, <cores> cores`
        command, at, where = said.partition(" at ")
        lines += [f"Measured by {markdown.code(command)}{at}{markdown.text(where)}.", ""]
    if not run.measures:
        return "\n".join([*lines, "This run measured nothing that has a number.", ""])
    lines += ["| Measure | Value | Goal | Met |", "|---|---|---|---|"]
    for m in run.measures:
        unit = {"": "", "s": " s", "requests": ""}[m.unit]
        goal = f"≤ {_number(m.goal)}{unit}" if m.goal is not None else "—"
        met = {True: "yes", False: "**no**", None: ""}[m.met]
        lines.append(f"| {markdown.text(m.name)} | {_number(m.value)}{unit} | {goal} | {met} |")
    lines += [
        "",
        f"![The ratios of this run as bars, each goal as a mark]({svg_name})",
        "",
        "The run's output, as `make bench` printed it:",
        "",
        "```text",
        *run.lines,
        "```",
        "",
    ]
    return "\n".join(lines)


def svg(run: Run) -> str:
    """The run's ratios (measures without a unit; lower is better) as horizontal bars, with each goal marked."""
    ratios = [m for m in run.measures if not m.unit]
    font, row, bar_w = 13, 30, 380
    label_w = min(max((len(m.name) for m in ratios), default=20) * 7 + 20, 600)
    width, top = label_w + bar_w + 90, 50
    height = top + row * max(len(ratios), 1) + 30
    most = max([1.0, *(m.value for m in ratios), *(m.goal or 0 for m in ratios)]) * 1.1
    x = lambda value: label_w + bar_w * value / most  # noqa: E731
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{font}">',
        "<title>make bench: ratios of this run (lower is better), goals marked</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        '<text x="10" y="20" font-weight="bold">make bench ratios (lower is better)</text>',
        '<text x="10" y="38" fill="#555555">bar: measured; black mark: goal (at most); dashed: 1.0</text>',
        f'<line x1="{x(1.0):.1f}" y1="{top - 6}" x2="{x(1.0):.1f}" y2="{height - 24}" stroke="#999999" '
        'stroke-dasharray="4 3"/>',
    ]
    if not ratios:
        out.append(f'<text x="10" y="{top + 18}">this run measured no ratio</text>')
    for i, m in enumerate(ratios):
        y = top + i * row
        colour = "#d62728" if m.met is False else "#1f77b4"
        out += [
            f'<text x="{label_w - 10}" y="{y + 18}" text-anchor="end">{escape(m.name)}</text>',
            f'<rect x="{label_w}" y="{y + 5}" width="{x(m.value) - label_w:.1f}" height="{row - 12}" fill="{colour}"/>',
            f'<text x="{x(m.value) + 6:.1f}" y="{y + 18}">{_number(m.value)}</text>',
        ]
        if m.goal is not None:
            out.append(
                f'<line x1="{x(m.goal):.1f}" y1="{y + 1}" x2="{x(m.goal):.1f}" y2="{y + row - 3}" stroke="#000000" '
                'stroke-width="3"><title>goal: at most ' + _number(m.goal) + "</title></line>"
            )
    scale_y = height - 10
    for tick in (0.0, 1.0, round(most, 1)):
        out.append(f'<text x="{x(tick):.1f}" y="{scale_y}" text-anchor="middle" fill="#555555">{_number(tick)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
