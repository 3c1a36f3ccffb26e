"""The connection options every vendor command shares, as one reusable click option bundle.

Secrets never pass through the command line: ``--password-env NAME`` stores the reference
``env:NAME``, which is resolved from the environment each time the hub uses it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from meterhub.errors import InputError

__all__ = ["connection_options", "options_from", "secret_reference", "unset_references"]

F = TypeVar("F", bound=Callable[..., Any])

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PLAIN_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--base-url", "base_url", "Vendor API or device address (default: the vendor's real one)."),
    ("--sn", "sn", "IAMMETER meter serial number."),
    ("--host", "host", "Device address on the local network (AMS reader)."),
    ("--devid", "devid", "smart-MAC device id."),
    ("--ean", "ean", "UMeter metering point (EAN)."),
    ("--place-id", "place_id", "IAMMETER place id (adds hourly place energy to history)."),
    ("--point", "point", "Intellimeter metering point name."),
    ("--username", "username", "Account user name (not a secret; or use --username-env)."),
)
"""Command-line flag, option name stored on the meter, help text."""

SECRET_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("--username-env", "username", "Environment variable holding the account user name."),
    ("--password-env", "password", "Environment variable holding the account password."),
    ("--key-env", "key", "Environment variable holding the API key (Intellimeter)."),
    ("--devpass-env", "devpass", "Environment variable holding the device PIN (smart-MAC)."),
)
"""Flags that take an environment variable NAME; the meter keeps ``env:NAME``."""


def _param(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def connection_options(command: F) -> F:
    """Add every vendor connection option to a click command."""
    decorators = [
        click.option(flag, _param(flag), default=None, help=text) for flag, _, text in PLAIN_OPTIONS
    ]
    decorators.append(
        click.option(
            "--rate-class",
            type=click.Choice(["standard", "extended"]),
            default=None,
            help="smart-MAC rate class: standard (once a minute) or extended (every 6 s).",
        )
    )
    decorators += [
        click.option(flag, _param(flag), metavar="NAME", default=None, help=text)
        for flag, _, text in SECRET_FLAGS
    ]
    decorators.append(
        click.option(
            "--option",
            "extra_options",
            metavar="KEY=VALUE",
            multiple=True,
            help="Any other connection option; secrets only as KEY=env:NAME. Repeatable.",
        )
    )
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def secret_reference(flag: str, name: str) -> str:
    """Return ``env:NAME`` for an environment variable name, or raise InputError."""
    if not _ENV_NAME.match(name):
        raise InputError(f"{flag} takes the NAME of an environment variable, such as IAMMETER_PASSWORD")
    return f"env:{name}"


def options_from(values: Mapping[str, Any]) -> dict[str, str]:
    """Return the meter options the connection flags in ``values`` (click kwargs) ask for."""
    options: dict[str, str] = {}
    for flag, name, _ in PLAIN_OPTIONS:
        value = values.get(_param(flag))
        if value:
            options[name] = str(value).strip()
    if values.get("rate_class"):
        options["rate_class"] = str(values["rate_class"])
    for flag, name, _ in SECRET_FLAGS:
        env_name = values.get(_param(flag))
        if env_name:
            if name in options:
                raise InputError(f"give {flag} or its plain form, not both")
            options[name] = secret_reference(flag, str(env_name))
    for item in values.get("extra_options") or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise InputError(f"--option takes KEY=VALUE, not {item!r}")
        options[key.strip()] = value.strip()
    from meterhub.poller.config import check_secret_options  # the poller stack only where it is used

    check_secret_options(options, "connection options")
    return options


def unset_references(options: Mapping[str, str]) -> list[str]:
    """Return the environment variables the options refer to that are not set here."""
    names = [value[4:] for value in options.values() if value.startswith("env:")]
    return [name for name in names if name not in os.environ]
