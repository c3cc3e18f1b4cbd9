"""`make private-diff`: what changed in a course's private layer since a commit, by key path, never a value.

Every test commits a sops-encrypted layer (the real sops binary, a throw-away age key) in a git repository of
its own, changes it, and reads what the command prints.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from coursehub.ops import sops
from coursehub.paths import ROOT, VALUES
from helpers.commands import coursehub, installed_coursehub

OLD_SECRET = "old-client-secret-4d1f"
NEW_SECRET = "new-client-secret-9a7c"
STUDENTS = ["ana-4711", "bo-4712", "cy-4713"]
NEW_STUDENTS = ["dee-4714", "eli-4715", "fay-4716"]
EXTRA_CONFIG = "c.Authenticator.admin_users.add('mallory')"
# JupyterHub's token maps are keyed by the token: JupyterHub.service_tokens is {token: service name}.
TOKEN = "9f2c1d7e5b3a48c6a0e4f1b2c3d4e5f6"
# Every value either version holds, and every secret key: none may ever be printed.
PRIVATE = [OLD_SECRET, NEW_SECRET, *STUDENTS, *NEW_STUDENTS, "mallory", "ta-lee", EXTRA_CONFIG, TOKEN]


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=coursehub test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    result = subprocess.run(["git", "-C", str(repo), *identity, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def layer(secret: str = OLD_SECRET) -> dict[str, Any]:
    return {
        "jupyterhub": {
            "hub": {"config": {"GenericOAuthenticator": {"client_id": "stat159", "client_secret": secret}}},
            "custom": {
                "coursehub": {
                    "members": {"shared-1": STUDENTS[:2], "shared-2": STUDENTS[2:], "shared-3": [], "shared-4": []},
                    "staff": ["ta-lee"],
                }
            },
        }
    }


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A course repository: values/ (no private layer), a .sops.yaml rule for stat159 and a throw-away age key
    (outside the repository) that sops decrypts with; the first commit holds the encrypted layer."""
    if shutil.which("age-keygen") is None:
        pytest.skip("needs age-keygen (Debian package `age`; .ci/run installs it)")
    key = tmp_path / "age" / "key.txt"
    key.parent.mkdir()
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = next(line.split(": ")[1] for line in key.read_text().splitlines() if "public key" in line)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    repo = tmp_path / "repo"
    shutil.copytree(VALUES, repo / "values", ignore=shutil.ignore_patterns("*.secret.yaml", "*.enc.yaml"))
    rule = {"creation_rules": [{"path_regex": r"stat159\.secret\.enc\.yaml$", "age": public}]}
    (repo / ".sops.yaml").write_text(yaml.safe_dump(rule))
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "the course without a private layer")
    sops.write_encrypted(repo / "values" / "stat159.secret.enc.yaml", layer())
    git(repo, "add", "values/stat159.secret.enc.yaml")
    git(repo, "commit", "--quiet", "-m", "the course's private layer, encrypted")
    return repo


def private_diff(repo: Path, base: str = "HEAD") -> subprocess.CompletedProcess[str]:
    return coursehub("private-diff", "--course", "stat159", f"--base={base}", values=repo / "values")


def reveals(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [value for value in PRIVATE if value in result.stdout + result.stderr]


def an_attack(repo: Path) -> None:
    """A new client secret, an admin, hub Python and a student added to a group, and a new group."""
    data = layer(NEW_SECRET)
    data["jupyterhub"]["hub"]["config"]["Authenticator"] = {"admin_users": ["mallory"]}
    data["jupyterhub"]["hub"]["extraConfig"] = {"zz-admins": EXTRA_CONFIG}
    members = data["jupyterhub"]["custom"]["coursehub"]["members"]
    members["shared-1"] = [*members["shared-1"], NEW_STUDENTS[0]]
    members["shared-5"] = NEW_STUDENTS[1:]
    sops.write_encrypted(repo / "values" / "stat159.secret.enc.yaml", data)


def test_each_changed_key_path_is_listed_and_no_value_or_student_is(repo: Path) -> None:
    an_attack(repo)
    result = private_diff(repo)
    assert result.returncode == 0, result.stderr
    heading, *lines = result.stdout.splitlines()
    assert heading == f"stat159: private layer at HEAD ({git(repo, 'rev-parse', 'HEAD')[:12]}) -> work tree"
    assert lines == [
        "changed jupyterhub.custom.coursehub.members.shared-1 (list: 2 -> 3 items)",
        "added jupyterhub.custom.coursehub.members.shared-5 (list: 2 items)",
        "added jupyterhub.hub.config.Authenticator.admin_users (list: 1 item)",
        "changed jupyterhub.hub.config.GenericOAuthenticator.client_secret",
        "added jupyterhub.hub.extraConfig.zz-admins (text)",
    ]
    assert reveals(result) == [] and result.stderr == ""


def test_a_token_map_in_the_hubs_settings_is_named_by_its_trait_never_by_its_keys(repo: Path) -> None:
    """JupyterHub.service_tokens and api_tokens are maps keyed by the secret: private-diff names the trait and
    counts its keys, as it does for a group's members."""
    data = layer()
    data["jupyterhub"]["hub"]["config"]["JupyterHub"] = {"service_tokens": {TOKEN: "grader"}}
    sops.write_encrypted(repo / "values" / "stat159.secret.enc.yaml", data)
    result = private_diff(repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["added jupyterhub.hub.config.JupyterHub.service_tokens (map: 1 key)"]
    assert reveals(result) == []


def test_the_work_tree_is_compared_with_any_commit_and_an_unchanged_layer_has_no_changes(repo: Path) -> None:
    sops.write_encrypted(repo / "values" / "stat159.secret.enc.yaml", layer())  # new ciphertext, same plaintext
    assert git(repo, "status", "--porcelain") == "M values/stat159.secret.enc.yaml"
    assert private_diff(repo).stdout.splitlines()[1:] == ["no changes"]
    an_attack(repo)
    git(repo, "commit", "--quiet", "-am", "the attack, committed")
    assert private_diff(repo).stdout.splitlines()[1:] == ["no changes"]  # HEAD holds it
    assert len(private_diff(repo, "HEAD~1").stdout.splitlines()) == 6  # the commit before does not


def test_a_new_layer_lists_every_key_and_a_removed_one_too(repo: Path) -> None:
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    result = private_diff(repo, first)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "new file values/stat159.secret.enc.yaml",
        "added jupyterhub.custom.coursehub.members.shared-1 (list: 2 items)",
        "added jupyterhub.custom.coursehub.members.shared-2 (list: 1 item)",
        "added jupyterhub.custom.coursehub.members.shared-3 (list: 0 items)",
        "added jupyterhub.custom.coursehub.members.shared-4 (list: 0 items)",
        "added jupyterhub.custom.coursehub.staff (list: 1 item)",
        "added jupyterhub.hub.config.GenericOAuthenticator.client_id (text)",
        "added jupyterhub.hub.config.GenericOAuthenticator.client_secret (text)",
    ]
    git(repo, "rm", "--quiet", "values/stat159.secret.enc.yaml")
    removed = private_diff(repo).stdout.splitlines()[1:]
    assert removed[0] == "removed file values/stat159.secret.enc.yaml"
    assert removed[1:] == [line.replace("added", "removed", 1) for line in result.stdout.splitlines()[2:]]
    assert reveals(result) == []


def test_new_recipients_with_the_same_plaintext_are_a_line(repo: Path, tmp_path: Path) -> None:
    """A commit that re-encrypts the same plaintext for an outsider's age key too (it needs public keys only) is
    no key change, but it says who can now read the layer; the public keys are not secrets."""
    encrypted = repo / "values" / "stat159.secret.enc.yaml"
    operators = yaml.safe_load((repo / ".sops.yaml").read_text())["creation_rules"][0]["age"]
    outsider_key = tmp_path / "outsider.txt"
    subprocess.run(["age-keygen", "-o", str(outsider_key)], check=True, capture_output=True)
    outsider = next(line.split(": ")[1] for line in outsider_key.read_text().splitlines() if "public key" in line)
    again = subprocess.run(  # from / : sops' --age, not the repository's .sops.yaml
        sops.command(
            "encrypt", "--age", f"{operators},{outsider}", "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"
        ),
        input=sops.decrypt(encrypted),
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    encrypted.write_text(again.stdout)
    git(repo, "commit", "--quiet", "-am", "the same secrets, one more recipient")
    result = private_diff(repo, "HEAD~1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [f"recipients changed: added {outsider}", "no key changes"]
    assert private_diff(repo).stdout.splitlines()[1:] == ["no changes"]  # HEAD holds it
    sops.write_encrypted(encrypted, layer())  # .sops.yaml's rule again: the operators' key alone
    assert private_diff(repo).stdout.splitlines()[1:] == [f"recipients changed: removed {outsider}", "no key changes"]


def test_a_plaintext_layer_is_compared_as_well(repo: Path) -> None:
    """An operator's git-ignored plaintext file in the work tree, against the encrypted one committed."""
    git(repo, "rm", "--quiet", "values/stat159.secret.enc.yaml")
    data = layer()
    data["jupyterhub"]["custom"]["coursehub"]["staff"] = ["ta-lee", "mallory"]
    (repo / "values" / "stat159.secret.yaml").write_text(yaml.safe_dump(data))
    result = private_diff(repo)
    assert result.stdout.splitlines()[1:] == [
        "moved file values/stat159.secret.enc.yaml -> values/stat159.secret.yaml",
        "changed jupyterhub.custom.coursehub.staff (list: 1 -> 2 items)",
    ]
    assert reveals(result) == []


def test_no_plaintext_is_written_anywhere(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command in a process of its own, with its temporary folder here: afterwards no file in the repository
    or that folder holds a secret, and no folder's entries changed (a folder's mtime changes when a file is
    created in it, even one removed again)."""
    an_attack(repo)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    folders = [temp, *(p for p in repo.rglob("*") if p.is_dir()), repo]
    before = {p: p.stat().st_mtime_ns for p in folders}
    result = installed_coursehub("private-diff", "--course", "stat159", "--base", "HEAD", values=repo / "values")
    assert result.returncode == 0, result.stderr
    assert "changed jupyterhub.hub.config.GenericOAuthenticator.client_secret" in result.stdout  # it decrypted both
    assert {p: p.stat().st_mtime_ns for p in folders} == before
    assert sorted(p for p in repo.rglob("*") if p.is_dir()) == sorted(folders[1:-1])
    for path in [*repo.rglob("*"), *temp.rglob("*")]:
        if path.is_file():
            content = path.read_bytes()
            assert [v for v in PRIVATE if v.encode() in content] == [], path


def test_without_the_key_a_bad_base_or_no_repository_it_is_one_line(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    an_attack(repo)
    for base, says in [
        ("no-such-branch", "make private-diff: BASE: 'no-such-branch' is not a commit in"),
        ("0" * 40, "is not a commit"),  # github.event.before of a branch's first push
        ("--output=/tmp/x", "is not a commit"),  # never an option to git
    ]:
        result = private_diff(repo, base)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and says in result.stderr and "fetch-depth: 0" in result.stderr
    other = tmp_path / "other.txt"
    subprocess.run(["age-keygen", "-o", str(other)], check=True, capture_output=True)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(other))
    result = private_diff(repo)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "stat159.secret.enc.yaml" in result.stderr and "cannot be decrypted" in result.stderr
    assert "SOPS_AGE_KEY_FILE" in result.stderr and "Traceback" not in result.stderr
    shutil.rmtree(repo / ".git")
    result = private_diff(repo)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "is not in a git repository" in result.stderr
    assert reveals(result) == []


def test_an_unknown_course_is_one_line(repo: Path) -> None:
    result = coursehub("private-diff", "--course", "stat195", "--base", "HEAD", values=repo / "values")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "there is no course 'stat195'" in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # a student's name used as a key is redacted wherever it is
        (
            {"hub": {"loadRoles": {"r": {"users": ["ana-4711"]}}}},
            {"hub": {"loadRoles": {"r": {"users": ["ana-4711"]}, "ana-4711": {"users": []}}}},
            ["added hub.loadRoles.<redacted>.users (list: 0 items)"],
        ),
        # a group's entry is never walked, whatever it holds
        (
            {"jupyterhub": {"custom": {"coursehub": {"members": {"g": {"ana-4711": 1}}}}}},
            {"jupyterhub": {"custom": {"coursehub": {"members": {"g": {"ana-4711": 1, "bo-4712": 1}}}}}},
            ["changed jupyterhub.custom.coursehub.members.g (map: 1 -> 2 keys)"],
        ),
        # a hub trait's map is its keys' count, never its keys (JupyterHub's token maps are keyed by the token)
        (
            {"jupyterhub": {"hub": {"config": {"JupyterHub": {"api_tokens": {"tok-1": "ana-4711"}}}}}},
            {"jupyterhub": {"hub": {"config": {"JupyterHub": {"api_tokens": {"tok-2": "ana-4711"}}}}}},
            ["changed jupyterhub.hub.config.JupyterHub.api_tokens (map: 1 -> 1 key)"],
        ),
        (
            {"jupyterhub": {"hub": {"config": {}}}},
            {"jupyterhub": {"hub": {"config": {"JupyterHub": {"service_tokens": {"tok-1": "grader"}}}}}},
            ["added jupyterhub.hub.config.JupyterHub.service_tokens (map: 1 key)"],
        ),
        # as is any map under a key named like a credential, anywhere
        (
            {"jupyterhub": {"hub": {"services": {"grader": {"apiTokens": {"tok-1": 1}}}}}},
            {"jupyterhub": {"hub": {"services": {"grader": {"apiTokens": {"tok-1": 1, "tok-2": 2}}}}}},
            ["changed jupyterhub.hub.services.grader.apiTokens (map: 1 -> 2 keys)"],
        ),
        # a key cannot pass for another line or hide a dot
        ({}, {"a\nadded x": 1, "b.c": None}, ['added "a\\nadded x" (number)', 'added "b.c" (null)']),
        # YAML's true is not 1; key order is no change
        ({"a": 1, "b": 2}, {"b": 2, "a": True}, ["changed a (number -> true/false)"]),
        ({"a": {"b": 1}}, {"a": ["x"]}, ["changed a (map: 1 key -> list: 1 item)"]),
    ],
)
def test_key_changes_never_show_a_value(old: dict[str, Any], new: dict[str, Any], expected: list[str]) -> None:
    from coursehub.ops.keychanges import changes  # here, not above: without it, every other test still runs

    assert changes(old, new) == expected


def test_make_private_diff_runs_the_command() -> None:
    """`make -n`: the command line make would run, nothing run."""
    dry = subprocess.run(
        ["make", "-n", "private-diff", "COURSE=stat159", "BASE=abc123"], cwd=ROOT, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    assert ".venv/bin/coursehub private-diff --course stat159 --base=abc123" in dry.stdout.splitlines()
