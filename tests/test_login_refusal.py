"""Nobody logs in as a shared account, whatever the course's own hub.extraConfig says, on a live hub.

z2jh runs a course's `hub.extraConfig` after coursehub's hub-side Python, so a course that sets its own
`Authenticator.post_auth_hook` (the usual way to keep auth_state, or to map e-mail log-ins to names) replaced
coursehub's refusal: a log-in as `collab-shared-1` was accepted. The refusal now lives in the authenticator class
(`refusing_authenticator` in hub/coursehub_hub/config.py) and checks the name after any hook.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from coursehub.groups import hubpython
from helpers.commands import coursehub
from helpers.files import edit
from helpers.hubs import HubClient, live_hub, stat159_values

ACCOUNTS = [{"group": "shared-1", "account": "collab-shared-1"}]
SECRET = {"jupyterhub": {"custom": {"coursehub": {"members": {"shared-1": ["s-ana", "s-bo"]}}}}}
# A course's own hook, as courses write them: it records who logged in (standing in for keeping auth_state) and
# maps campus e-mail log-ins to plain names.
COURSE_HOOK = """
def course_hook(authenticator, handler, authentication):
    with open({log!r}, "a") as f:
        f.write(authentication["name"] + "\\n")
    authentication["name"] = authentication["name"].removesuffix("@campus.edu")
    return authentication

c.Authenticator.post_auth_hook = course_hook
"""


@pytest.fixture(scope="module")
def hub_and_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubClient, Path]]:
    folder = tmp_path_factory.mktemp("values")
    values = stat159_values(folder, SECRET, sharedAccounts=ACCOUNTS)
    log = tmp_path_factory.mktemp("hook") / "logins.txt"
    course = yaml.safe_load((values / "stat159.yaml").read_text())
    course["jupyterhub"].setdefault("hub", {})["extraConfig"] = {"course-auth": COURSE_HOOK.format(log=str(log))}
    (values / "stat159.yaml").write_text(yaml.safe_dump(course))
    with live_hub(values, tmp_path_factory.mktemp("hub")) as local:
        yield HubClient(local), log


@pytest.mark.live
@pytest.mark.parametrize(
    "name",
    [
        "collab-shared-1",  # the declared account
        "collab-shared-9",  # any name under the accounts' prefix
        hubpython.load().HEALTH_USER,  # make health's own user
        "collab-shared-1@campus.edu",  # the course's own hook turns it into the account's name
        "Collab-Shared-1",  # JupyterHub's normalization lower-cases it
    ],
)
def test_a_course_hook_in_extra_config_does_not_reopen_a_log_in_as_an_account(
    hub_and_log: tuple[HubClient, Path], name: str
) -> None:
    api, log = hub_and_log
    assert api.login(name, api.plan.password).status_code == 403, name
    assert name.lower() in log.read_text().splitlines(), "the course's own hook ran (on the normalized name)"


@pytest.mark.live
def test_students_still_log_in_through_the_course_hook(hub_and_log: tuple[HubClient, Path]) -> None:
    api, log = hub_and_log
    assert api.login("s-ana", api.plan.password).status_code == 302
    assert api.login("s-bo@campus.edu", api.plan.password).status_code == 302
    assert {"s-ana", "s-bo@campus.edu"} <= set(log.read_text().splitlines())
    assert api.server("s-bo") == {}  # the hook's name is the one that logged in: s-bo exists, with no server


# --- what validate sees: z2jh's config run on the render, everything a course writes included -------------

CONFIG_D = "/usr/local/etc/jupyterhub/jupyterhub_config.d/"
REPLACED = {
    # a file of the course's own in jupyterhub_config.d, which runs after coursehub's
    "extraFiles": {
        "jupyterhub.hub.extraFiles.course-auth": {
            "mountPath": CONFIG_D + "zz_course_auth.py",
            "stringData": 'c.JupyterHub.authenticator_class = "generic-oauth"\n',
        }
    },
    # extraConfig that never spells the trait's name
    "extraConfig": {"jupyterhub.hub.extraConfig.auth": 'c.JupyterHub["authenticator_" "class"] = "generic-oauth"'},
}


@pytest.mark.parametrize("how", sorted(REPLACED))
def test_validate_refuses_a_course_whose_final_authenticator_is_not_the_refusing_one(
    values_dir: Path, upstream_chart: Path, how: str
) -> None:
    edit(values_dir / "stat159.yaml", REPLACED[how])
    result = coursehub("validate", "--course", "stat159", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 1
    assert "hub.extraConfig, hub.extraFiles: leave the hub with the authenticator 'generic-oauth'" in result.stderr
    assert "hub.config.JupyterHub.authenticator_class only" in result.stderr


def test_validate_refuses_a_configured_token_as_a_shared_account(values_dir: Path, upstream_chart: Path) -> None:
    token = "0123456789abcdef" * 4
    edit(values_dir / "stat159.yaml", {f"jupyterhub.hub.config.JupyterHub.api_tokens.{token}": "collab-shared-1"})
    result = coursehub("validate", "--course", "stat159", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 1
    assert "hub.config.JupyterHub.api_tokens: gives a token as collab-shared-1" in result.stderr
    assert token not in result.stderr + result.stdout


HIDDEN = {
    # a file of the course's own at the very path of the image's config file (z2jh mounts extraFiles by subPath)
    "extraFiles": {
        "jupyterhub.hub.extraFiles.site": {
            "mountPath": CONFIG_D + "coursehub.py",
            "stringData": "c.JupyterHub.log_level = 'INFO'\n",
        }
    },
    # a volume over the whole folder: the image's file is no longer there
    "extraVolumeMounts": {
        "jupyterhub.hub.extraVolumes": [{"name": "site", "emptyDir": {}}],
        "jupyterhub.hub.extraVolumeMounts": [{"name": "site", "mountPath": CONFIG_D.rstrip("/")}],
    },
}


@pytest.mark.parametrize("how", sorted(HIDDEN))
def test_validate_refuses_a_course_that_hides_the_hub_images_config_file(
    values_dir: Path, upstream_chart: Path, how: str
) -> None:
    """validate runs the hub's config as the pod would have it: the image's file first, then what the course
    mounts, so a course that replaces the file or the folder is a hub without the refusal (or anything else)."""
    edit(values_dir / "stat159.yaml", HIDDEN[how])
    result = coursehub("validate", "--course", "stat159", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 1
    assert "not coursehub's refusing subclass" in result.stderr
