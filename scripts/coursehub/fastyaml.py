"""YAML through libyaml where PyYAML has it (its wheels bundle it), with the same safe types as safe_load.

A rendered course is about 220 kB of YAML: PyYAML's pure-Python parser took 0.24 s
to read stat159's and its emitter 0.28 s to write its objects again (the
membership check); libyaml takes 0.02 s for each. Every `make validate`, `make
render` and test render reads one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load(text: str | bytes) -> Any:
    return yaml.load(text, Loader=LOADER)


def load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=LOADER)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=DUMPER)
