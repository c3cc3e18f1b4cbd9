"""Secrets encrypted in git with sops and throw-away age keys: the real sops binary, no network.

Every test makes its own age key (Debian's `age-keygen`) and its own .sops.yaml
beside a copy of values/. Decrypted secrets never outlive the command: Helm reads
them from a pipe, a printed command decrypts again or starts nothing, no
plaintext file stays when a command is killed by any signal, and the names
editors give to copies of the private files are git-ignored.
"""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import test_preflight
from coursehub.chart.helm import Helm, staged_chart, value_args
from coursehub.chart.rendered import hub_values
from coursehub.courses import course_names, load_course
from coursehub.errors import CoursehubError
from coursehub.ops import sops
from coursehub.paths import CHART, ROOT
from helpers.chart import render_chart
from helpers.commands import COMMAND, coursehub
from helpers.files import checkout_with_chart, edit, stand_in_program

SECRET = "s3cr3t-from-sops"
# A kube context and a TEST DOUBLE of the Kubernetes API the pre-flight asks (test_preflight.py): a dry run of a
# course with deploy.kubeContext runs the pre-flight, and only such a dry run prints a command that deploys.
KUBE_CONTEXT = test_preflight.CONTEXT
kube = test_preflight.kube


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


def test_helm_reads_the_secrets_from_a_pipe_in_their_place_among_the_layers(
    values_dir: Path, age_key: str, helm: Helm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Helm 3 and 4 both read `--values -` from standard input where it stands: the render is the one a plaintext
    secrets file gives, an override after the layers still wins, and no file holds the plaintext meanwhile."""
    encrypted_secrets(values_dir, age_key)
    course = load_course("stat159", values_dir=values_dir)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # every temporary file of this process goes here
    pinned = {  # what a cluster would keep between renders, pinned: renders are then equal
        "jupyterhub.hub.config.ConfigurableHTTPProxy.auth_token": "0" * 64,
        "jupyterhub.hub.config.JupyterHub.cookie_secret": "1" * 64,
        "jupyterhub.hub.config.CryptKeeper.keys": ["2" * 64],
    }
    objs = render_chart(pinned, course=course, helm=helm)
    assert list(temp.iterdir()) == []  # nothing left, and nothing held the plaintext on the way (no file to remove)
    args = value_args(course)
    assert args[-2:] == ["--values", "-"]  # the private layer, last, as a file was
    assert hub_values(objs)["hub"]["config"]["GenericOAuthenticator"]["client_secret"] == SECRET  # type: ignore[index]
    overridden = render_chart({"jupyterhub.custom.coursehub.staff": ["zoe"]}, course=course, helm=helm)
    assert hub_values(overridden)["custom"]["coursehub"]["staff"] == ["zoe"]  # type: ignore[index]

    plain = tmp_path / "plain"
    shutil.copytree(values_dir, plain)
    (plain / "stat159.secret.enc.yaml").unlink()
    (plain / "stat159.secret.yaml").write_text(sops.decrypt(values_dir / "stat159.secret.enc.yaml"))
    assert render_chart(pinned, course=load_course("stat159", values_dir=plain), helm=helm) == objs


def test_helm_is_never_started_on_an_empty_standard_input(
    values_dir: Path, age_key: str, newest_helm: Helm, upstream_chart: Path
) -> None:
    """Helm would take an empty `--values -` as an empty layer and render without the secrets: a command that
    reads standard input but is given no plaintext is refused before Helm starts."""
    encrypted_secrets(values_dir, age_key)
    with staged_chart(upstream_chart) as staged:
        args = ["template", "stat159", str(staged), *value_args(load_course("stat159", values_dir=values_dir))]
        with pytest.raises(ValueError, match="standard input"):
            newest_helm.run(args, "stat159")


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


def encrypt_for(path: Path, plaintext: str, *recipients: str) -> None:
    """What a contributor can do with public keys only: the same plaintext encrypted for other age recipients
    (sops' --age, run from / so that no .sops.yaml applies)."""
    args = ["encrypt", "--age", ",".join(recipients), "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"]
    result = subprocess.run(sops.command(*args), input=plaintext, capture_output=True, text=True, cwd="/", check=True)
    path.write_text(result.stdout)


def test_recipients_other_than_the_rules_are_one_problem_that_names_them(
    values_dir: Path, age_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sops reads .sops.yaml only when a file is encrypted from scratch (`sops edit` keeps a file's recipients):
    an extra recipient in a committed file must be found by comparing it with what the rule gives, without
    decrypting (here with a key that could not)."""
    encrypted = encrypted_secrets(values_dir, age_key)
    plaintext = sops.decrypt(encrypted)
    _, outsider = new_age_key(tmp_path / "outsider")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(new_age_key(tmp_path / "nobody")[0]))  # decrypts nothing here
    assert sops.recipients_problem(encrypted) is None

    encrypt_for(encrypted, plaintext, age_key, outsider)
    problem = sops.recipients_problem(encrypted)
    assert problem is not None and (problem.file, problem.key) == (str(encrypted), "sops.age")
    assert problem.message == f"its recipients are not those .sops.yaml names for it: extra {outsider}"
    assert f"`sops updatekeys {encrypted}`" in problem.fix and "sops rotate" in problem.fix
    assert "\n" not in str(problem)

    encrypt_for(encrypted, plaintext, outsider)
    problem = sops.recipients_problem(encrypted)
    assert problem is not None and problem.message.endswith(f"extra {outsider}; missing {age_key}")

    sops_rule(values_dir, age_key, course="data100")  # no rule for stat159's file any more
    problem = sops.recipients_problem(encrypted)
    assert problem is not None and (problem.file, problem.key) == (
        str(values_dir.parent / ".sops.yaml"),
        "creation_rules",
    )
    assert "gives no recipients for" in problem.message and "no matching creation rules" in problem.message

    encrypted.write_text(plaintext)  # decrypted in place (`sops decrypt --in-place`) under the committed name
    problem = sops.recipients_problem(encrypted)
    assert problem is not None and (problem.key, problem.message) == (
        "sops",
        "has no sops metadata: it is not encrypted",
    )
    assert SECRET not in str(problem)


def test_validate_and_edit_secrets_refuse_an_encrypted_layer_with_an_outsiders_recipient(
    values_dir: Path, age_key: str, tmp_path: Path, upstream_chart: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same plaintext re-encrypted to one more key is `no changes` in a diff of values: validate names it."""
    encrypted = encrypted_secrets(values_dir, age_key)
    assert coursehub("validate", "--course", "stat159", values=values_dir, upstream=upstream_chart).returncode == 0
    _, outsider = new_age_key(tmp_path / "outsider")
    encrypt_for(encrypted, sops.decrypt(encrypted), age_key, outsider)
    result = coursehub("validate", "--course", "stat159", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 1
    assert (
        f"stat159.secret.enc.yaml: sops.age: its recipients are not those .sops.yaml names for it: extra {outsider}"
        in (result.stderr)
    )
    monkeypatch.setenv("EDITOR", "true")  # an edit that changes nothing: the recipients are still checked
    result = coursehub("edit-secrets", "--course", "stat159", values=values_dir)
    assert result.returncode == 1 and f"extra {outsider}" in result.stderr


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


def dry_run(values_dir: Path, upstream_chart: Path, context: str | None = KUBE_CONTEXT) -> str:
    """The command `make deploy DRY_RUN=1` prints (its last line), for the course with deploy.kubeContext
    `context` (the test needs the `kube` fixture then)."""
    if context:
        edit(values_dir / "stat159.yaml", {"deploy.kubeContext": context})
    result = coursehub("deploy", "--course", "stat159", "--dry-run", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def helm_in(line: str) -> str:
    """The helm binary a printed command runs: the word before `upgrade`."""
    words = shlex.split(line)
    return words[words.index("upgrade") - 1]


# A test double for Helm: records its arguments and its standard input (the values it was piped), prints nothing.
RECORDING_HELM = 'printf "%s\\n" "$@" > "$(dirname "$0")/argv"; cat > "$(dirname "$0")/stdin"\n'


def test_a_dry_run_with_encrypted_secrets_prints_a_command_that_decrypts_again(
    values_dir: Path, age_key: str, upstream_chart: Path, tmp_path: Path, kube: dict[str, object]
) -> None:
    """Run later from another folder, the printed command decrypts again and pipes the plaintext to Helm, which
    reads it in the secrets layer's place; with the real Helm the values reach Secret/hub and nothing else."""
    encrypted = encrypted_secrets(values_dir, age_key)
    line = dry_run(values_dir, upstream_chart)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    recorder = stand_in_program(tmp_path / "recorder" / "helm", RECORDING_HELM)
    ran = subprocess.run(["bash", "-c", line.replace(helm_in(line), str(recorder))], cwd=elsewhere, text=True)
    assert ran.returncode == 0
    argv = (recorder.parent / "argv").read_text().splitlines()
    values = [argv[i + 1] for i, a in enumerate(argv) if a == "--values"]
    committed = load_course("stat159", values_dir=values_dir).files[:-1]
    assert values == [*map(str, committed), "-"] and committed[:2] == [
        values_dir / "common.yaml",
        values_dir / "stat159.yaml",
    ]
    piped = yaml.safe_load((recorder.parent / "stdin").read_text())
    assert piped["jupyterhub"]["hub"]["config"]["GenericOAuthenticator"]["client_secret"] == SECRET
    assert SECRET not in "".join(argv) and argv[-2:] == ["--kube-context", KUBE_CONTEXT]
    assert line.startswith("( set +xv; set -euo pipefail; ")
    assert f"decrypt --input-type yaml --output-type yaml {encrypted}" in line

    # The real Helm, as `helm template` (no cluster here), with chart/ from a checkout whose chart/charts/ holds
    # the dependency (what `make deps` gives; this work tree's chart/charts/ is not for tests to fill).
    checkout = checkout_with_chart(tmp_path / "checkout", upstream_chart)
    template = line.replace(" upgrade --install ", " template ", 1).replace(" --create-namespace", "")
    template = template.replace(f" {CHART} ", f" {checkout / 'chart'} ", 1)
    rendered = subprocess.run(["bash", "-c", template], cwd=elsewhere, capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    objs = [o for o in yaml.safe_load_all(rendered.stdout) if o]
    assert hub_values(objs)["hub"]["config"]["GenericOAuthenticator"]["client_secret"] == SECRET  # type: ignore[index]
    for obj in objs:
        if obj["kind"] != "Secret":
            assert SECRET not in yaml.safe_dump(obj), obj["metadata"]["name"]


CHANGED = "error: values changed since the dry run: run make deploy DRY_RUN=1 again"
PRINTED_COMMAND_FAILURES = ["another key", "no encrypted file", "re-encrypted, same plaintext", "a student made admin"]


@pytest.mark.parametrize("failure", PRINTED_COMMAND_FAILURES)
def test_the_printed_command_never_starts_helm_without_the_secrets_it_was_checked_with(
    values_dir: Path, age_key: str, upstream_chart: Path, tmp_path: Path, failure: str, kube: dict[str, object]
) -> None:
    """Run later from another folder, with a key that cannot decrypt, or after the encrypted file has gone or
    changed (even to the same plaintext: its ciphertext is what was checked; or to a layer that makes a student an
    admin, which validation refuses): one line, a non-zero exit, and Helm (a recording stand-in) never started."""
    encrypted = encrypted_secrets(values_dir, age_key)
    line = dry_run(values_dir, upstream_chart)
    recorder = stand_in_program(tmp_path / "recorder" / "helm", RECORDING_HELM)
    env = dict(os.environ)
    if failure == "another key":
        env["SOPS_AGE_KEY_FILE"] = str(new_age_key(tmp_path / "other")[0])
    elif failure == "no encrypted file":
        encrypted.rename(tmp_path / encrypted.name)
    else:
        data = yaml.safe_load(sops.decrypt(encrypted))
        if failure == "a student made admin":
            data["jupyterhub"]["hub"]["config"]["Authenticator"] = {"admin_users": ["example-student-1"]}
        sops.write_encrypted(encrypted, data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ran = subprocess.run(
        ["bash", "-c", line.replace(helm_in(line), str(recorder))],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 1, ran.stderr
    assert list(recorder.parent.iterdir()) == [recorder]  # helm never ran: no argv, no stdin recorded
    (said,) = ran.stderr.strip().splitlines()
    if failure == "another key":
        assert said.startswith(f"error: {encrypted}: cannot be decrypted here") and "helm was not started" in said
        assert "SOPS_AGE_KEY_FILE" in said
    else:
        assert said == CHANGED


def test_the_printed_command_traces_no_secret_under_xtrace(
    values_dir: Path, age_key: str, upstream_chart: Path, tmp_path: Path, kube: dict[str, object]
) -> None:
    """Run by `bash -x` (or after `set -x` in a CI step or a wrapper), the command turns the trace off before it
    decrypts: the trace shows that and nothing after it, and Helm still gets the secrets."""
    encrypted_secrets(values_dir, age_key)
    line = dry_run(values_dir, upstream_chart)
    recorder = stand_in_program(tmp_path / "recorder" / "helm", RECORDING_HELM)
    for shell in (["bash", "-x", "-c"], ["bash", "-v", "-c"], ["bash", "-c", 'set -xv; eval "$0"']):
        ran = subprocess.run([*shell, line.replace(helm_in(line), str(recorder))], capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr
        assert SECRET not in ran.stderr and "example-student-1" not in ran.stderr, shell
        assert SECRET in (recorder.parent / "stdin").read_text()


def test_an_archive_command_decrypts_again_or_starts_nothing(
    values_dir: Path, age_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make archive` prints a helm-template-into-kubectl command: with encrypted secrets it decrypts them itself,
    and with a key that cannot, neither Helm nor kubectl starts."""
    encrypted_secrets(values_dir, age_key)
    edit(values_dir / "stat159.yaml", {"archive.volumeClaim": "archives"})
    result = coursehub("archive", "--course", "stat159", "--all", values=values_dir)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("( set +xv; set -euo pipefail; ") and " --values - " in line and SECRET not in result.stdout
    words = shlex.split(line)
    recorder = stand_in_program(tmp_path / "recorder" / "helm", RECORDING_HELM)
    kubectl = stand_in_program(tmp_path / "bin" / "kubectl", 'touch "$(dirname "$0")/ran"\n')  # a test double
    monkeypatch.setenv("PATH", f"{kubectl.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(new_age_key(tmp_path / "other")[0]))
    ran = subprocess.run(
        ["bash", "-c", line.replace(words[words.index("template") - 1], str(recorder))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ran.returncode != 0 and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert list(recorder.parent.iterdir()) == [recorder] and not (kubectl.parent / "ran").exists()


# A test double for a program that runs until it is killed: it reads its standard input (as Helm reads values
# from it), says it runs by writing its process id into `running` beside itself, and waits.
RUNS_UNTIL_KILLED = """cat > /dev/null
echo $$ > "$(dirname "$0")/running.tmp" && mv "$(dirname "$0")/running.tmp" "$(dirname "$0")/running"
exec sleep 600
"""


def as_from_a_terminal() -> None:
    """In the child: the signals it is sent here with their default action, as in a command typed in a terminal.
    A suite started in the background (`nohup make test &`) passes SIGHUP, SIGINT and SIGQUIT on ignored, and
    coursehub keeps an ignored signal ignored (sops._ended_by_signals): the process would not end."""
    for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def running(program: Path, process: subprocess.Popen[str]) -> int:
    """Waits until the stand-in `program` runs (or `process` ends first); its process id."""
    marker = program.parent / "running"
    deadline = time.monotonic() + 120
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"ended (exit code {process.returncode}) before {program.name} ran")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{program.name} did not start within 120 s")
        time.sleep(0.05)
    return int(marker.read_text())


def holding(folder: Path, text: str) -> list[Path]:
    """Every file under `folder` whose content holds `text`."""
    found = []
    for parent, _, names in os.walk(folder):
        for name in names:
            path = Path(parent) / name
            if not path.is_symlink() and text.encode() in path.read_bytes():
                found.append(path)
    return found


def stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def private_temp(tmp_path: Path) -> Path:
    """The TMPDIR of the command under test: empty, and searched afterwards."""
    temp = tmp_path / "temp"
    temp.mkdir()
    return temp


RENDER = """import sys
from pathlib import Path
from coursehub.chart.helm import Helm, Release
from coursehub.chart.render import render
from coursehub.courses import load_course
course = load_course("stat159", values_dir=Path(sys.argv[1]))
render(course, Helm(Path(sys.argv[2])), Path(sys.argv[3]), "1.33", Release.for_course(course), Path(sys.argv[4]))
"""


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT], ids=lambda s: signal.Signals(s).name)
def test_a_render_killed_while_helm_runs_leaves_no_plaintext(
    values_dir: Path, age_key: str, upstream_chart: Path, tmp_path: Path, signum: int
) -> None:
    """SIGHUP (an SSH session closed during a long Helm command) and SIGQUIT end Python without its exit
    handlers: whatever Helm was given must not be a file that stays behind."""
    encrypted_secrets(values_dir, age_key)
    temp = private_temp(tmp_path)
    helm = stand_in_program(tmp_path / "slow" / "helm", RUNS_UNTIL_KILLED)
    process = subprocess.Popen(
        [sys.executable, "-c", RENDER, str(values_dir), str(helm), str(tmp_path / "out"), str(upstream_chart)],
        env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(ROOT / "scripts")},
        preexec_fn=as_from_a_terminal,
        stdin=subprocess.DEVNULL,  # its output goes to pytest's (a pipe would stay open in a stand-in left running)
        text=True,
    )
    helm_pid = running(helm, process)
    try:
        process.send_signal(signum)
        process.wait(timeout=120)
        assert process.returncode != 0
        assert holding(temp, SECRET) == []
    finally:
        stop(helm_pid)


HUB_CONFIG = """import sys
from pathlib import Path
from coursehub.chart.helm import Helm, Release, staged_chart
from coursehub.chart.pods import hub_config
from coursehub.chart.rendered import objects
from coursehub.courses import load_course
course = load_course("stat159", values_dir=Path(sys.argv[1]))
with staged_chart(Path(sys.argv[3])) as staged:
    objs = objects(Helm(Path(sys.argv[2])).template(staged, course, Release.for_course(course)))
hub_config(objs)
"""
# hub.extraConfig that says it runs (in a file `running` beside the name given) and waits: z2jh's configuration
# runs it last, after the hub's files, Secret/hub's values among them, were laid out.
WAITS = """import os, pathlib, time
marker = pathlib.Path({marker!r})
marker.with_suffix(".tmp").write_text(str(os.getpid()))
marker.with_suffix(".tmp").rename(marker)
time.sleep(600)
"""


def nothing_left(
    process: subprocess.Popen[str],
    signum: int,
    temp: Path,
    monkeypatch: pytest.MonkeyPatch,
    next_command: Callable[[], object],
) -> None:
    """After `signum` reached a command holding plaintext in `temp`: it ended, and left no plaintext there; after a
    SIGKILL, which nothing can catch, the plaintext stays until `next_command` (another coursehub command) runs."""
    process.wait(timeout=120)
    assert process.returncode != 0
    if signum == signal.SIGKILL:
        assert holding(temp, SECRET)  # nothing can clean up at once: the next command does
        monkeypatch.setenv("TMPDIR", str(temp))
        next_command()
    assert holding(temp, SECRET) == []


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: signal.Signals(s).name
)
def test_the_hubs_files_laid_out_by_validate_leave_no_plaintext_when_killed(
    values_dir: Path,
    age_key: str,
    newest_helm: Helm,
    upstream_chart: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signum: int,
) -> None:
    """`make validate` (and so `make deploy`) runs z2jh's configuration on the rendered hub files, Secret/hub's
    decrypted values among them: a `kill`, a closed SSH session or a CI timeout while it runs leaves no plaintext,
    and after a SIGKILL the next command removes it."""
    encrypted_secrets(values_dir, age_key)
    hub = tmp_path / "hub" / "hub_config"
    hub.parent.mkdir()
    edit(
        values_dir / "stat159.yaml",
        {"jupyterhub.hub.extraConfig": {"zz-waits": WAITS.format(marker=str(hub.parent / "running"))}},
    )
    temp = private_temp(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-c", HUB_CONFIG, str(values_dir), str(newest_helm.binary), str(upstream_chart)],
        env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(ROOT / "scripts")},
        preexec_fn=as_from_a_terminal,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    running(hub, process)
    try:
        assert holding(temp, SECRET), "Secret/hub's values, laid out for the hub's configuration"
        process.send_signal(signum)
        sweep = lambda: coursehub("validate", "--course", "no-such-course", values=values_dir)  # noqa: E731
        nothing_left(process, signum, temp, monkeypatch, sweep)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_render_is_private_whatever_the_umask(
    values_dir: Path, age_key: str, upstream_chart: Path, tmp_path: Path
) -> None:
    """Secret/hub in a render holds the decrypted private layer: the folder is 0700 and every file 0600, also
    when an earlier render's folder was open to others."""
    encrypted_secrets(values_dir, age_key)
    out = tmp_path / "rendered"
    umask = os.umask(0o022)
    try:
        for _ in range(2):
            result = coursehub(
                "render", "--course", "stat159", "--out", str(out), values=values_dir, upstream=upstream_chart
            )
            assert result.returncode == 0, result.stderr
            assert oct(out.stat().st_mode & 0o777) == oct(0o700)
            files = list(out.iterdir())
            assert len(files) > 10 and {oct(f.stat().st_mode & 0o777) for f in files} == {oct(0o600)}
            out.chmod(0o755)
    finally:
        os.umask(umask)
    (secret,) = [f for f in files if f.name.endswith("-secret-hub.yaml")]
    assert SECRET in base64.b64decode(yaml.safe_load(secret.read_text())["data"]["values.yaml"]).decode()


# How each signal reaches `make edit-secrets`: a closed terminal (SIGHUP) and Ctrl-\ (SIGQUIT) reach the whole
# process group, coursehub, sops and the editor; a plain `kill` (SIGTERM) reaches coursehub alone; SIGKILL, which
# nothing can catch, to the whole group, is cleaned up by the next command.
EDIT_SIGNALS = [
    (signal.SIGHUP, "group"),
    (signal.SIGQUIT, "group"),
    (signal.SIGTERM, "coursehub"),
    (signal.SIGKILL, "group"),
]


@pytest.mark.parametrize(
    ("signum", "to"), EDIT_SIGNALS, ids=[f"{signal.Signals(s).name}-{to}" for s, to in EDIT_SIGNALS]
)
def test_sops_edit_killed_leaves_no_plaintext(
    values_dir: Path,
    age_key: str,
    upstream_chart: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signum: int,
    to: str,
) -> None:
    encrypted_secrets(values_dir, age_key)
    temp = private_temp(tmp_path)
    editor = stand_in_program(tmp_path / "editor" / "editor", RUNS_UNTIL_KILLED)
    env = {**os.environ, "TMPDIR": str(temp), "EDITOR": str(editor), "COURSEHUB_VALUES": str(values_dir)}
    env.pop("SOPS_EDITOR", None)
    process = subprocess.Popen(
        [COMMAND, "edit-secrets", "--course", "stat159"],
        env=env,
        cwd=ROOT,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
        preexec_fn=as_from_a_terminal,
        stdin=subprocess.DEVNULL,  # its output goes to pytest's (a pipe would stay open in a stand-in left running)
        text=True,
    )
    editor_pid = running(editor, process)
    try:
        assert holding(temp, SECRET), "sops' decrypted copy, which the editor has open, is in TMPDIR"
        if to == "group":
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)

        def render() -> None:
            out = str(tmp_path / "rendered")
            result = coursehub(
                "render", "--course", "stat159", "--out", out, values=values_dir, upstream=upstream_chart
            )
            assert result.returncode == 0, result.stderr

        nothing_left(process, signum, temp, monkeypatch, render)
    finally:
        stop(editor_pid)


# The names editors and tools give to copies of a private values file, beside it.
LEFTOVERS = [
    "stat159.secret.yaml~",  # Emacs, vim with backup on, many others
    "stat159.secret.yaml.~1~",  # Emacs' numbered backups
    ".stat159.secret.yaml.swp",  # vim's swap files
    ".stat159.secret.yaml.swo",
    "#stat159.secret.yaml#",  # Emacs' auto-save
    ".#stat159.secret.yaml",  # Emacs' lock
    "stat159.secret.yaml.orig",  # merge and patch leftovers
    "stat159.secret.yaml.rej",
    "stat159.secret.yaml.bak",
    "stat159.secret.yaml.save",  # nano, on SIGHUP
    "stat159.secret.yaml.tmp",
    "stat159.secret.yaml.kate-swp",  # Kate's swap file
    "stat159.secret.yaml___jb_tmp___",  # JetBrains' safe write
    # decrypted copies a person or a tool names after the encrypted file (`sops -d x > ...`)
    "stat159.secret.dec.yaml",
    "stat159.secret.decrypted.yaml",
    "stat159.secret.plain.yaml",
    "stat159.secret.enc.yaml.dec",
    "stat159.secret.enc.yaml~",
    "stat159.secret.yml",
    "stat159.secret.old.yaml",
    "stat159.secret (copy).yaml",
    ".#stat159.secret.enc.yaml",
]
KEPT = [
    "stat159.secret.example.yaml",
    "stat159.secret.enc.yaml",
    "stat159.yaml",
    "stat159.groups.yaml",
    "common.yaml",
]


def git_ignores(name: str) -> bool:
    result = subprocess.run(["git", "check-ignore", "--no-index", "--quiet", f"values/{name}"], cwd=ROOT)
    assert result.returncode in (0, 1), f"git check-ignore failed on {name}"
    return result.returncode == 0


def test_copies_of_private_files_are_git_ignored_and_committed_files_are_not() -> None:
    assert [name for name in LEFTOVERS if not git_ignores(name)] == []
    assert [name for name in KEPT if git_ignores(name)] == []
    assert git_ignores("stat159.secret.yaml")
