"""Secrets encrypted in git with sops and throw-away age keys: the real sops binary, no network.

Every test makes its own age key (Debian's `age-keygen`) and its own .sops.yaml
beside a copy of values/.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import checkout_with_chart, coursehub
from coursehub.chart.rendered import hub_values
from coursehub.courses import course_names, load_course
from coursehub.errors import CoursehubError
from coursehub.ops import sops
from coursehub.paths import ROOT

SECRET = "s3cr3t-from-sops"


def new_age_key(folder: Path) -> tuple[Path, str]:
    if shutil.which("age-keygen") is None:
        pytest.skip("needs age-keygen (Debian package `age`; .ci/run installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = next(line.split(": ")[1] for line in key.read_text().splitlines() if "public key" in line)
    return key, public


@pytest.fixture
def age_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A throw-away age key that sops (in this process and in subprocesses) decrypts with."""
    key, public = new_age_key(tmp_path / "age")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    return public


def sops_rule(values_dir: Path, public: str, course: str = "stat159") -> None:
    rule = {"creation_rules": [{"path_regex": rf"{course}\.secret\.enc\.yaml$", "age": public}]}
    (values_dir.parent / ".sops.yaml").write_text(yaml.safe_dump(rule))


def encrypted_secrets(values_dir: Path, public: str) -> Path:
    sops_rule(values_dir, public)
    data = yaml.safe_load((values_dir / "stat159.secret.example.yaml").read_text())
    data["jupyterhub"]["hub"]["config"]["GenericOAuthenticator"] = {"client_id": "4711", "client_secret": SECRET}
    path = values_dir / "stat159.secret.enc.yaml"
    sops.write_encrypted(path, data)
    return path


def test_an_encrypted_secrets_file_is_decrypted_in_memory(values_dir: Path, age_key: str) -> None:
    path = encrypted_secrets(values_dir, age_key)
    assert SECRET not in path.read_text() and "example-student" not in path.read_text()
    assert "stat159.secret.enc" not in course_names(values_dir)
    course = load_course("stat159", values_dir=values_dir)
    assert not course.uses_example_secrets and course.layers[-1].private
    assert course.values()["jupyterhub"]["hub"]["config"]["GenericOAuthenticator"]["client_secret"] == SECRET
    assert course.origin(("jupyterhub", "custom", "coursehub", "members")) == str(path)


def test_helm_gets_a_private_file_outside_the_repository(values_dir: Path, age_key: str) -> None:
    encrypted_secrets(values_dir, age_key)
    given = load_course("stat159", values_dir=values_dir).files[-1]
    assert ROOT not in given.parents and values_dir not in given.parents
    assert stat.S_IMODE(given.stat().st_mode) == 0o600 and stat.S_IMODE(given.parent.stat().st_mode) == 0o700
    assert yaml.safe_load(given.read_text())["jupyterhub"]["hub"]["config"]["GenericOAuthenticator"]["client_secret"]


def test_the_private_file_is_gone_when_the_process_ends(values_dir: Path, age_key: str, tmp_path: Path) -> None:
    encrypted_secrets(values_dir, age_key)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    script = (
        "import sys; from pathlib import Path; from coursehub.courses import load_course; "
        f"print(load_course('stat159', values_dir=Path({str(values_dir)!r})).files[-1])"
    )
    env = {**os.environ, "TMPDIR": str(private_tmp), "PYTHONPATH": str(ROOT / "scripts")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).parent.parent == private_tmp  # it was there...
    assert list(private_tmp.iterdir()) == []  # ...and is removed


def test_without_the_key_it_is_one_line(
    values_dir: Path, age_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encrypted_secrets(values_dir, age_key)
    other, _ = new_age_key(tmp_path / "other")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(other))
    result = coursehub("validate", "--course", "stat159", values=values_dir)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "stat159.secret.enc.yaml: cannot be decrypted" in lines[0], result.stderr
    assert "SOPS_AGE_KEY_FILE" in lines[0] and "Traceback" not in result.stderr


def test_a_plaintext_file_beside_the_encrypted_one_is_refused(values_dir: Path, age_key: str) -> None:
    encrypted_secrets(values_dir, age_key)
    (values_dir / "stat159.secret.yaml").write_text("jupyterhub: {}\n")
    with pytest.raises(CoursehubError) as caught:
        load_course("stat159", values_dir=values_dir)
    assert "exists beside" in str(caught.value) and "make edit-secrets COURSE=stat159" in str(caught.value)


def test_make_groups_writes_the_encrypted_file_when_the_course_has_a_rule(
    values_dir: Path, age_key: str, tmp_path: Path
) -> None:
    sops_rule(values_dir, age_key)
    roster = tmp_path / "groups.csv"
    roster.write_text("group,student\nTeam A,ana\nTeam A,bo\n")
    result = coursehub("groups", "--course", "stat159", "--roster", str(roster), values=values_dir)
    assert result.returncode == 0, result.stderr
    encrypted = values_dir / "stat159.secret.enc.yaml"
    assert not (values_dir / "stat159.secret.yaml").exists()
    stored = yaml.safe_load(encrypted.read_text())["jupyterhub"]["custom"]["coursehub"]["members"]
    assert all(m.startswith("ENC[AES256_GCM,") for m in stored["team-a"])  # membership is encrypted
    data = yaml.safe_load(sops.decrypt(encrypted))
    assert data["jupyterhub"]["custom"]["coursehub"]["members"] == {"team-a": ["ana", "bo"]}
    assert "hub" not in data["jupyterhub"]  # nothing from the example


EDITOR = """import sys
from pathlib import Path
path = Path(sys.argv[1])
path.write_text(path.read_text().replace({old!r}, {new!r}))
"""


def test_edit_secrets_encrypts_the_plaintext_file_and_round_trips_an_edit(
    values_dir: Path, age_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sops_rule(values_dir, age_key)
    plain = values_dir / "stat159.secret.yaml"
    plain.write_text((values_dir / "stat159.secret.example.yaml").read_text())
    editor = tmp_path / "editor.py"
    editor.write_text(EDITOR.format(old="stat159-example-client-secret", new=SECRET))
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    result = coursehub("edit-secrets", "--course", "stat159", values=values_dir)
    assert result.returncode == 0, result.stderr
    encrypted = values_dir / "stat159.secret.enc.yaml"
    assert not plain.exists() and "plaintext removed" in result.stdout and "saved, encrypted" in result.stdout
    assert SECRET not in encrypted.read_text()
    config = yaml.safe_load(sops.decrypt(encrypted))["jupyterhub"]["hub"]["config"]["GenericOAuthenticator"]
    assert config["client_secret"] == SECRET
    leftovers = [p.name for p in values_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_edit_secrets_without_a_rule_says_how_to_add_one(values_dir: Path, age_key: str) -> None:
    result = coursehub("edit-secrets", "--course", "stat159", values=values_dir)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert ".sops.yaml: creation_rules: has no rule for" in result.stderr
    assert not (values_dir / "stat159.secret.enc.yaml").exists()


def test_the_pinned_sops_is_the_official_build_and_never_calls_home() -> None:
    result = subprocess.run(sops.command("--version"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.split()[:2] == ["sops", sops.VERSION]
    assert "--disable-version-check" in sops.command()


def test_a_binary_with_another_checksum_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    sops.binary.cache_clear()
    monkeypatch.setattr(sops, "BINARY_SHA256", "0" * 64)
    try:
        with pytest.raises(CoursehubError) as caught:
            sops.binary()
        assert "expected 000" in str(caught.value)
    finally:
        sops.binary.cache_clear()


def test_a_dry_run_with_encrypted_secrets_prints_a_command_that_decrypts_again(
    values_dir: Path, age_key: str, upstream_chart: Path, tmp_path: Path
) -> None:
    """The decrypted values reach Secret/hub and nothing else, through the printed command itself."""
    encrypted = encrypted_secrets(values_dir, age_key)
    result = coursehub("deploy", "--course", "stat159", "--dry-run", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert f"--values <({shlex.quote(str(sops.binary()))} --disable-version-check decrypt {encrypted})" in line
    assert SECRET not in result.stdout

    checkout = checkout_with_chart(tmp_path / "checkout", upstream_chart)
    template = line.replace(" upgrade --install ", " template ", 1).replace(" --create-namespace", "")
    rendered = subprocess.run(["bash", "-c", template], cwd=checkout, capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    objs = [o for o in yaml.safe_load_all(rendered.stdout) if o]
    assert hub_values(objs)["hub"]["config"]["GenericOAuthenticator"]["client_secret"] == SECRET
    for obj in objs:
        if obj["kind"] != "Secret":
            assert SECRET not in yaml.safe_dump(obj), obj["metadata"]["name"]
