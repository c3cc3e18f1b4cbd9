"""Runs INSIDE a course image's Python environment (standard library and traitlets only).

    python probe.py '["--Class.trait=value", ...]'

Prints one JSON object: the versions of the packages RTC depends on, and for
every `--Class.trait=value` flag either null (fine) or what is wrong with it in
this environment: no such class, no such trait, a value that does not parse for
the trait's type, or a Type trait whose class does not import or is not accepted.
"""

from __future__ import annotations

import difflib
import glob
import importlib
import json
import os
import pkgutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]  # run as a script: this folder's modules (build.py, check.py) must not shadow the image's

try:
    from coursehub.singleuser import parse_flag
except ImportError:  # run as a script in a course image's environment: coursehub's folder is two levels up
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from coursehub.singleuser import parse_flag

PACKAGES = (
    "jupyterlab",
    "jupyter-server",
    "jupyter-collaboration",
    "jupyter-server-ydoc",
    "jupyter-ydoc",
    "ypy-websocket",
    "pycrdt-websocket",
    "pycrdt-store",
    "jupyter-server-fileid",
    "jupyterhub",
    "notebook",
)
ALWAYS = ("jupyter_server", "jupyterhub.singleuser", "nbformat.sign", "ipykernel")
SKIP = (".tests", ".test_", "._version", ".conftest", ".__main__")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def enabled_extensions() -> list[str]:
    """Server extensions this environment enables (jupyter_server_config.d), as jupyter-server loads them."""
    names = []
    for path in glob.glob(os.path.join(sys.prefix, "etc", "jupyter", "jupyter_server_config.d", "*.json")):
        with open(path) as f:
            config = json.load(f)
        names += [n for n, on in config.get("ServerApp", {}).get("jpserver_extensions", {}).items() if on]
    return names


def import_packages(names: list[str] | tuple[str, ...], skip: tuple[str, ...] = SKIP) -> None:
    """Import every module of these packages, so that their Configurable classes exist.

    Also used by coursehub.chart.hubtraits for the hub's own packages.
    """
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            continue
        package = name.split(".")[0]
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
            if any(s in info.name for s in skip):
                continue
            try:
                importlib.import_module(info.name)
            except BaseException:
                continue


def configurable_classes() -> dict[str, list[type]]:
    """Every Configurable subclass imported so far, by class name."""
    from traitlets.config import Configurable

    found: dict[str, list[type]] = {}
    todo: list[type] = [Configurable]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.__name__, []).append(cls)
        todo.extend(cls.__subclasses__())
    return found


def name_problem(by_name: dict[str, Any], section: str, trait: str | None, where: str) -> str | None:
    """What is wrong with the names `section` (a class) and `trait` (one of its config traits), if anything."""
    if section not in by_name:
        return f"no configurable class {section} in {where}" + _did_you_mean(section, by_name)
    if trait is None:
        return None
    traits = {t for cls in by_name[section] for t in cls.class_traits(config=True)}
    if trait not in traits:
        return f"{section} has no trait {trait}" + _did_you_mean(trait, traits)
    return None


def _did_you_mean(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def check_flag(flag: str, by_name: dict[str, list[type]]) -> str | None:
    from traitlets import TraitError, Type
    from traitlets.utils.importstring import import_item

    parsed_flag = parse_flag(flag)
    if parsed_flag is None:
        return None  # a plain flag such as --debug
    name, value = parsed_flag
    section, _, trait_name = name.rpartition(".")
    if not section:
        return None  # --name=value without a class: not a Class.trait assignment
    problem = name_problem(by_name, section, trait_name, "this image")
    if problem:
        return problem
    traits = {}
    for cls in by_name[section]:
        traits.update(cls.class_traits(config=True))
    trait = traits[trait_name]
    try:
        parsed = trait.from_string(value)
    except Exception as e:
        return f"{value!r} does not parse as {type(trait).__name__}: {e}"
    if isinstance(trait, Type):
        try:
            klass = import_item(str(parsed))
        except Exception as e:
            return f"cannot import {parsed}: {type(e).__name__}: {e}"
        base = trait.klass if isinstance(trait.klass, type) else import_item(trait.klass)
        if not (isinstance(klass, type) and issubclass(klass, base)):
            return f"{parsed} is not a {base.__module__}.{base.__name__}, which {section}.{trait_name} requires"
        return None
    try:
        trait.validate(None, parsed)
    except TraitError as e:
        return str(e).splitlines()[0]
    except Exception:
        pass  # validators that need a real instance: from_string already accepted the value
    return None


def main(flags: list[str]) -> dict[str, object]:
    import_packages((*ALWAYS, *enabled_extensions()))
    by_name = configurable_classes()
    return {"versions": versions(), "flags": {f: check_flag(f, by_name) for f in flags if f.startswith("--")}}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
