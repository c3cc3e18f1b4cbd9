"""How the local hub (make demo, live tests) reads a course's values: what it applies, lists, or refuses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from coursehub.courses import load_course
from coursehub.errors import CoursehubError
from coursehub.hub.local import classify, free_port, image_search_path, leftovers, map_path
from helpers.files import edit, stand_in_program


def test_every_key_is_applied_listed_as_kubernetes_only_or_replaced() -> None:
    report = classify(load_course("stat159"))
    assert {"custom", "hub.config", "singleuser.cmd", "singleuser.extraFiles"} <= set(report.applied)
    assert {"singleuser.image", "singleuser.storage", "hub.image", "cull", "archive"} <= set(report.kubernetes_only)
    assert set(report.replaced) == {
        "hub.config.JupyterHub.authenticator_class",
        "hub.config.GenericOAuthenticator",
        "hub.config.KubeSpawner",  # the pods' security context: the local hub's spawner is not KubeSpawner
    }


def test_hub_ports_are_free_distinct_and_outside_the_range_outgoing_connections_use() -> None:
    # a port in the ephemeral range can be taken by any process's outgoing connection before the hub binds it
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(20000 <= port < low for port in ports)


def test_a_key_the_local_hub_does_not_understand_is_an_error(values_dir: Path) -> None:
    edit(
        values_dir / "stat159.yaml",
        {"jupyterhub.singleuser.lifecycleHooks": {"postStart": {"exec": {"command": ["x"]}}}},
    )
    with pytest.raises(CoursehubError) as caught:
        classify(load_course("stat159", values_dir=values_dir))
    (problem,) = caught.value.problems
    assert problem.file.endswith("stat159.yaml") and problem.key.startswith("jupyterhub.singleuser.lifecycleHooks")


def test_the_pods_tmp_and_home_are_mapped_per_server() -> None:
    tmp, home = Path("/w/servers/ana/tmp"), Path("/w/home/ana")
    assert (
        map_path("--SQLiteYStore.db_path=/tmp/ystore.db", tmp, home)
        == "--SQLiteYStore.db_path=/w/servers/ana/tmp/ystore.db"
    )
    assert map_path("--X.path=/home/jovyan/.db", tmp, home) == "--X.path=/w/home/ana/.db"
    assert map_path("--X.path=/tmpfile", tmp, home) == "--X.path=/tmpfile"
    assert map_path("--LabApp.collaborative=true", tmp, home) == "--LabApp.collaborative=true"


def test_servers_search_a_path_without_nodejs_as_their_image_has_none(tmp_path: Path) -> None:
    """The programs here are stand-ins (helpers.files.stand_in_program) in folders laid out as this machine's."""
    system, tools = tmp_path / "usr-bin", tmp_path / "tools"
    for folder, names in ((system, ("sh", "node", "npm", "git")), (tools, ("helm",))):
        for name in names:
            stand_in_program(folder / name)
    (tmp_path / "bin").symlink_to(system)  # merged /usr: /bin is /usr/bin
    entries = [str(tools), "", ".", "relative/bin", str(system), str(tmp_path / "missing"), str(tmp_path / "bin")]
    found = image_search_path(os.pathsep.join(entries), tmp_path / "hub")
    folders = found.split(os.pathsep)
    assert folders[0] == str(tools) and len(folders) == 2  # no relative entry, nothing missing, /bin once
    assert shutil.which("node", path=found) is None and shutil.which("npm", path=found) is None
    assert Path(shutil.which("git", path=found) or "").resolve() == system / "git"
    links = os.stat(folders[1]).st_ino
    assert image_search_path(os.pathsep.join(entries), tmp_path / "hub") == found  # the next hub start...
    assert os.stat(folders[1]).st_ino == links  # ...uses the same links, not new ones


@pytest.mark.live
def test_a_process_ended_by_sigterm_stops_the_hub_it_started(tmp_path: Path) -> None:
    """`timeout`, `kill` or a CI runner giving up send SIGTERM: the hub and its proxy go with the process."""
    work = tmp_path / "hub"
    code = (
        "import secrets, time\n"
        "from coursehub.hub.local import LocalHub, Plan\n"
        f"plan = Plan(values={{}}, workdir={str(work)!r}, singleuser_bin='/nonexistent', password='x',\n"
        "            instructor='instructor', admin_token=secrets.token_hex(16))\n"
        "with LocalHub(plan) as hub:\n"
        "    print(hub.plan.port, hub.proxy.pid, flush=True)\n"
        "    time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        port, proxy = (int(x) for x in owner.stdout.readline().split())  # type: ignore[union-attr]
        assert leftovers(work)  # the hub runs (its command line names its folder)...
        owner.send_signal(signal.SIGTERM)
        assert owner.wait(timeout=60) == 128 + signal.SIGTERM
        assert leftovers(work) == []  # ...and is gone, with the proxy
        assert not Path(f"/proc/{proxy}").exists() or "Z" in Path(f"/proc/{proxy}/stat").read_text().split(")")[1][:3]
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/hub/api/", timeout=2)
    finally:
        owner.kill()
        for pid in leftovers(work):  # only when the check above failed
            os.kill(pid, signal.SIGKILL)


def test_another_hub_python_that_cannot_run_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from coursehub.errors import CoursehubError
    from coursehub.hub.local import HUB_PYTHON_ENV, hub_environment_python

    monkeypatch.setenv(HUB_PYTHON_ENV, str(tmp_path / "no-such-python"))
    with pytest.raises(CoursehubError) as caught:
        hub_environment_python()
    assert f"${HUB_PYTHON_ENV}: is {tmp_path / 'no-such-python'}, which is no Python" in str(caught.value)
    assert "\n" not in str(caught.value)
