"""Run the CLI as ``python -m meterhub``."""

from meterhub.cli import main

main()
