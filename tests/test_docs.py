"""The README documents every CLI verb and every setting."""

from __future__ import annotations

from pathlib import Path

import click

from meterhub.cli import main
from meterhub.config import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def _verbs(group: click.Group, prefix: str = "meterhub") -> list[str]:
    """Every verb and subcommand, loading lazily registered ones through ``get_command``."""
    names: list[str] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{prefix} {name} is listed but cannot be loaded"
        if isinstance(command, click.Group):
            names.extend(_verbs(command, f"{prefix} {name}"))
        else:
            names.append(f"{prefix} {name}")
    return names


def test_every_cli_verb_is_in_the_readme() -> None:
    verbs = _verbs(main)
    assert len(verbs) >= 10
    missing = [verb for verb in verbs if f"`{verb}" not in README]
    assert missing == []


def test_every_setting_is_in_the_readme() -> None:
    names = [f"METERHUB_{name.upper()}" for name in Settings.model_fields]
    assert "METERHUB_DATABASE_URL" in names
    assert [name for name in names if f"`{name}`" not in README] == []


def test_readme_quick_start_has_exactly_the_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = quick_start.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == [
        "make demo",
        "make test",
    ]
