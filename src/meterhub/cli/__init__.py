"""The ``meterhub`` command line: one click group, kebab-case verbs."""

from __future__ import annotations

from meterhub.cli.app import main

__all__ = ["main"]
