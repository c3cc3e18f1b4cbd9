"""The documentation site (docs/, `make docs`): it builds with every warning an error and every internal link
landing; its reference pages follow the schema and the command's parser, so a value or a sub-command added there
appears without editing a page; a broken link fails the build; and what the README held is still documented."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest

from coursehub.docs import build as docs
from coursehub.docs import commands, links, performance, values
from coursehub.errors import CoursehubError
from coursehub.paths import ROOT
from coursehub_hub.patches import OPTIONAL_WRAPPERS, PROVEN_ON

ADDED = "testOnlyKnob"


def needs_the_docs_tools() -> None:
    if not docs.SPHINX_BUILD.is_file():
        pytest.skip("needs the documentation's tools (.tools/docs/): run `make docs`")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> docs.Built:
    """The whole site, built once as `make docs` builds it, from a copy of chart/values.schema.json with one value
    added and no page edited."""
    needs_the_docs_tools()
    tmp = tmp_path_factory.mktemp("docs")
    schema = json.loads(values.SCHEMA.read_text())
    schema["definitions"]["coursehub"]["properties"][ADDED] = {
        "type": "integer",
        "minimum": 3,
        "description": "A value only this test adds to the schema.",
    }
    copy = tmp / "values.schema.json"
    copy.write_text(json.dumps(schema))
    return docs.build(out=tmp / "out", schema=copy)


def page(site: docs.Built, name: str) -> str:
    return (site.html / name).read_text()


def test_the_site_builds_with_warnings_as_errors_and_every_internal_link_lands(site: docs.Built) -> None:
    assert site.ok, site.output
    assert "WARNING" not in site.output and "broken internal link" not in site.output
    built = {p.relative_to(site.html).as_posix() for p in site.html.rglob("*.html")}
    sources = {
        p.relative_to(docs.DOCS).with_suffix(".html").as_posix()
        for p in docs.DOCS.rglob("*.md")
        if "_build" not in p.parts
    }
    assert sources <= built  # every page of docs/ is in the site (Sphinx warns of one outside every toctree)


def test_a_value_added_to_the_schema_appears_in_the_reference_with_every_other(site: docs.Built) -> None:
    reference = page(site, "reference/values.html")
    assert f"jupyterhub.custom.coursehub.{ADDED}" in reference
    assert "A value only this test adds to the schema." in reference and "at least 3" in reference
    assert f'id="{values.anchor(f"jupyterhub.custom.coursehub.{ADDED}")}"' in reference
    for value in values.values(values.load_schema()):
        assert f'id="{values.anchor(value.path)}"' in reference, value.path
        assert value.path.replace("<", "&lt;").replace(">", "&gt;") in reference, value.path
    assert "default <code" in reference  # defaults come from chart/values.yaml


def test_the_values_reference_is_generated_from_the_schema_it_is_given(tmp_path: Path) -> None:
    """Without Sphinx: references, maps of maps, lists of maps, and a default from chart/values.yaml."""
    schema = {
        "properties": {
            "top": {
                "type": "object",
                "properties": {
                    "named": {"$ref": "#/definitions/name"},
                    "byKey": {"type": "object", "additionalProperties": {"$ref": "#/definitions/entry"}},
                    "rows": {"type": "array", "items": {"$ref": "#/definitions/entry"}},
                },
                "required": ["named"],
            }
        },
        "definitions": {
            "name": {"type": "string", "pattern": "^[a-z]+$", "description": "Lower-case <letters> only."},
            "entry": {"type": "object", "properties": {"size": {"enum": ["s", "m"]}}},
        },
    }
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    (tmp_path / "values.yaml").write_text("top:\n  named: abc\n")
    paths = [v.path for v in values.values(schema)]
    maps = ["top.byKey", "top.byKey.<name>", "top.byKey.<name>.size"]
    assert paths == ["top", "top.named", *maps, "top.rows", "top.rows[]", "top.rows[].size"]
    text = values.page(tmp_path / "schema.json", tmp_path / "values.yaml")
    assert "Lower-case \\<letters\\> only." in text  # escaped: not a raw HTML tag
    assert 'required; default `"abc"`; matches `^[a-z]+$`' in text
    assert 'one of `"s"`, `"m"`' in text


def test_a_schema_that_is_not_json_is_one_line_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "values.schema.json"
    broken.write_text("{ not json")
    with pytest.raises(CoursehubError) as raised:
        values.page(broken)
    (problem,) = raised.value.problems
    assert problem.file == str(broken) and "cannot be read as JSON" in problem.message and "\n" not in str(problem)


def test_every_command_of_the_parser_and_each_of_its_options_is_in_the_command_reference(site: docs.Built) -> None:
    reference = page(site, "reference/commands.html")
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", reference)).split())  # what a reader sees
    names = [name for name, _, _ in commands.subcommands(commands.parser())]
    assert "deploy" in names and "bench" in names
    for name, _, sub in commands.subcommands(commands.parser()):
        assert f'id="command-{name}"' in reference, name
        for action in sub._actions:
            for option in [] if action.dest == "help" else action.option_strings:
                assert option in reference, f"coursehub {name} {option}"
            if action.help and action.dest != "help":  # as written: no "--helm" turned into a dash
                said = " ".join(sub._get_formatter()._expand_help(action).replace("`", "").split())
                assert said in text, f"coursehub {name}: {said}"
    for target in re.findall(r"^#   make ([a-z-]+)", (ROOT / "Makefile").read_text(), re.M):
        assert f"make {target}" in reference, target


def tiny_site(folder: Path, index_text: str) -> Path:
    """A site of two pages with the real docs/conf.py: what a broken link is tried on."""
    folder.mkdir()
    shutil.copy2(docs.DOCS / "conf.py", folder / "conf.py")
    toctree = "\n```{toctree}\n:hidden:\n\npage\n```\n"
    (folder / "index.md").write_text(f"# Index\n\n{index_text}\n{toctree}")
    (folder / "page.md").write_text("# Page\n\n## A heading\n\nText.\n")
    return folder


@pytest.mark.parametrize(
    ("link", "said"),
    [
        ("[gone](gone.md)", "gone.md"),  # a page that is not there: MyST's cross-reference
        ("[gone](page.md#no-such-heading)", "no-such-heading"),  # a heading that is not there
        ("{ref}`gone <no-such-label>`", "no-such-label"),  # a label that is not there
        ('<a href="nowhere.html">raw</a>', "nowhere.html: no such file in the site"),  # raw HTML: the link check
        ('<a href="page.html#nowhere">raw</a>', "no anchor #nowhere on that page"),
    ],
)
def test_a_broken_internal_link_fails_the_build(tmp_path: Path, link: str, said: str) -> None:
    needs_the_docs_tools()
    fine = docs.build(tiny_site(tmp_path / "fine", "[a heading](page.md#a-heading)"), tmp_path / "fine-out")
    assert fine.ok, fine.output  # the same site without the broken link builds
    broken = docs.build(tiny_site(tmp_path / "broken", f"See {link}."), tmp_path / "broken-out")
    assert not broken.ok
    assert said in broken.output, broken.output


def test_the_link_check_reads_the_html_sphinx_wrote(tmp_path: Path) -> None:
    """Without Sphinx: a page, an anchor on it, an image, and links to each that land and that do not."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.html").write_text('<h1 id="top">x</h1><img src="../img.svg"><a href="#top">up</a>')
    (tmp_path / "img.svg").write_text("<svg/>")
    (tmp_path / "index.html").write_text(
        '<a href="a/x.html#top">ok</a><a href="a/">folder</a><a href="https://example.org/gone">external</a>'
        '<a href="a/x.html#bottom">no anchor</a><a href="b/y.html">no page</a><a href="../outside.html">out</a>'
    )
    (tmp_path / "a" / "index.html").write_text("<p>folder</p>")
    found = links.broken(tmp_path)
    assert [line.split(": ", 1)[0].rsplit(":", 1)[0] for line in found] == ["index.html"] * 3
    assert any("#bottom: no anchor #bottom" in line for line in found)
    assert any("b/y.html: no such file" in line for line in found)
    assert any("../outside.html: points outside the site" in line for line in found)


def test_the_performance_page_is_make_benchs_committed_output(site: docs.Built) -> None:
    committed = performance.BENCH_OUTPUT.read_text()
    assert committed.startswith("# make bench")  # make bench writes the file, after a line saying what ran where
    run = performance.parse(committed)
    assert run.measures, "docs/performance/bench.txt holds no measure: run make bench"
    shown = page(site, "performance/index.html")
    for measure in run.measures:
        assert measure.name.replace("/", "/") in shown.replace("&amp;", "&"), measure.name
    for line in run.lines:
        assert line.split(":")[0] in shown
    (plot,) = site.html.glob("_images/bench*.svg")
    assert all(m.name in plot.read_text() for m in run.measures if not m.unit)


def test_the_bench_output_is_read_into_measures_and_goals() -> None:
    """`make bench`'s line formats (written out here as a test double of a full run) into the page's table: each
    measure with its goal, and a missed goal shown as missed."""
    run = performance.parse(
        "# make bench at abc1234 on 2026-12-07, 2 cores\n"
        "validate/render ratio: 1.40\n"
        "first-run env build uv/pip: 0.10 (uv 5.6 s, pip 58.7 s; goal <= 0.3)\n"
        "hub auth requests per active user per minute: cache 1 s: 57.7 (removal to refusal 0.9 s, at most 1 s); "
        "cache 10 s: 3.9 (removal to refusal 8.1 s, at most 10 s)\n"
        "sync requests at 1000 groups (roles): initial 1033, steady 2, one move 4\n"
        "roster change to enforcement (roles): 0.21 s (sync of one move); plain API round trip 3.1 ms\n"
        "wrapper collect_after_load at 1000 groups (roles): restart with/without 0.80 (median 2.00 s / 2.50 s)\n"
        "scale (roles): 1000 groups, 4000 students: first sync 69.5 s\n"
        "canvas sync at 1000 groups: requests 52, seconds 3.21 (a full read; goal: requests at most 60); first sync 80 s\n"
    )
    found = {m.name: (m.value, m.unit, m.goal, m.met) for m in run.measures}
    assert found == {
        "validate/render ratio": (1.4, "", 1.0, False),
        "first-run env build uv/pip": (0.1, "", 0.3, True),
        "hub auth requests per active user per minute, cache 1 s": (57.7, "requests", None, None),
        "hub auth requests per active user per minute, cache 10 s": (3.9, "requests", None, None),
        "sync requests per group, first sync (roles)": (1.033, "requests", 3.0, True),
        "sync requests, steady (roles)": (2, "requests", 20.0, True),
        "sync requests, one move (roles)": (4, "requests", 10.0, True),
        "roster change to enforcement (roles)": (0.21, "s", 2.0, True),
        "wrapper collect_after_load at 1000 groups (roles): restart with/without": (0.8, "", None, None),
        "canvas sync requests at 1000 groups": (52, "requests", 60.0, True),
        "canvas sync at 1000 groups": (3.21, "s", None, None),
    }
    table = performance.fragment(run)
    assert "| validate/render ratio | 1.40 | ≤ 1 | **no** |" in table
    assert "`make bench` at abc1234 on 2026-12-07, 2 cores" in table
    assert 'fill="#d62728"' in performance.svg(run)  # the missed goal's bar


def test_the_hub_patches_page_names_each_patch_with_the_versions_it_is_proven_on() -> None:
    """The README's table of patches moved here: it must stay complete and true to PROVEN_ON."""
    text = (docs.DOCS / "reference" / "hub-patches.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \(.*\| (.+) \|$", text, re.M)
    assert {name for name, _ in rows} == {"count_group_shares_in_tokens", *OPTIONAL_WRAPPERS}
    assert all(proven == ", ".join(PROVEN_ON) for _, proven in rows), rows
    assert all(f"**{version}**" in text for version in PROVEN_ON)


def test_the_readme_is_short_says_what_ci_runs_and_links_into_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make test" in readme and "make demo COURSE=stat159" in readme and "```mermaid" in readme
    targets = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", readme)
    assert any(t.startswith("docs/") for t in targets)
    for target in targets:
        assert (ROOT / target).exists(), target
