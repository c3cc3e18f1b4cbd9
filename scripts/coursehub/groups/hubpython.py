"""coursehub's hub side (the coursehub_hub package, hub/), as the tooling uses it.

The tooling and the tests import the very modules the hub image runs rather than keeping a copy of their rules:
``coursehub_hub.config`` (the declaration's rules, roles, log-in refusal) and ``coursehub_hub.reconcile`` (the
reconciler `make sync-groups` runs from outside). Importing them changes nothing in this process.
"""

from __future__ import annotations

from types import ModuleType


def load() -> ModuleType:
    from coursehub_hub import config

    return config


def patches() -> ModuleType:
    from coursehub_hub import patches

    return patches


def reconciler() -> ModuleType:
    from coursehub_hub import reconcile

    return reconcile
