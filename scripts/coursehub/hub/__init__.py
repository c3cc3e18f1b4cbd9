"""The local hub: a course's real JupyterHub on 127.0.0.1 (the demo and the live tests)."""
