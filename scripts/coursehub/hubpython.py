"""coursehub's hub-side Python (chart/files/hub/coursehub_config.py), imported as a module.

The file is written to run inside the hub; the tooling and the tests load that
same file from the chart rather than keeping a copy of its rules.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from coursehub.paths import HUB_PYTHON

MODULE_NAME = "coursehub_config"


def load() -> ModuleType:
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    spec = importlib.util.spec_from_file_location(MODULE_NAME, HUB_PYTHON)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module
