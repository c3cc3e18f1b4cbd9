"""What the tests share besides fixtures, imported by name (`from helpers.chart import render_chart`):

- chart.py: rendering coursehub's chart with real Helm and the real z2jh chart (`render_chart`), and reading renders;
- hubs.py: a live hub (`live_hub`), its values folder, and a client of its API (`HubClient`);
- browser.py: the one log-in (`log_in`) and a student's browser session (`Browser`);
- commands.py: the `coursehub` command, in this process or as the installed console script;
- files.py: files a test writes (values edited, stand-in programs, a checkout's chart/);
- suite.py: how the run is laid out (its order, where its temporary files go).

tests/conftest.py holds only pytest's hooks and fixtures; no test imports from it.
"""
