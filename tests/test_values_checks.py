"""Checks on course values, with the real z2jh chart's defaults and schema: every course passes; each kind of bad input is named.

Each bad case breaks a copy of values/ and expects one problem that names the
file to edit, the key, and a fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coursehub.chart.checks import check_values
from coursehub.chart.upstream import load_data
from coursehub.courses import Course, Layer, course_names, load_course
from coursehub.errors import Problem
from coursehub.groups import hubpython
from coursehub.paths import CHART
from helpers.files import edit


def problems_for(values_dir: Path, course: str = "stat159") -> list[Problem]:
    return check_values(load_course(course, values_dir=values_dir), load_data())  # the real chart's defaults and schema


def the_problem(values_dir: Path, course: str = "stat159") -> Problem:
    found = problems_for(values_dir, course)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def test_there_are_at_least_two_courses_with_their_own_images() -> None:
    names = course_names()
    assert {"stat159", "data100"} <= set(names)
    images = {load_course(n).values()["jupyterhub"]["singleuser"]["image"]["name"] for n in names}
    assert len(images) == len(names)


@pytest.mark.parametrize("course", course_names())
def test_every_course_passes_with_its_example_secrets(course: str) -> None:
    loaded = load_course(course)
    assert loaded.files[-1].name.endswith(".secret.example.yaml") or loaded.files[-1].name.endswith(".secret.yaml")
    assert check_values(loaded, load_data()) == []


def test_the_seeds_managed_groups_typo_is_caught_with_the_right_name(values_dir: Path) -> None:
    edit(values_dir / "stat159.yaml", {"jupyterhub.hub.config.Authenticator.managed_groups": False})
    p = the_problem(values_dir)
    assert p.file.endswith("stat159.yaml")
    assert p.key == "jupyterhub.hub.config.Authenticator.managed_groups"
    assert "manage_groups" in p.message and "rename it to manage_groups" in p.fix


def test_an_unknown_hub_config_class_is_caught(values_dir: Path) -> None:
    edit(values_dir / "common.yaml", {"jupyterhub.hub.config.GenericOauthenticator.client_id": "x"})
    p = the_problem(values_dir)
    assert p.file.endswith("common.yaml") and p.key == "jupyterhub.hub.config.GenericOauthenticator"
    assert "GenericOAuthenticator" in p.message


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        # coursehub's own keys: strict
        (
            {"jupyterhub.custom.coursehub.sharedAcounts": []},
            "jupyterhub.custom.coursehub.sharedAcounts",
            "not a known key",
        ),
        ({"jupyterhub.custom.coursehub.course": 159}, "jupyterhub.custom.coursehub.course", "is not of type 'string'"),
        (
            {"jupyterhub.custom.coursehub.sharedAccounts": "shared-1"},
            "jupyterhub.custom.coursehub.sharedAccounts",
            "is not of type 'array'",
        ),
        ({"jupyterhub.singleuser.image.tag": None}, "jupyterhub.singleuser.image.tag", "non-empty"),
        ({"jupyterhub.singleuser.image.tag": "latest"}, "jupyterhub.singleuser.image.tag", "should not be valid"),
        # z2jh's schema on the jupyterhub block
        ({"jupyterhub.singleuser.image.tag": 2023}, "jupyterhub.singleuser.image.tag", "is not of type 'string'"),
        ({"jupyterhub.singleuser.cpu.limitt": 2}, "jupyterhub.singleuser.cpu.limitt", "not a known key"),
        ({"jupyterhub.hubb": {}}, "jupyterhub.hubb", "not a known key"),
    ],
)
def test_wrong_types_and_unknown_keys_are_named(values_dir: Path, change: dict[str, Any], key: str, words: str) -> None:
    edit(values_dir / "stat159.yaml", change)
    found = problems_for(values_dir)
    assert found, "accepted"
    assert any(p.key == key and words in p.message and p.file.endswith("stat159.yaml") for p in found), "\n".join(
        map(str, found)
    )


def test_a_missing_image_tag_names_the_course_file(values_dir: Path) -> None:
    edit(values_dir / "data100.yaml", {"jupyterhub.singleuser.image.tag": None})
    found = problems_for(values_dir, "data100")
    assert [p.key for p in found] == ["jupyterhub.singleuser.image.tag"]
    # the chart's empty default is what is left: the fix points at the course's own file
    assert "Fix: A pinned, immutable tag" in str(found[0])


@pytest.mark.parametrize(
    ("accounts", "members", "key", "words"),
    [
        (
            [{"group": "shared-1", "account": "collab-1"}, {"group": "shared-1", "account": "collab-2"}],
            {},
            "sharedAccounts[1].group",
            "declared twice",
        ),
        (
            [{"group": "shared-1", "account": "collab-1"}, {"group": "shared-2", "account": "collab-1"}],
            {},
            "sharedAccounts[1].account",
            "shared by two groups",
        ),
        ([{"group": "Shared_1", "account": "collab-1"}], {}, "sharedAccounts[0].group", "does not match"),
        (
            [{"group": "shared-1", "account": "collab-1"}],
            {"shared-9": ["example-student-1"]},
            "members.shared-9",
            "not declared in sharedAccounts",
        ),
        (
            [{"group": "shared-1", "account": "collab-1"}],
            {"shared-1": ["s1", "s1"]},
            "members.shared-1[1]",
            "listed twice",
        ),
    ],
)
def test_bad_group_declarations_are_named(
    values_dir: Path, accounts: list[Any], members: dict[str, Any], key: str, words: str
) -> None:
    edit(values_dir / "stat159.yaml", {"jupyterhub.custom.coursehub.sharedAccounts": accounts})
    edit(values_dir / "stat159.secret.example.yaml", {"jupyterhub.custom.coursehub.members": members})
    found = problems_for(values_dir)
    assert any(p.key.endswith(key) and words in p.message for p in found), "\n".join(map(str, found))


def test_a_member_of_an_unknown_group_names_the_secrets_file(values_dir: Path) -> None:
    edit(values_dir / "stat159.secret.example.yaml", {"jupyterhub.custom.coursehub.members.shared-99": ["s1"]})
    p = the_problem(values_dir)
    assert p.file.endswith("stat159.secret.example.yaml")
    assert p.key == "jupyterhub.custom.coursehub.members.shared-99"


def test_the_real_secrets_file_wins_over_the_example(values_dir: Path) -> None:
    (values_dir / "stat159.secret.yaml").write_text(
        "jupyterhub:\n  custom:\n    coursehub:\n      members:\n        shared-1: [real-student]\n"
    )
    course = load_course("stat159", values_dir=values_dir)
    assert course.files[-1].name == "stat159.secret.yaml" and not course.uses_example_secrets
    assert course.values()["jupyterhub"]["custom"]["coursehub"]["members"] == {"shared-1": ["real-student"]}


def test_membership_in_a_committed_file_is_refused(values_dir: Path) -> None:
    edit(values_dir / "stat159.yaml", {"jupyterhub.custom.coursehub.members": {"shared-1": ["s1"]}})
    found = problems_for(values_dir)
    assert any(p.file.endswith("stat159.yaml") and "private" in p.message for p in found)


def test_the_staff_list_in_a_committed_file_is_refused(values_dir: Path) -> None:
    edit(values_dir / "stat159.yaml", {"jupyterhub.custom.coursehub.staff": ["ta-x"]})
    p = the_problem(values_dir)
    assert p.file.endswith("stat159.yaml") and p.key == "jupyterhub.custom.coursehub.staff"
    assert "private" in p.message and "stat159.secret.yaml" in p.fix


@pytest.mark.parametrize(
    ("staff", "key", "words"),
    [
        (["example-ta", "collab-shared-2"], "staff[1]", "is the shared account of group shared-2"),
        (["collab-ta"], "staff[0]", "account prefix"),
        (["example-ta", "example-ta"], "staff[1]", "listed twice"),
    ],
)
def test_a_bad_staff_list_names_the_secrets_file_the_key_and_the_fix(
    values_dir: Path, staff: list[str], key: str, words: str
) -> None:
    edit(values_dir / "stat159.secret.example.yaml", {"jupyterhub.custom.coursehub.staff": staff})
    p = the_problem(values_dir)
    assert p.file.endswith("stat159.secret.example.yaml") and p.key == f"jupyterhub.custom.coursehub.{key}"
    assert words in p.message and p.fix
    assert "example-ta" not in str(p)  # who the staff are is never printed


def test_a_staff_name_that_is_no_user_name_is_refused_by_the_schema(values_dir: Path) -> None:
    edit(values_dir / "stat159.secret.example.yaml", {"jupyterhub.custom.coursehub.staff": ["TA X"]})
    found = problems_for(values_dir)
    assert found and all(p.file.endswith("stat159.secret.example.yaml") for p in found), "\n".join(map(str, found))
    assert {p.key for p in found} == {"jupyterhub.custom.coursehub.staff[0]"}, "\n".join(map(str, found))
    assert "TA X" not in "\n".join(map(str, found))  # not even a mistyped name is printed


def test_manage_groups_true_would_stop_the_hub(values_dir: Path) -> None:
    edit(values_dir / "common.yaml", {"jupyterhub.hub.config.Authenticator.manage_groups": True})
    p = the_problem(values_dir)
    assert p.file.endswith("common.yaml") and p.key.endswith("Authenticator.manage_groups")


def test_a_course_with_its_own_volumes_keeps_the_hub_side_and_its_own_hub_image_loses_it(values_dir: Path) -> None:
    edit(values_dir / "stat159.yaml", {"jupyterhub.hub.extraVolumes": [{"name": "other", "emptyDir": {}}]})
    assert problems_for(values_dir) == []  # the hub side is in the image now, not in a volume a course can replace
    edit(values_dir / "stat159.yaml", {"jupyterhub.hub.image": {"name": "quay.io/jupyterhub/k8s-hub", "tag": "4.4.0"}})
    p = the_problem(values_dir)
    assert p.key == "jupyterhub.hub.image" and p.file.endswith("stat159.yaml")
    assert "quay.io/jupyterhub/k8s-hub:4.4.0, not coursehub's hub image quay.io/coursehub/hub:" in p.message


@pytest.mark.parametrize(
    ("replace", "by", "words"),
    [
        ("--SQLiteYStore.db_path=/tmp/ystore.db", "--YDocExtension.ystore_class=tmpystore.TmpYStore", "tmpystore"),
        ("--SQLiteYStore.db_path=/tmp/ystore.db", "--SQLiteYStore.db_path=/home/jovyan/.ystore.db", "home directory"),
        ("--SQLiteYStore.db_path=/tmp/ystore.db", "--SQLiteYStore.db_path=.jupyter_ystore.db", "home directory"),
        ("--BaseFileIdManager.db_path=/tmp/jupyter_file_id.db", "--LabApp.dev_mode=false", "file-ID database"),
        ('"--NotebookNotary.db_file=:memory:"', "--NotebookNotary.db_file=:memory:", "not a string"),
    ],
)
def test_rtc_stores_must_stay_off_the_home_directory(values_dir: Path, replace: str, by: str, words: str) -> None:
    path = values_dir / "stat159.yaml"
    assert replace in path.read_text()
    edit(path, text=path.read_text().replace(replace, by))
    found = problems_for(values_dir)
    assert any(p.key == "jupyterhub.singleuser.cmd" and words in p.message for p in found), "\n".join(map(str, found))


def test_bad_yaml_names_the_file_and_line(values_dir: Path) -> None:
    edit(values_dir / "stat159.yaml", text="jupyterhub:\n  custom: [\n")
    with pytest.raises(Exception) as caught:
        problems_for(values_dir)
    assert "stat159.yaml" in str(caught.value) and "line" in str(caught.value)


@pytest.mark.parametrize("component", ["hub", "proxy.chp", "singleuser"])
def test_z2jhs_network_policies_stay_on(values_dir: Path, component: str) -> None:
    edit(values_dir / "stat159.yaml", {f"jupyterhub.{component}.networkPolicy.enabled": False})
    p = the_problem(values_dir)
    assert p.file.endswith("stat159.yaml") and p.key == f"jupyterhub.{component}.networkPolicy.enabled"
    assert "remove this key" in p.fix


def test_the_cloud_metadata_server_stays_blocked_without_the_privileged_init_container(values_dir: Path) -> None:
    key = "jupyterhub.singleuser.networkPolicy.egressAllowRules.cloudMetadataServer"
    edit(values_dir / "stat159.yaml", {key: True})
    p = the_problem(values_dir)
    assert p.key == key and "169.254.169.254" in p.message and "blockWithIptables: true" in p.fix
    # With z2jh's iptables init container back, the policy may allow it (z2jh's own trade-off).
    edit(values_dir / "stat159.yaml", {"jupyterhub.singleuser.cloudMetadata.blockWithIptables": True})
    assert problems_for(values_dir) == []


def test_a_bad_group_name_is_one_problem_from_the_one_rule(values_dir: Path) -> None:
    """One report, not two; and the rule Helm checks (values.schema.json) is the rule the hub checks
    (coursehub_hub.names, in the hub image, where names also come from Canvas at run time)."""
    edit(
        values_dir / "stat159.yaml",
        {"jupyterhub.custom.coursehub.sharedAccounts": [{"group": "Shared_1", "account": "collab-1"}]},
    )
    p = the_problem(values_dir)
    assert p.key == "jupyterhub.custom.coursehub.sharedAccounts[0].group" and "Shared_1" in p.message
    schema = json.loads((CHART / "values.schema.json").read_text())["definitions"]
    rules = hubpython.load()
    assert rules.GROUP_NAME.pattern.pattern == schema["groupName"]["pattern"]
    assert rules.USER_NAME.pattern.pattern == schema["userName"]["pattern"]
    assert (rules.GROUP_NAME.description, rules.USER_NAME.description) == (
        schema["groupName"]["description"],
        schema["userName"]["description"],
    )


def test_a_values_text_is_parsed_once_and_every_reader_gets_a_copy_of_its_own() -> None:
    """courses.parse_yaml keeps what the strict loader made of a text: a second read of the same text is not
    parsed again, and a reader that changes its data changes nobody else's. Decrypted secrets are not kept."""
    import yaml

    from coursehub import courses
    from coursehub.errors import CoursehubError
    from coursehub.paths import VALUES

    text = (VALUES / "stat159.yaml").read_text()
    first = courses.parse_yaml(text, "stat159.yaml")
    first["jupyterhub"]["custom"]["coursehub"]["course"] = "changed"
    hits = courses._parsed.cache_info().hits
    second = courses.parse_yaml(text, "stat159.yaml")
    assert courses._parsed.cache_info().hits == hits + 1
    assert second == yaml.safe_load(text) and second["jupyterhub"]["custom"]["coursehub"]["course"] == "stat159"
    secrets = text.replace("stat159", "decrypted-secrets")  # what sops decrypts is parsed, never kept
    kept = courses._parsed.cache_info().currsize
    assert courses.parse_yaml(secrets, "stat159.secret.enc.yaml", keep=False) == yaml.safe_load(secrets)
    assert courses._parsed.cache_info().currsize == kept
    with pytest.raises(CoursehubError, match="'jupyterhub' appears twice"):  # the strict checks still apply
        courses.parse_yaml(text + "jupyterhub: {}\n", "stat159.yaml")


SNEAKED = {  # what someone with only the public age recipients could slip into the encrypted layer
    "jupyterhub.hub.config.Authenticator.admin_users": ["mallory"],
    "jupyterhub.hub.extraConfig.zz": "c.Authenticator.allow_all = True",
    "jupyterhub.singleuser.image.name": "quay.io/mallory/image",
    "jupyterhub.custom.coursehub.sharedAccounts": [{"group": "shared-1", "account": "collab-shared-1"}],
    # named like credentials, but each grants power (a security review's finds): an OAuth endpoint that gets the
    # client secret, a token that is the reconciler, tokens for the servers' Kubernetes API
    "jupyterhub.hub.config.GenericOAuthenticator.token_url": "https://mallory.example/token",
    "jupyterhub.hub.services.coursehub-reconciler.apiToken": "f" * 64,
    "jupyterhub.hub.config.KubeSpawner.automount_service_account_token": True,
}


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("key", sorted(SNEAKED))
def test_the_private_layer_holds_only_credentials_members_and_staff(
    values_dir: Path, key: str, encrypted: bool
) -> None:
    edit(values_dir / "stat159.secret.example.yaml", {key: SNEAKED[key]})
    course = load_course("stat159", values_dir=values_dir)
    if encrypted:  # the same plaintext, as an encrypted layer decrypts to (sops itself: tests/test_sops.py)
        *public, private = course.layers
        layer = Layer(values_dir / "stat159.secret.enc.yaml", private.data, encrypted=True)
        course = Course(course.name, course.course_file, (*public, layer), course.chart_defaults)
    found = [p for p in check_values(course, load_data()) if "is not private" in p.message]
    assert [p.key for p in found] == [key]
    assert found[0].file.endswith(".secret.enc.yaml" if encrypted else ".secret.example.yaml")
    assert found[0].fix == "move it to values/stat159.yaml"
    assert "mallory" not in str(found[0])  # the key, never the value


def test_a_map_keyed_by_tokens_is_named_by_its_trait_never_by_a_token(values_dir: Path) -> None:
    token = "9f2c1d7e5b3a48c6a0e4f1b2c3d4e5f6"
    edit(values_dir / "stat159.secret.example.yaml", {f"jupyterhub.hub.config.JupyterHub.api_tokens.{token}": "ops"})
    (found,) = [p for p in problems_for(values_dir) if "is not private" in p.message]
    assert found.key == "jupyterhub.hub.config.JupyterHub.api_tokens" and token not in str(found)


def test_a_services_token_may_be_private_only_for_a_service_the_committed_values_declare(values_dir: Path) -> None:
    edit(values_dir / "stat159.secret.example.yaml", {"jupyterhub.hub.services.grader.apiToken": "g" * 64})
    assert [p.key for p in problems_for(values_dir)] == ["jupyterhub.hub.services.grader.apiToken"]
    edit(values_dir / "stat159.yaml", {"jupyterhub.hub.services.grader.admin": False})
    assert problems_for(values_dir) == []


def test_credentials_in_the_private_layer_pass(values_dir: Path) -> None:
    edit(
        values_dir / "stat159.secret.example.yaml",
        {
            "jupyterhub.hub.config.GenericOAuthenticator.client_secret": "s3cret",
            "jupyterhub.hub.config.CryptKeeper.keys": ["k" * 64],
            "jupyterhub.hub.cookieSecret": "a" * 64,
            "jupyterhub.proxy.secretToken": "b" * 64,
        },
    )
    assert problems_for(values_dir) == []


def test_extra_config_that_sets_the_authenticator_class_is_refused(values_dir: Path) -> None:
    edit(values_dir / "stat159.yaml", {"jupyterhub.hub.extraConfig.auth": 'c.JupyterHub.authenticator_class = "dummy"'})
    found = the_problem(values_dir)
    assert found.key == "jupyterhub.hub.extraConfig.auth" and found.file.endswith("stat159.yaml")
    assert "refusal of log-ins as shared accounts" in found.message
    assert "hub.config.JupyterHub.authenticator_class" in found.fix
    hook = "c.Authenticator.post_auth_hook = lambda a, h, auth: auth"  # a course's own hook: fine now
    edit(values_dir / "stat159.yaml", {"jupyterhub.hub.extraConfig.auth": hook})
    assert problems_for(values_dir) == []


def test_an_authenticator_that_does_not_load_is_one_problem_not_a_traceback(values_dir: Path) -> None:
    edit(values_dir / "common.yaml", {"jupyterhub.hub.config.JupyterHub.authenticator_class": "genericoauth"})
    found = the_problem(values_dir)
    assert found.key == "jupyterhub.hub.config.JupyterHub.authenticator_class" and "subclass" in found.message
    assert found.file.endswith("common.yaml") and "\n" not in str(found)


@pytest.mark.parametrize("authenticator", ["ldapauthenticator", "native", "tmp", "firstuse"])
def test_every_authenticator_the_hub_image_ships_gets_the_log_in_refusal(values_dir: Path, authenticator: str) -> None:
    """A course may name any authenticator z2jh's hub image ships; the hub side subclasses it (the tooling has the
    same packages, so validate can resolve the name instead of calling it unloadable)."""
    edit(values_dir / "common.yaml", {"jupyterhub.hub.config.JupyterHub.authenticator_class": authenticator})
    assert problems_for(values_dir) == []
    from traitlets.config import Config

    from coursehub.chart.checks import hub_traits_config

    course = load_course("stat159", values_dir=values_dir)
    c: Config = hub_traits_config(course.values())
    hubpython.load().apply(c, course.values()["jupyterhub"]["custom"]["coursehub"])
    chosen = c.JupyterHub.authenticator_class
    assert (
        chosen.__name__.startswith("CoursehubRefusing") and hubpython.load().HEALTH_USER in chosen.coursehub_refuses[0]
    )


# --- groups from Canvas (lms) ---------------------------------------------------------------------

LMS = {"url": "https://canvas.example.edu", "courseId": 1234, "groupSet": "Project groups"}


def _canvas_course(values_dir: Path, **private: Any) -> None:
    """stat159 with its groups from Canvas: lms in the committed values, the token (and `private`) in its secrets."""
    edit(
        values_dir / "stat159.yaml",
        {
            "jupyterhub.custom.coursehub.sharedAccounts": None,
            "jupyterhub.custom.coursehub.access": "shares",
            "jupyterhub.custom.coursehub.lms": LMS,
        },
    )
    edit(
        values_dir / "stat159.secret.example.yaml",
        {"jupyterhub.custom.coursehub.members": None, "jupyterhub.custom.coursehub.lms.token": "t" * 40, **private},
    )


def test_a_course_may_take_its_groups_from_canvas_with_the_token_in_its_secrets(values_dir: Path) -> None:
    _canvas_course(values_dir)
    assert problems_for(values_dir) == []


def test_a_canvas_token_in_a_committed_file_is_refused_without_showing_it(values_dir: Path) -> None:
    _canvas_course(values_dir)
    edit(values_dir / "stat159.yaml", {"jupyterhub.custom.coursehub.lms.token": "s" * 40})
    p = the_problem(values_dir)
    assert p.key == "jupyterhub.custom.coursehub.lms.token" and p.file.endswith("stat159.yaml")
    assert "revoke it in Canvas" in p.fix and "s" * 40 not in str(p)


@pytest.mark.parametrize(
    ("file", "change", "words"),
    [
        (
            "stat159.secret.example.yaml",
            {"jupyterhub.custom.coursehub.members": {"g": ["ana"]}},
            "together with members",
        ),
        ("stat159.yaml", {"jupyterhub.custom.coursehub.access": "roles"}, "needs access: shares"),
    ],
)
def test_members_with_lms_and_lms_without_shares_are_one_line_each(
    values_dir: Path, file: str, change: dict[str, Any], words: str
) -> None:
    _canvas_course(values_dir)
    edit(values_dir / file, change)
    p = the_problem(values_dir)
    assert p.key == "jupyterhub.custom.coursehub.lms" and words in p.message and "ana" not in str(p)
