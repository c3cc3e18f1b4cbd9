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
from urllib.parse import urlparse

import jsonschema
from traitlets import TraitError
from traitlets.config import Config

from coursehub.chart import hubtraits
from coursehub.chart.upstream import UpstreamData
from coursehub.courses import Course, Key, coalesce, dotted, get, walk
from coursehub.errors import CoursehubError, Problem
from coursehub.groups import hubpython
from coursehub.images import build as images
from coursehub.paths import CHART
from coursehub.singleuser import POD_HOME, STORE_FLAGS, flags, parse_flag

JH: Key = ("jupyterhub",)
DECLARATION: Key = (*JH, "custom", "coursehub")
HUB_CONFIG: Key = (*JH, "hub", "config")
LOAD_ROLES: Key = (*JH, "hub", "loadRoles")
# Declaration keys that name people and are private to the course: only its secrets file may set them.
PRIVATE = {"members": "group membership", "staff": "the course's staff list"}
SECRET_NAME = re.compile(r"secret|token|passw|key", re.IGNORECASE)
CMD: Key = (*JH, "singleuser", "cmd")
SUBDOMAIN_HOST: Key = (*HUB_CONFIG, "JupyterHub", "subdomain_host")
COOKIE_PREFIX: Key = (*HUB_CONFIG, "JupyterHub", "cookie_host_prefix_enabled")
SAME_ORIGIN_ACCEPTED: Key = (*DECLARATION, "sameOriginAccepted")
LMS_TOKEN: Key = (*DECLARATION, "lms", "token")
EXTRA_CONFIG: Key = (*JH, "hub", "extraConfig")
# Where the private layer may hold credentials (dotted key paths, as regular expressions): exactly the values that
# are secrets and grant nothing by being changed, the authenticators' OAuth clients, the hub's and the proxy's own
# secrets. (A pattern on names would admit token_url, service_tokens, server_token_scopes and the like: a security
# review found 33 such traits.) Members and staff: PRIVATE above; services' API tokens: private_layer.
PRIVATE_KEYS = tuple(
    re.compile(rule)
    for rule in (
        r"jupyterhub\.hub\.config\.[A-Za-z0-9_]+\.client_(id|secret)",
        r"jupyterhub\.hub\.config\.CryptKeeper\.keys",
        r"jupyterhub\.hub\.cookieSecret",
        r"jupyterhub\.hub\.db\.password",
        r"jupyterhub\.proxy\.secretToken",
        r"jupyterhub\.custom\.coursehub\.lms\.token",
    )
)
SERVICES: Key = (*JH, "hub", "services")
# Services whose tokens are coursehub's or z2jh's own: a token set for them in the private layer would be a key
# to the hub that nobody reviewed.
RESERVED_SERVICES = frozenset({hubpython.load().RECONCILER, "jupyterhub-idle-culler"})
INGRESS: Key = (*JH, "ingress")
AUTOHTTPS: Key = (*JH, "proxy", "https")

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
        # jsonschema quotes the value: not a secret's, nor a student's or a TA's name
        if any(secret_like(part) for part in key) or private_key(key):
            message = message.replace(repr(error.instance), "the value (hidden)")
        yield Problem(course.origin(key), dotted((*prefix, *path)), message, fix)


def secret_like(name: str) -> bool:
    """A key whose value must never be shown (OAuth client secrets, proxy tokens, passwords, keys)."""
    return bool(SECRET_NAME.search(name))


def private_key(key: Key) -> bool:
    """A key under the declaration's members or staff: its values are people's names."""
    return key[: len(DECLARATION)] == DECLARATION and len(key) > len(DECLARATION) and key[len(DECLARATION)] in PRIVATE


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
    except TraitError as e:  # the authenticator class the refusal subclasses does not import
        key = (*HUB_CONFIG, "JupyterHub", "authenticator_class")
        if get(values, key) is None:  # else hub_config_values names the value already
            yield problem(course, key, f"cannot be loaded ({str(e).splitlines()[0]})", "name an installed one")
        return
    except module.DeclarationError as e:
        if "hub.loadRoles" in e.problem:
            yield from _role_clash(course, values, e.problem)
            return
        key = (*DECLARATION, *e.key.replace("[", ".").replace("]", "").split("."))
        message = e.problem
        student = get(values, key)
        if private_key(key) and isinstance(student, str):  # membership and staff are never printed
            message = message.replace(
                repr(student), "this student" if key[len(DECLARATION)] == "members" else "this TA"
            )
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
        for key, what in PRIVATE.items():
            if not layer.private and get(layer.data, (*DECLARATION, key)):
                yield Problem(
                    layer.name,
                    dotted((*DECLARATION, key)),
                    f"{what} is private",
                    f"move it to values/{course.name}.secret.yaml, which git ignores",
                )
        if not layer.private and get(layer.data, LMS_TOKEN):
            yield Problem(
                layer.name,
                dotted(LMS_TOKEN),
                "is a Canvas API token in a committed file (anyone who reads the repository can read the course)",
                f"revoke it in Canvas, and put the new one in the course's secrets file (make edit-secrets "
                f"COURSE={course.name})",
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


def hub_image(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """coursehub's hub side ships in its hub image (chart/values.yaml's hub.image): a course that names another
    image runs a hub without shared accounts, their roles or the log-in refusal."""
    key = (*JH, "hub", "image")
    ours = get(course.chart_defaults, key) or {}
    image = get(values, key) or {}
    if (image.get("name"), image.get("tag")) != (ours.get("name"), ours.get("tag")):
        yield problem(
            course,
            key,
            f"is {image.get('name')}:{image.get('tag')}, not coursehub's hub image {ours.get('name')}:{ours.get('tag')}, "
            "so the hub would run without coursehub's hub side (shared accounts, their roles, the log-in refusal)",
            "remove it from the course's values (coursehub's chart sets it; a new hub side is a new tag there)",
        )


def rtc_stores(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """The singleuser command must keep RTC's SQLite files off the (NFS) home directory."""
    cmd = get(values, CMD)
    home = PurePosixPath(get(values, (*JH, "singleuser", "storage", "homeMountPath")) or POD_HOME)
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
    given = dict(_flags(cmd))
    for flag, what in STORE_FLAGS.items():
        if flag not in given:
            yield problem(
                course,
                CMD,
                f"does not set --{flag}, so {what} is written to the home directory",
                f"add --{flag}=/tmp/<file>.db",
            )
            continue
        path = PurePosixPath(given[flag])
        if given[flag] != ":memory:" and (not path.is_absolute() or path == home or home in path.parents):
            yield problem(
                course,
                CMD,
                f"--{flag}={given[flag]} is in the home directory ({home}), which is on NFS",
                f"use a path under /tmp, e.g. --{flag}=/tmp/{path.name or 'store.db'}",
            )
    store_class = given.get("YDocExtension.ystore_class", "")
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
        if text.startswith("-") and " " in text and "=" not in text.split(" ")[0]:
            yield from flags(shlex.split(text))  # a flag and its value pasted into one list item
        elif (parsed := parse_flag(text)) is not None:
            yield parsed


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


# z2jh's NetworkPolicies, which coursehub keeps on: with them the user servers cannot reach the cloud
# metadata server, which is why coursehub drops z2jh's privileged iptables init container (chart/values.yaml).
NETWORK_POLICIES: tuple[Key, ...] = ((*JH, "hub"), (*JH, "proxy", "chp"), (*JH, "singleuser"))


def network_policies(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """z2jh's NetworkPolicies stay on, and the servers' one never opens the cloud metadata server."""
    for component in NETWORK_POLICIES:
        key = (*component, "networkPolicy", "enabled")
        if get(values, key) is not True:
            yield problem(
                course,
                key,
                "turns off one of z2jh's NetworkPolicies, which coursehub's hardening relies on",
                "remove this key (the policies' egress and ingress rules can be widened instead)",
            )
    metadata = (*JH, "singleuser", "networkPolicy", "egressAllowRules", "cloudMetadataServer")
    iptables = (*JH, "singleuser", "cloudMetadata", "blockWithIptables")
    if get(values, metadata) is True and get(values, iptables) is not True:
        yield problem(
            course,
            metadata,
            "lets every user server reach the cloud metadata server (169.254.169.254), whose credentials "
            "are the node's",
            "remove this key, or set singleuser.cloudMetadata.blockWithIptables: true to block it in each pod",
        )


def hub_host(values: dict[str, Any]) -> str:
    """The hub's host name when servers run on subdomains of it (JupyterHub.subdomain_host), else ""."""
    url = get(values, SUBDOMAIN_HOST)
    return (urlparse(url).hostname or "") if isinstance(url, str) and url else ""


def subdomains_served(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """With subdomain_host, every <user>.<host> must reach the proxy with a certificate that covers it.

    z2jh's Ingress has one rule per ingress.hosts entry (none: every host) and TLS for the ingress.tls
    hosts; its own Let's Encrypt (proxy.https, HTTP-01 challenges) cannot issue a wildcard certificate.
    """
    host = hub_host(values)
    if not host:
        return
    wanted = [host, f"*.{host}"]
    ingress = get(values, INGRESS)
    if isinstance(ingress, Mapping) and ingress.get("enabled"):
        hosts = ingress.get("hosts") or []
        missing = [h for h in wanted if hosts and h not in hosts]
        if missing:
            yield problem(
                course,
                (*INGRESS, "hosts"),
                f"lacks {' and '.join(missing)}, so the ingress does not serve "
                f"{'the hub or ' if host in missing else ''}the users' servers at <user>.{host}",
                f"add {', '.join(repr(h) for h in missing)} to jupyterhub.ingress.hosts "
                f"(and a wildcard DNS record *.{host} pointing at the ingress)",
            )
        tls_hosts = {
            h for entry in ingress.get("tls") or [] if isinstance(entry, Mapping) for h in entry.get("hosts") or []
        }
        missing_tls = [h for h in wanted if ingress.get("tls") and h not in tls_hosts]
        if missing_tls:
            yield problem(
                course,
                (*INGRESS, "tls"),
                f"has no entry for {' and '.join(missing_tls)}, so browsers get no valid certificate there",
                f"list {', '.join(repr(h) for h in missing_tls)} in an ingress.tls entry's hosts, with a secretName "
                f"holding a certificate for both {host} and *.{host} (a wildcard certificate; ACME needs DNS-01)",
            )
    https = get(values, AUTOHTTPS)
    if (
        isinstance(https, Mapping)
        and https.get("enabled")
        and https.get("type", "letsencrypt") == "letsencrypt"
        and https.get("hosts")
    ):
        yield problem(
            course,
            AUTOHTTPS,
            f"gets certificates from Let's Encrypt (type letsencrypt) through z2jh's autohttps, which answers HTTP-01 "
            f"challenges: they cannot issue the wildcard "
            f"certificate *.{host} that servers on subdomains need",
            "terminate TLS at an ingress (ingress.tls) or use proxy.https.type secret with a wildcard certificate",
        )


def _shares_homes(values: dict[str, Any]) -> bool:
    """Whether people open servers whose home others write: shared accounts (every member writes the home; from
    Canvas, lms), or staff (TAs open every group's account)."""
    declaration = get(values, DECLARATION)
    return isinstance(declaration, Mapping) and any(declaration.get(k) for k in ("sharedAccounts", "staff", "lms"))


def same_origin(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """Shared accounts or staff need servers on their own origins (JupyterHub.subdomain_host).

    A shared account's home is writable by every member of its group: a JupyterLab extension or
    ~/.jupyter config put there runs in the browser of everyone who opens the server. On the hub's own
    origin that code acts as them, with the hub's cookie: as a TA it can add the student to every group.
    On a subdomain it cannot. A course that really cannot have subdomains says so, with its reason, in
    SAME_ORIGIN_ACCEPTED (isolation_warnings prints it at every validate).
    """
    if get(values, SUBDOMAIN_HOST) or not _shares_homes(values) or get(values, SAME_ORIGIN_ACCEPTED):
        return
    yield problem(
        course,
        SUBDOMAIN_HOST,
        "is not set, so servers run on the hub's own origin, where code a group member puts in a shared "
        "account's home (a JupyterLab extension, ~/.jupyter) runs as every visitor, TAs included, with their hub "
        "log-in",
        "set it to https://<the hub's host> with cookie_host_prefix_enabled: true, a wildcard DNS record "
        "*.<host> and a wildcard certificate (docs/how-to/subdomains.md); only where that is impossible, set "
        f"{dotted(SAME_ORIGIN_ACCEPTED)} to the reason",
    )


def private_layer(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """The private layer (secrets file, plain or sops-encrypted) holds only what is private: credentials,
    members and staff. Nobody can review an encrypted diff, so anything else there (an admin, an image,
    hub.extraConfig Python) would reach the hub unseen."""
    services = {
        str(name)
        for layer in course.layers
        if not layer.private
        for name in (get(layer.data, SERVICES) or {})
        if str(name) not in RESERVED_SERVICES
    }
    for layer in course.layers:
        if not layer.private:
            continue
        shown: set[Key] = set()
        for key, value in walk(layer.data):
            if value == {} or private_value(key, services):
                continue
            # a map under a hub.config trait may be keyed by secrets (service_tokens, api_tokens): name the trait
            key = key[: len(HUB_CONFIG) + 2] if key[: len(HUB_CONFIG)] == HUB_CONFIG else key
            if key in shown:
                continue
            shown.add(key)
            yield Problem(
                layer.name,
                dotted(key),
                "is not private (the private layer holds only credentials, members and staff: what is encrypted "
                "there cannot be reviewed)",
                f"move it to values/{course.name}.yaml",
            )


def private_value(key: Key, services: set[str] = frozenset()) -> bool:  # type: ignore[assignment]
    """Keys the private layer may hold: the declaration's members and staff, the credentials in PRIVATE_KEYS,
    and the API token of a service the committed layers declare (not coursehub's or z2jh's own)."""
    if private_key(key):
        return True
    if len(key) == len(SERVICES) + 2 and key[: len(SERVICES)] == SERVICES and key[-1] == "apiToken":
        return key[len(SERVICES)] in services
    path = ".".join(key)
    return any(rule.fullmatch(path) for rule in PRIVATE_KEYS)


def extra_config_refusal(course: Course, values: dict[str, Any], upstream: UpstreamData) -> Iterator[Problem]:
    """hub.extraConfig runs after coursehub's hub-side Python: a snippet that sets the authenticator class
    replaces the class that refuses log-ins as shared accounts (a post_auth_hook there is fine now)."""
    for name, snippet in (get(values, EXTRA_CONFIG) or {}).items():
        if isinstance(snippet, str) and "authenticator_class" in snippet:
            yield problem(
                course,
                (*EXTRA_CONFIG, str(name)),
                "sets the authenticator class after coursehub's hub-side Python, which would take out the refusal "
                "of log-ins as shared accounts",
                "set hub.config.JupyterHub.authenticator_class instead (configure the class in its own hub.config "
                "section)",
            )


def isolation_warnings(course: Course, values: dict[str, Any]) -> list[Problem]:
    """Not errors: a course may run this way, but its users are less protected from each other."""
    host = get(values, SUBDOMAIN_HOST)
    found: list[Problem] = []
    reason = get(values, SAME_ORIGIN_ACCEPTED)
    if not host and _shares_homes(values) and reason:
        found.append(
            problem(
                course,
                SAME_ORIGIN_ACCEPTED,
                f"servers run on the hub's own origin, accepted because: {reason}",
                "set hub.config.JupyterHub.subdomain_host as soon as the wildcard DNS record and certificate exist",
            )
        )
    if isinstance(host, str) and host.startswith("https://") and get(values, COOKIE_PREFIX) is not True:
        found.append(
            problem(
                course,
                COOKIE_PREFIX,
                "is not true, so a server on a subdomain can still set cookies for the hub's domain "
                "(cookie tossing, GHSA-7r3h-4ph8-w38g)",
                "set it to true (the hub's log-in cookie then becomes __Host-, which only the hub's host can set)",
            )
        )
    return found


SCHEMA_CHECKS: tuple[Check, ...] = (coursehub_schema, z2jh_schema)
CHECKS: tuple[Check, ...] = (
    coursehub_schema,
    z2jh_schema,
    hub_config_names,
    hub_config_values,
    shared_accounts,
    hub_image,
    rtc_stores,
    course_image,
    network_policies,
    subdomains_served,
    same_origin,
    private_layer,
    extra_config_refusal,
)


def check_values(course: Course, upstream: UpstreamData) -> list[Problem]:
    values = effective(course, upstream)
    found: list[Problem] = []
    schema_keys: set[tuple[str, str]] = set()
    for check in CHECKS:
        for p in check(course, values, upstream):
            # A later check that trips on a value the schemas already refused (the hub-side Python checks names
            # against the same schema rule) would only repeat it: one report per bad value.
            if check in SCHEMA_CHECKS:
                schema_keys.add((p.file, p.key))
            elif (p.file, p.key) in schema_keys:
                continue
            found.append(p)
    return list(dict.fromkeys(found))  # one report per problem, even when two checks see it
