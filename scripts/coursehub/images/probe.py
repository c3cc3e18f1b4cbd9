"""Runs INSIDE a course image's Python environment (standard library and traitlets only).

    python probe.py '["--Class.trait=value", ...]'

Prints one JSON object: the versions of the packages RTC depends on, and for
every `--Class.trait=value` flag either null (fine) or what is wrong with it in
this environment: no such class, no such trait, a value that does not parse for
the trait's type, or a Type trait whose class does not import or is not accepted.

Finding every configurable class means importing every module of the image's
Jupyter packages: 3 s of CPU here (6.6 s before their bytecode is written). The
first probe of an environment writes the classes it found, with their modules,
into the environment's folder (whose name carries its pins); later probes
import only the modules of the classes their flags name, and walk everything
again whenever that index cannot answer.
"""

from __future__ import annotations

import difflib
import glob
import hashlib
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

try:  # both standard library only
    from coursehub.files import replace_file
    from coursehub.singleuser import flags as flags_of
    from coursehub.singleuser import parse_flag
except ImportError:  # run as a script in a course image's environment: coursehub's folder is two levels up
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from coursehub.files import replace_file
    from coursehub.singleuser import flags as flags_of
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


def _index_file(packages: tuple[str, ...]) -> Path:
    """Where this environment's index of configurable classes is kept: keyed on this file and the packages walked."""
    key = hashlib.sha256(Path(__file__).read_bytes() + json.dumps(sorted(packages)).encode()).hexdigest()[:16]
    return Path(sys.prefix) / f".coursehub-configurables-{key}.json"


def walk(packages: tuple[str, ...]) -> dict[str, list[type]]:
    """Import every module of the packages, and write the index of what that found (each class's module)."""
    import_packages(packages)
    by_name = configurable_classes()
    index = {name: [cls.__module__ for cls in classes] for name, classes in by_name.items()}
    try:  # whole or not at all: a probe running at the same time reads one or the other
        replace_file(_index_file(packages), json.dumps(index))
    except OSError:
        pass  # a read-only environment: every probe walks
    return by_name


def from_index(packages: tuple[str, ...], sections: set[str]) -> dict[str, list[type]] | None:
    """The classes by name as walk() finds them, importing only the modules of `sections`; None when the index is
    missing, or cannot give exactly what a walk would (a module that no longer imports, a class it lacks, a class
    it does not list: the walk that wrote it may have missed a module, so only a new walk says a class is not
    there)."""
    try:
        index = json.loads(_index_file(packages).read_text())
    except (OSError, ValueError):
        return None
    if sections - index.keys():
        return None
    for module in {m for section in sections for m in index.get(section, ())}:
        try:
            importlib.import_module(module)
        except BaseException:
            return None
    found = configurable_classes()
    if any(len(found.get(section, ())) != len(index[section]) for section in sections):
        return None
    # every class the index knows by name (for "did you mean"), the imported ones with their classes
    return {name: found.get(name, []) for name in index}


def main(flags: list[str]) -> dict[str, object]:
    packages = (*ALWAYS, *enabled_extensions())
    # the classes the flags name (a flag without one, --name=value, is not a class's trait: check_flag passes it)
    sections = {section for name, _ in flags_of(flags) if (section := name.rpartition(".")[0])}
    by_name = from_index(packages, sections)
    walked = by_name is None
    if by_name is None:
        by_name = walk(packages)
    return {
        "versions": versions(),
        "flags": {f: check_flag(f, by_name) for f in flags if f.startswith("--")},
        "walked": walked,  # every module imported (no usable index): what the tests check the index against
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
