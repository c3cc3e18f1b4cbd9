"""`make edit-secrets`: open a course's sops-encrypted secrets file decrypted in $EDITOR, re-encrypt it, check it.

A course without an encrypted file gets one (its .sops.yaml rule names the
recipients), started from its plaintext secrets file, which is then removed,
or else from the example file's keys with every value blanked: example
credentials and students are never carried over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from coursehub.chart.checks import check_values
from coursehub.chart.upstream import find_chart, load_data
from coursehub.courses import ENCRYPTED_SUFFIX, EXAMPLE_SUFFIX, SECRET_SUFFIX, load_course, load_yaml
from coursehub.errors import CoursehubError, Problem
from coursehub.ops import sops
from coursehub.paths import display
from coursehub.paths import values_dir as default_values_dir


def blanked(value: Any) -> Any:
    """The example's keys, none of its values."""
    if isinstance(value, dict):
        return {k: blanked(v) for k, v in value.items()}
    return [] if isinstance(value, list) else ""


def edit_secrets(name: str, values_dir: Path | None = None) -> list[str]:
    """Returns what happened, one line each; raises with the course's problems after the edit."""
    values_dir = values_dir or default_values_dir()
    load_course(name, values_dir)  # the course exists, and an existing encrypted file can be decrypted here
    encrypted = values_dir / f"{name}{ENCRYPTED_SUFFIX}"
    secret = values_dir / f"{name}{SECRET_SUFFIX}"
    said: list[str] = []
    if not encrypted.is_file():
        if not sops.has_rule(encrypted):
            raise CoursehubError(
                Problem(
                    display(sops.config_for(values_dir)),
                    "creation_rules",
                    f"has no rule for {display(encrypted)} (or the file is missing)",
                    f"add `- path_regex: {values_dir.name}/{name}\\.secret\\.enc\\.yaml$` with `age: <recipients>` "
                    "(docs/how-to/secrets.md)",
                )
            )
        example = values_dir / f"{name}{EXAMPLE_SUFFIX}"
        start = load_yaml(secret) if secret.is_file() else blanked(load_yaml(example)) if example.is_file() else {}
        sops.write_encrypted(encrypted, start)
        if secret.is_file():
            if yaml.safe_load(sops.decrypt(encrypted)) != start:
                raise CoursehubError(
                    Problem(display(encrypted), "", "does not decrypt to what was encrypted", "check .sops.yaml")
                )
            secret.unlink()
            said.append(f"{display(secret)} is now encrypted in {display(encrypted)} (plaintext removed)")
        else:
            said.append(f"created {display(encrypted)} with the example's keys, values blank")
    changed = sops.edit(encrypted)
    said.append(f"{display(encrypted)}: {'saved, encrypted' if changed else 'unchanged'}")
    problems = check_values(load_course(name, values_dir), load_data(find_chart()))
    recipients = sops.recipients_problem(encrypted)  # sops edit keeps whatever recipients the file had
    problems += [recipients] if recipients else []
    if problems:
        raise CoursehubError(problems)
    return said
