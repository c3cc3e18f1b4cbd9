"""`make deploy`: refuses the example secrets, and its dry run prints a command that works later, deploys only
the values it validated, and only to the course's kube context."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

import test_preflight
from coursehub.paths import CHART
from helpers.commands import coursehub
from helpers.files import checkout_with_chart, edit, stand_in_program

# A kube context and a TEST DOUBLE of the Kubernetes API the pre-flight asks (test_preflight.py): a dry run of a
# course with deploy.kubeContext runs the pre-flight, and only such a dry run prints a command that deploys.
KUBE_CONTEXT = test_preflight.CONTEXT
kube = test_preflight.kube


def real_secrets(values_dir: Path) -> Path:
    """A stand-in for the operator's real secrets file: the example's shape with other values."""
    data = yaml.safe_load((values_dir / "stat159.secret.example.yaml").read_text())
    data["jupyterhub"]["hub"]["config"]["GenericOAuthenticator"] = {"client_id": "4711", "client_secret": "s3cr3t"}
    path = values_dir / "stat159.secret.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("dry_run", [["--dry-run"], []], ids=["dry-run", "deploy"])
def test_deploy_refuses_the_example_secrets_in_one_line(
    values_dir: Path, upstream_chart: Path, dry_run: list[str]
) -> None:
    result = coursehub("deploy", "--course", "stat159", *dry_run, values=values_dir, upstream=upstream_chart)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "stat159.secret.example.yaml: is the example secrets file" in lines[0]
    assert "make groups COURSE=stat159" in lines[0] and "make edit-secrets COURSE=stat159" in lines[0]
    assert "would run" not in result.stdout and "helm" not in result.stdout


def helm_words(line: str) -> list[str]:
    """The helm command in a printed command (inside a bash subshell whose checks come first)."""
    words = shlex.split(line)
    start = next(i for i, w in enumerate(words) if w.endswith("/helm") and words[i + 1] == "upgrade")
    return words[start:-1] if words[-1] == ")" else words[start:]


def test_the_dry_run_prints_a_command_that_still_works_afterwards(
    values_dir: Path, upstream_chart: Path, tmp_path: Path, kube: dict[str, object]
) -> None:
    secret = real_secrets(values_dir)
    edit(values_dir / "stat159.yaml", {"deploy.kubeContext": KUBE_CONTEXT})
    result = coursehub("deploy", "--course", "stat159", "--dry-run", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[:2] == [f"plan: kube context: {KUBE_CONTEXT}", "plan: the hub: new (first install)"]
    lines = lines[lines.index("would run:") :]
    assert lines[1].startswith(f"# needs the jupyterhub dependency in {CHART}/charts/") and "make deps" in lines[1]
    assert lines[1].endswith("bash, from any folder")
    command = helm_words(lines[2])
    assert command[1:5] == ["upgrade", "--install", "stat159", str(CHART)]  # absolute: it works from any folder
    assert command[-6:] == ["--atomic", "--wait", "--timeout", "10m", "--kube-context", KUBE_CONTEXT]  # Helm 3
    assert "coursehub-chart-" not in result.stdout  # no deleted temporary folder
    values = [command[i + 1] for i, a in enumerate(command) if a == "--values"]
    assert values[-1] == str(secret) and all(Path(v).is_absolute() and Path(v).is_file() for v in values)
    assert "s3cr3t" not in result.stdout + result.stderr

    # The same command, run later from another folder as `helm template` (no cluster here), with chart/ from a
    # checkout whose chart/charts/ holds the dependency (what `make deps` gives; this work tree's chart/charts/ is
    # not for tests to fill): Helm accepts it and the course's values arrive.
    checkout = checkout_with_chart(tmp_path / "checkout", upstream_chart)
    template = ["template", *[a for a in command[3:] if a != "--create-namespace"]]
    template[template.index(str(CHART))] = str(checkout / "chart")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rendered = subprocess.run([command[0], *template], cwd=elsewhere, capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Secret" in rendered.stdout and "name: hub" in rendered.stdout


# A test double for Helm: records its arguments, prints nothing.
RECORDING_HELM = 'printf "%s\\n" "$@" > "$(dirname "$0")/argv"\n'
CHANGED = "error: values changed since the dry run: run make deploy DRY_RUN=1 again"


def run_printed(line: str, recorder: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The printed command run by bash, with its helm replaced by `recorder`."""
    helm = helm_words(line)[0]
    return subprocess.run(["bash", "-c", line.replace(helm, str(recorder))], cwd=cwd, capture_output=True, text=True)


def test_the_printed_command_deploys_only_the_values_it_was_checked_with(
    values_dir: Path, upstream_chart: Path, tmp_path: Path, kube: dict[str, object]
) -> None:
    """Run later, the command re-reads every values file: each must still be the one the dry run validated (its
    sha256), or the command says so in one line and starts nothing."""
    real_secrets(values_dir)
    edit(values_dir / "stat159.yaml", {"deploy.kubeContext": KUBE_CONTEXT})
    result = coursehub("deploy", "--course", "stat159", "--dry-run", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    recorder = stand_in_program(tmp_path / "recorder" / "helm", RECORDING_HELM)
    ran = run_printed(line, recorder, tmp_path)
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    assert (recorder.parent / "argv").read_text().splitlines()[-2:] == ["--kube-context", KUBE_CONTEXT]
    (recorder.parent / "argv").unlink()

    files = ["common.yaml", "stat159.yaml", "stat159.secret.yaml"]
    assert [v for v in helm_words(line) if v.startswith(str(values_dir))] == [str(values_dir / f) for f in files]
    for name in files:
        path = values_dir / name
        before = path.read_bytes()
        path.write_bytes(before + b"\n# one more line\n")
        ran = run_printed(line, recorder, tmp_path)
        assert (ran.returncode, ran.stderr) == (1, CHANGED + "\n"), name
        assert list(recorder.parent.iterdir()) == [recorder], name  # helm never ran
        path.unlink()
        ran = run_printed(line, recorder, tmp_path)
        assert (ran.returncode, ran.stderr) == (1, CHANGED + "\n"), name
        path.write_bytes(before)
    assert run_printed(line, recorder, tmp_path).returncode == 0


def test_without_a_kube_context_the_printed_command_only_refuses(
    values_dir: Path, upstream_chart: Path, tmp_path: Path
) -> None:
    """A dry run of a course without deploy.kubeContext: Helm would deploy to whatever cluster is current when
    the command runs, so the command refuses at once, in one line saying what to set, before any other check."""
    real_secrets(values_dir)
    result = coursehub("deploy", "--course", "stat159", "--dry-run", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "plan: pre-flight skipped: deploy.kubeContext is not set (a real deploy refuses that)"
    line = lines[-1]
    recorder = stand_in_program(tmp_path / "recorder" / "helm", RECORDING_HELM)
    (values_dir / "stat159.yaml").write_text((values_dir / "stat159.yaml").read_text() + "# changed\n")
    ran = run_printed(line, recorder, tmp_path)
    assert ran.returncode == 1 and list(recorder.parent.iterdir()) == [recorder]
    (said,) = ran.stderr.splitlines()
    assert said.startswith(f"error: {values_dir / 'stat159.yaml'}: deploy.kubeContext: is not set, so this command")
    assert "make deploy DRY_RUN=1 again" in said


def test_deploy_prints_every_validation_warning_before_the_plan(values_dir: Path, upstream_chart: Path) -> None:
    """A warning does not stop a deploy, but the operator deploying sees it, as `make validate` shows it."""
    real_secrets(values_dir)
    edit(values_dir / "stat159.yaml", {"jupyterhub.hub.config.JupyterHub.cookie_host_prefix_enabled": None})
    result = coursehub("deploy", "--course", "stat159", "--dry-run", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    (warning,) = [line for line in lines if line.startswith("warning: ")]
    assert "stat159.yaml: jupyterhub.hub.config.JupyterHub.cookie_host_prefix_enabled: is not true" in warning
    assert "cookie tossing" in warning and "Fix: set it to true" in warning
    assert lines.index(warning) < min(i for i, line in enumerate(lines) if line.startswith("plan: "))
