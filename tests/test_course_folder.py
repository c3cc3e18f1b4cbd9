"""The course folder in the local demo (issue 11 item 2): one folder, seen in every server's home.

The permissions (read-only for students and shared accounts, writable for staff) are
the pods' and are asserted on KubeSpawner's manifests in tests/test_chart/pods.py; here every
local server runs as this machine's one user, so only the sharing itself can be shown.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from helpers.hubs import HubClient, live_hub, stat159_values

pytestmark = pytest.mark.live


def test_a_file_in_the_course_folder_is_seen_by_a_student_and_a_shared_account(tmp_path: Path) -> None:
    (tmp_path / "values").mkdir()
    secret = {"jupyterhub": {"custom": {"coursehub": {"members": {"shared-1": ["s-ana"]}}}}}
    values = stat159_values(
        tmp_path / "values",
        secret,
        sharedAccounts=[{"group": "shared-1", "account": "collab-shared-1"}],
        courseFolder={"subPath": "_course/stat159", "mountPath": "/home/jovyan/course"},
    )
    with live_hub(values, tmp_path / "hub") as hub:
        api = HubClient(hub)
        folder = Path(hub.plan.workdir) / "home" / "_course" / "stat159"
        for user in ("s-ana", "collab-shared-1"):
            assert api.start("s-ana", user) in {201, 202}
            api.wait(user, ready=True)
        (folder / "handout.md").write_text("# Week 1\n")  # staff put a file in the course folder
        for user in ("s-ana", "collab-shared-1"):
            r = requests.get(f"{api.url}/user/{user}/api/contents/course/handout.md", headers=api.as_("s-ana"))
            assert r.status_code == 200, (user, r.text)
            assert r.json()["content"] == "# Week 1\n"
        # Each home is still its own: the link is in the shared account's home, the file only in the folder.
        home = Path(hub.plan.workdir) / "home" / "collab-shared-1"
        assert (home / "course").resolve() == folder.resolve()
        assert [p for p in home.rglob("handout.md") if not p.is_relative_to(home / "course")] == []
