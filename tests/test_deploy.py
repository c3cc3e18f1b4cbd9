"""`make deploy`: refuses the example secrets, and its dry run prints a command that works later."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import checkout_with_chart, coursehub, edit
from coursehub.paths import CHART


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


def test_the_dry_run_prints_a_command_that_still_works_afterwards(
    values_dir: Path, upstream_chart: Path, tmp_path: Path
) -> None:
    secret = real_secrets(values_dir)
    result = coursehub("deploy", "--course", "stat159", "--dry-run", values=values_dir, upstream=upstream_chart)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "plan: pre-flight skipped: deploy.kubeContext is not set (a real deploy refuses that)"
    lines = lines[lines.index("would run:") :]
    assert lines[1].startswith(f"# needs the jupyterhub dependency in {CHART}/charts/") and "make deps" in lines[1]
    assert lines[1].endswith("bash, from any folder")
    command = shlex.split(lines[2])
    assert command[1:5] == ["upgrade", "--install", "stat159", str(CHART)]  # absolute: it works from any folder
    assert command[-4:] == ["--atomic", "--wait", "--timeout", "10m"]  # Helm 3 (the default)
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
