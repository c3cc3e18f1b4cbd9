"""Names: the rules group and user names follow, and helpers on lists of names (the config, the patches, the
reconciler and the LMS sync share them)."""

from __future__ import annotations

from collections.abc import Iterable

# The chart's values.schema.json holds the same two rules (definitions groupName and userName), which Helm checks
# before values reach the hub; the hub checks them here, where names also come from the LMS at run time.
# tests/test_values_checks.py fails if the two ever differ.
GROUP_NAME_PATTERN = "^[a-z0-9]([a-z0-9._~-]{0,61}[a-z0-9])?$"
GROUP_NAME_RULE = "Lower-case letters, digits and . _ ~ -, starting and ending with a letter or digit (it becomes part of a JupyterHub role name)."
USER_NAME_PATTERN = "^[a-z0-9]([a-z0-9._@+-]{0,126}[a-z0-9])?$"
USER_NAME_RULE = "A JupyterHub user name as the hub stores it: lower-case letters, digits and . _ @ + -."


def batches(names: list[str], size: int) -> Iterable[tuple[str, ...]]:
    """``names`` in bounded runs of ``size``: requests to the hub, ``IN (...)`` lists in a query."""
    return (tuple(names[i : i + size]) for i in range(0, len(names), size))
