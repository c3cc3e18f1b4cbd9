"""coursehub's hub-side Python (chart/files/hub/), imported as modules.

The files are written to run inside the hub; the tooling and the tests load those
same files from the chart rather than keeping a copy of their rules:
coursehub_config.py (the declaration's rules, roles, log-in refusal) and
coursehub_reconcile.py (the reconciler `make sync-groups` runs from outside).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from coursehub.paths import HUB_PYTHON

MODULE_NAME = "coursehub_config"
RECONCILER = HUB_PYTHON.with_name("coursehub_reconcile.py")


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load() -> ModuleType:
    return _load(MODULE_NAME, HUB_PYTHON)


def reconciler() -> ModuleType:
    load()  # it imports the rules by their module name
    return _load("coursehub_reconcile", RECONCILER)
