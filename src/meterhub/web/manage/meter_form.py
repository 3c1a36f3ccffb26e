"""A meter's connection options as form fields, per vendor, and back.

The fields are those of ``meterhub meters add`` and ``discover``: plain options are typed as
they are (``opt_<name>``); secrets are never typed: the form asks for the NAME of the hub's
environment variable that holds one (``env_<name>``) and the meter keeps ``env:NAME``. A user
name may be either. Any other option is a ``KEY=VALUE`` line of ``extra``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.datastructures import FormData

from meterhub.catalog import SECRET_OPTIONS, is_reference
from meterhub.web.forms import FormErrors, form_text

__all__ = [
    "OptionField",
    "error_field",
    "fields_of",
    "form_values",
    "options_from_form",
]


@dataclass(frozen=True, slots=True)
class OptionField:
    """One connection option on a vendor's form."""

    name: str
    label: str
    hint: str = ""
    secret: bool = False
    """Asked for as an environment variable's NAME only."""
    either: bool = False
    """Typed as is, or as a variable's NAME (a user name)."""
    choices: tuple[str, ...] = ()


_BASE_URL = OptionField("base_url", "Address", "The vendor's API or the device; empty: the vendor's own.")
_USERNAME = OptionField("username", "User name", "Or the variable that holds it.", either=True)
_PASSWORD = OptionField("password", "Password", "Variable holding the account password.", secret=True)

VENDOR_FIELDS: dict[str, tuple[OptionField, ...]] = {
    "iammeter": (
        _BASE_URL,
        _USERNAME,
        _PASSWORD,
        OptionField("sn", "Serial number", "The meter's serial number (discovery finds it)."),
        OptionField("place_id", "Place id", "Adds hourly place energy to history."),
        OptionField("place_role", "Role in the place", "Which of its energy.",
                    choices=("", "grid", "solar", "special")),
        OptionField("source", "Read from", "device: the meter's local API at Address.",
                    choices=("", "cloud", "device")),
        OptionField("user", "Device user", "Local API user; empty: admin (password empty: admin)."),
    ),
    "smartmac": (
        _BASE_URL,
        OptionField("devid", "Device id"),
        OptionField("devpass", "Device PIN", "Variable holding the device PIN.", secret=True),
        OptionField(
            "rate_class", "Rate class", "Once a minute, or every 6 s.", choices=("", "standard", "extended")
        ),
    ),
    "intellimeter": (
        _BASE_URL,
        _USERNAME,
        _PASSWORD,
        OptionField("key", "API key", "Variable holding the API key.", secret=True),
        OptionField("point", "Metering point", "Its name (discovery finds it)."),
    ),
    "amsreader": (
        _BASE_URL,
        OptionField("host", "Host", "The reader's address on the local network."),
        _USERNAME,
        _PASSWORD,
    ),
    "umeter": (
        _BASE_URL,
        _USERNAME,
        _PASSWORD,
        OptionField("ean", "Metering point (EAN)", "Discovery finds it."),
    ),
    "file": (),
}
"""The options each vendor's form asks for, as ``meterhub meters add`` takes them."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def fields_of(vendor: str) -> tuple[OptionField, ...]:
    """Return the option fields of a vendor's form (none for an unknown vendor)."""
    return VENDOR_FIELDS.get(vendor, ())


def options_from_form(vendor: str, form: FormData, errors: FormErrors) -> dict[str, str]:
    """Return the options a vendor's form gives; problems go to ``errors`` by field."""
    options: dict[str, str] = {}
    for option in fields_of(vendor):
        plain = "" if option.secret else form_text(form, f"opt_{option.name}")
        env_name = form_text(form, f"env_{option.name}") if option.secret or option.either else ""
        if plain and env_name:
            errors.add(f"env_{option.name}", "Give the value or its variable's name, not both.")
        elif env_name and not _ENV_NAME.match(env_name):
            errors.add(
                f"env_{option.name}",
                f"Enter the NAME of an environment variable of the hub, such as {vendor.upper()}_"
                f"{option.name.upper()}; never the {option.label.lower()} itself.",
            )
        elif env_name:
            options[option.name] = f"env:{env_name}"
        elif plain:
            options[option.name] = plain
    for number, line in enumerate(form_text(form, "extra").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            errors.add("extra", f"Line {number}: write KEY=VALUE, not {line.strip()!r}.")
            continue
        options[key.strip()] = value.strip()
    return options


def form_values(vendor: str, options: Mapping[str, str]) -> dict[str, str]:
    """Return the form fields that show a meter's options: secrets as their variable's NAME only."""
    values: dict[str, str] = {}
    known = {option.name: option for option in fields_of(vendor)}
    extra: list[str] = []
    for key, value in sorted(options.items()):
        option = known.get(key)
        if option is not None and is_reference(value) and (option.secret or option.either):
            values[f"env_{key}"] = value[4:]
        elif option is not None and not option.secret and not is_reference(value):
            values[f"opt_{key}"] = value
        elif key in SECRET_OPTIONS and not is_reference(value):
            continue  # a secret in the clear is never shown (the catalog refuses to keep one)
        else:
            extra.append(f"{key}={value}")
    values["extra"] = "\n".join(extra)
    return values


def error_field(vendor: str, field: str) -> str:
    """Return the form field a catalog error's field (``options.<key>`` for one option) concerns."""
    if not field.startswith("options"):
        return field
    key = field.partition(".")[2]
    option = next((o for o in fields_of(vendor) if o.name == key), None)
    if option is None:
        return "extra"
    return f"env_{key}" if option.secret or key in SECRET_OPTIONS else f"opt_{key}"
