"""The tests' own layout: helpers live in tests/helpers/ and are imported by name; conftest.py holds only pytest's
hooks and fixtures, and nothing imports from it."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def conftest_imports(source: str) -> list[int]:
    """The lines of `source` that import conftest (`from conftest import ...`, `import conftest`)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if (isinstance(node, ast.ImportFrom) and node.module == "conftest")
        or (isinstance(node, ast.Import) and any(alias.name == "conftest" for alias in node.names))
    ]


def test_no_test_imports_from_conftest() -> None:
    found = {
        str(path.relative_to(TESTS)): lines
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "conftest.py" and (lines := conftest_imports(path.read_text()))
    }
    assert found == {}, f"import these from tests/helpers/ instead: {found}"
    # and the check sees both spellings, at any depth (inside a function too)
    assert conftest_imports("import os\nfrom conftest import edit\ndef f():\n    import conftest\n") == [2, 4]


def test_conftest_holds_only_hooks_and_fixtures() -> None:
    """Every function of conftest.py is a pytest hook (pytest_*) or a fixture; no classes, no constants."""
    tree = ast.parse((TESTS / "conftest.py").read_text())
    others = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
            if not (node.name.startswith("pytest_") or fixture):
                others.append(node.name)
        elif not isinstance(node, ast.Import | ast.ImportFrom | ast.Expr):  # imports and the docstring
            others.append(ast.unparse(node).splitlines()[0])
    assert others == [], f"move these to tests/helpers/: {others}"
