"""Checks on a course's values, before anything is rendered.

Each check returns Problems that name the file to edit (the layer that set the
key, or the course file when nothing did), the key, and the fix.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

import jsonschema
from traitlets import TraitError
from traitlets.config import Config

from coursehub import hubpython, hubtraits, images
from coursehub.courses import Course, Key, coalesce, dotted, get
from coursehub.errors import CoursehubError, Problem
from coursehub.paths import CHART
from coursehub.upstream import UpstreamData

JH: Key = ("jupyterhub",)
DECLARATION: Key = (*JH, "custom", "coursehub")
HUB_CONFIG: Key = (*JH, "hub", "config")
LOAD_ROLES: Key = (*JH, "hub", "loadRoles")
SECRET_NAME = re.compile(r"secret|token|passw|key", re.IGNORECASE)
CMD: Key = (*JH, "singleuser", "cmd")
HOME_DEFAULT = "/home/jovyan"
HUB_PYTHON_VOLUME = "coursehub-hub-python"

Check = Callable[[Course, dict[str, Any], UpstreamData], Iterator[Problem]]


def effective(course: Course, upstream: UpstreamData) -> dict[str, Any]:
    """All values as Helm hands them to the templates: course layers, coursehub defaults, z2jh defaults."""
    values = course.values()
    values["jupyterhub"] = coalesce(values.get("jupyterhub") or {}, upstream.defaults)
    return values


def problem(course: Course, key: Key, message: str, fix: str) -> Problem:
    return Problem(course.origin(key), dotted(key), message, fix)


def coursehub_schema(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """chart/values.schema.json, which Helm also applies on `helm template` and `helm upgrade`."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    yield from _schema_problems(course, schema, values, ())


def z2jh_schema(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """z2jh's own values schema on the `jupyterhub:` block, as Helm applies it to the dependency."""
    yield from _schema_problems(course, upstream.schema, values.get("jupyterhub") or {}, JH)


def _schema_problems(course: Course, schema: dict[str, Any], data: Any, prefix: Key) -> Iterator[Problem]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            for name in extra:
                key = (*prefix, *map(str, path), name)
                yield problem(course, key, "is not a known key", "remove it, or correct its spelling")
            continue
        key = (*prefix, *map(str, path))
        description = error.schema.get("description", "") if isinstance(error.schema, Mapping) else ""
        fix = description.strip().split("\n")[0] if description else "give it a value of the right type"
        message = error.message
        if any(secret_like(part) for part in key):  # jsonschema quotes the value: not a secret's
            message = message.replace(repr(error.instance), "the value (hidden)")
        yield Problem(course.origin(key), dotted((*prefix, *path)), message, fix)


def secret_like(name: str) -> bool:
    """A key whose value must never be shown (OAuth client secrets, proxy tokens, passwords, keys)."""
    return bool(SECRET_NAME.search(name))


def hub_config_names(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """Every hub.config section must be a real configurable class and every key a real trait of it."""
    config = get(values, HUB_CONFIG) or {}
    for section, traits in config.items():
        wrong = hubtraits.check(section)
        if wrong:
            yield problem(course, (*HUB_CONFIG, section), wrong, "use the class name the hub's documentation gives")
            continue
        for trait in traits or {}:
            wrong = hubtraits.check(section, trait)
            if wrong:
                close = re.search(r"did you mean (\S+?)\?", wrong)
                fix = f"rename it to {close.group(1)}" if close else "remove it"
                yield problem(course, (*HUB_CONFIG, section, trait), wrong, fix)


def hub_config_values(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """Every hub.config value must be of its trait's type, as the hub will check it at start-up.

    The trait's own validate() runs on an instance made without __init__ (nothing
    starts). Its TraitError quotes the value, which may be a secret: only the
    types are reported.
    """
    classes = hubtraits.configurable_classes()
    for section, traits in (get(values, HUB_CONFIG) or {}).items():
        if section not in classes or not isinstance(traits, Mapping):
            continue  # hub_config_names and the schema report these
        cls = classes[section][0]
        for name, value in traits.items():
            trait = cls.class_traits().get(name)
            if trait is None:
                continue
            try:
                trait.validate(cls.__new__(cls), value)
            except TraitError:
                number = isinstance(value, int | float) and not isinstance(value, bool)
                yield problem(
                    course,
                    (*HUB_CONFIG, section, name),
                    f"is a {_yaml_type(value)}, but {section}.{name} takes {trait.info()}, so the hub stops at start-up",
                    "put the value in quotes (YAML reads digits as a number)" if number else f"give it {trait.info()}",
                )
            except Exception:  # a trait that needs a running hub to check (e.g. one that imports)
                continue


def _yaml_type(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__
    )


def hub_traits_config(values: dict[str, Any]) -> Config:
    """The traitlets config the hub builds before coursehub's hub-side Python runs (z2jh's
    jupyterhub_config.py order): load_roles from hub.loadRoles, Spawner.cmd from singleuser.cmd, then the
    hub.config sections."""
    c = Config()
    roles = get(values, LOAD_ROLES) or {}
    if isinstance(roles, Mapping):
        c.JupyterHub.load_roles = [
            {"name": key, **role} if isinstance(role, Mapping) and "name" not in role else role
            for key, role in roles.items()
        ]
    if "cmd" in (get(values, (*JH, "singleuser")) or {}):
        c.Spawner.cmd = get(values, CMD)
    for section, traits in (get(values, HUB_CONFIG) or {}).items():
        c[section].update(traits or {})
    return c


def shared_accounts(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """The declaration goes through the same hub-side Python the hub runs, with the course's hub.config
    and hub.loadRoles."""
    module = hubpython.load()
    declaration = get(values, DECLARATION) or {}
    c = hub_traits_config(values)
    try:
        accounts = module.apply(c, declaration)
    except module.DeclarationError as e:
        if "hub.loadRoles" in e.problem:
            yield from _role_clash(course, values, e.problem)
            return
        key = (*DECLARATION, *e.key.replace("[", ".").replace("]", "").split("."))
        message = e.problem
        student = get(values, key)
        if key[len(DECLARATION)] == "members" and isinstance(student, str):
            message = message.replace(repr(student), "this student")  # membership is never printed
        yield Problem(course.origin(key), f"{dotted(DECLARATION)}.{e.key}", message, e.fix)
        return
    manage = get(values, (*HUB_CONFIG, "Authenticator", "manage_groups"))
    if accounts and manage:
        yield problem(
            course,
            (*HUB_CONFIG, "Authenticator", "manage_groups"),
            "is true, so the hub refuses to load coursehub's groups and does not start",
            "set it to false: groups come from coursehub and the admin page",
        )
    for layer in course.layers:
        if not layer.private and get(layer.data, (*DECLARATION, "members")):
            yield Problem(
                layer.name,
                dotted((*DECLARATION, "members")),
                "group membership is private",
                f"move it to values/{course.name}.secret.yaml, which git ignores",
            )


def _role_clash(course: Course, values: dict[str, Any], message: str) -> Iterator[Problem]:
    """A hub.loadRoles entry that has the name of a role coursehub creates: name the entry, not the declaration."""
    roles = get(values, LOAD_ROLES) or {}
    clash = re.search(r"role '([^']+)'", message)
    for key, role in roles.items():
        name = role.get("name", key) if isinstance(role, Mapping) else key
        if clash and name == clash.group(1):
            yield problem(
                course,
                (*LOAD_ROLES, str(key)),
                f"is named {name!r}, a role coursehub creates for its shared accounts, so the hub would not start",
                "rename the entry: names starting with `coursehub-` are coursehub's",
            )
            return
    yield problem(course, LOAD_ROLES, message, "rename or remove the hub.loadRoles entry")


def hub_python_mounted(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """A course's own hub.extraVolumes/extraVolumeMounts replace the lists that ship coursehub's hub Python."""
    for name, ref in (("extraVolumes", "configMap"), ("extraVolumeMounts", "subPath")):
        key = (*JH, "hub", name)
        entries = get(values, key) or []
        if not any(isinstance(e, Mapping) and e.get("name") == HUB_PYTHON_VOLUME and ref in e for e in entries):
            yield problem(
                course,
                key,
                f"has lost the {HUB_PYTHON_VOLUME} entry from chart/values.yaml, so the hub "
                "would run without shared accounts",
                f"copy the {HUB_PYTHON_VOLUME} entry into this list",
            )


def rtc_stores(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """The singleuser command must keep RTC's SQLite files off the (NFS) home directory."""
    cmd = get(values, CMD)
    home = PurePosixPath(get(values, (*JH, "singleuser", "storage", "homeMountPath")) or HOME_DEFAULT)
    if not isinstance(cmd, list) or not cmd:
        yield problem(
            course,
            CMD,
            "is empty, so the image's own command runs with RTC's stores in the home directory",
            "start from the singleuser.cmd in chart/values.yaml",
        )
        return
    for i, arg in enumerate(cmd):
        if not isinstance(arg, str):
            yield problem(
                course,
                CMD,
                f"item {i} is {arg!r}, not a string (YAML reads `--x=:y:` as a mapping)",
                "put the item in double quotes",
            )
    flags = dict(_flags(cmd))
    for flag, what in (("SQLiteYStore.db_path", "the Y store"), ("BaseFileIdManager.db_path", "the file-ID database")):
        if flag not in flags:
            yield problem(
                course,
                CMD,
                f"does not set --{flag}, so {what} is written to the home directory",
                f"add --{flag}=/tmp/<file>.db",
            )
            continue
        path = PurePosixPath(flags[flag])
        if flags[flag] != ":memory:" and (not path.is_absolute() or path == home or home in path.parents):
            yield problem(
                course,
                CMD,
                f"--{flag}={flags[flag]} is in the home directory ({home}), which is on NFS",
                f"use a path under /tmp, e.g. --{flag}=/tmp/{path.name or 'store.db'}",
            )
    store_class = flags.get("YDocExtension.ystore_class", "")
    if store_class.startswith("tmpystore"):
        yield problem(
            course,
            CMD,
            f"--YDocExtension.ystore_class={store_class} needs the tmpystore package, which "
            "cannot be installed and fails on jupyter-collaboration >= 2",
            "drop it and set --SQLiteYStore.db_path=/tmp/jupyter_ystore.db (works from jupyter_server_ydoc 0.6.1 on)",
        )


def _flags(cmd: list[Any]) -> Iterator[tuple[str, str]]:
    for arg in cmd:
        text = str(arg)
        if text.startswith("--") and "=" in text:
            name, _, value = text[2:].partition("=")
            yield name, value
        elif text.startswith("-") and " " in text:  # a flag and its value pasted into one list item
            yield from _flags(shlex.split(text))


def course_image(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """The course deploys one of its own image variants (image/<course>/<tag>/), by that image's name."""
    key = (*JH, "singleuser", "image")
    image = get(values, key) or {}
    if not isinstance(image.get("tag"), str) or not image["tag"]:
        return  # the schemas already report a missing or mistyped tag
    try:
        variant = images.deployed(course.name, image["tag"])
    except CoursehubError as e:
        for p in e.problems:
            yield Problem(course.origin((*key, "tag")), dotted((*key, "tag")), p.message, p.fix)
        return
    if image.get("name") != variant.name:
        yield problem(
            course,
            (*key, "name"),
            f"is {image.get('name')!r}, but image/{course.name}/image.yaml builds {variant.name!r}",
            "use the course's own image (courses never share one)",
        )


CHECKS: tuple[Check, ...] = (
    coursehub_schema,
    z2jh_schema,
    hub_config_names,
    hub_config_values,
    shared_accounts,
    hub_python_mounted,
    rtc_stores,
    course_image,
)


def check_values(course: Course, upstream: UpstreamData) -> list[Problem]:
    values = effective(course, upstream)
    found: list[Problem] = []
    for check in CHECKS:
        found.extend(check(course, values, upstream))
    return list(dict.fromkeys(found))  # one report per problem, even when two checks see it
