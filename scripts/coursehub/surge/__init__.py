"""`make bench-surge`: the first minutes of a lab section, measured against coursehub's hub and a plain JupyterHub.

- ``lightserver``: a light single-user server on JupyterHub's own ``HubOAuthenticated`` (access checked as a real
  server checks it), for surges of many groups;
- ``students``: the locust users (a student's browser: log-in, the group's server, JupyterLab's rhythm);
- ``hubs``: the roster, coursehub's hub and the plain baseline (the same spawner, proxy and servers);
- ``run``: one surge against one hub, locust headless in its own process, bounded in users, time and requests;
- ``faults``: a hub restart, a proxy restart, the reconciler killed, a roster change, each in the middle of a surge;
- ``checks``: "nothing lost", checked after every run; no process left after every stop;
- ``report``: the printed lines.

Everything runs on 127.0.0.1 only.
"""

FAULTS = ("hub-restart", "proxy-restart", "reconciler-kill", "roster-change")
RUNS = ("surge", "lab", *FAULTS)  # `make bench-surge ONLY=...`: the runs by name, in the order they print
