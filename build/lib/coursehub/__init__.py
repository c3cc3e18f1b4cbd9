"""coursehub's tooling: render, validate and deploy course JupyterHubs.

One entry point, ``python -m coursehub`` (cli.py); the Makefile calls it.
"""
