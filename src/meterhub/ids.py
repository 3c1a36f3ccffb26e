"""The one rule for the names people and files give to things: meters, places, price series, users.

An id is 1 to 64 characters: letters, digits and ``_ . : -``, starting with a letter or digit.
That keeps every id reachable in a URL path, safe as a file name (no ``/``, no ``..``), free of
control characters, and harmless in a spreadsheet (no leading ``=``, ``+``, ``-`` or ``@``).
User names allow ``@`` after the first character, for e-mail-like names. Labels (a meter's
name, an API key's name) are free text of bounded length without control characters.
"""

from __future__ import annotations

import re

from meterhub.errors import InputError

__all__ = [
    "ID_MAX_CHARS",
    "ID_PATTERN",
    "LABEL_MAX_CHARS",
    "USER_NAME_PATTERN",
    "check_id",
    "check_label",
    "check_user_name",
    "id_problem",
    "label_problem",
    "user_name_problem",
]

ID_MAX_CHARS = 64
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
"""Meter, place and price-series ids (also the pattern the API declares in OpenAPI)."""

USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
"""User names: as ids, with ``@`` allowed and ``:`` not."""

LABEL_MAX_CHARS = 100
"""Longest label (a key's name) a person may give."""

_ID = re.compile(ID_PATTERN)
_USER_NAME = re.compile(USER_NAME_PATTERN)
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SHOWN_CHARS = 40


def _shown(value: str) -> str:
    """Return ``value`` quoted for a message, cut short so a huge id never floods a report."""
    if len(value) <= _SHOWN_CHARS:
        return repr(value)
    return f"{value[:_SHOWN_CHARS]!r}... ({len(value)} characters)"


def _problem(value: str, what: str, pattern: re.Pattern[str], allowed: str) -> str | None:
    if pattern.fullmatch(value):
        return None
    if not value:
        return f"{what} is empty"
    if len(value) > ID_MAX_CHARS:
        return f"{what} {_shown(value)} is longer than {ID_MAX_CHARS} characters"
    if not value[0].isascii() or not value[0].isalnum():
        return f"{what} {_shown(value)} must start with a letter or digit"
    return f"{what} {_shown(value)} may hold only letters, digits and {allowed}"


def id_problem(value: str, what: str = "meter id") -> str | None:
    """Return why ``value`` is not a valid id, or None when it is."""
    return _problem(value, what, _ID, "_ . : -")


def check_id(value: str, what: str = "meter id") -> str:
    """Return ``value`` if it is a valid id; raise InputError saying why not otherwise."""
    problem = id_problem(value, what)
    if problem is not None:
        raise InputError(f"{problem} (at most {ID_MAX_CHARS} letters, digits and _ . : -)")
    return value


def user_name_problem(value: str) -> str | None:
    """Return why ``value`` is not a valid user name, or None when it is."""
    return _problem(value, "user name", _USER_NAME, "_ . @ -")


def check_user_name(value: str) -> str:
    """Return ``value`` if it is a valid user name; raise InputError saying why not otherwise."""
    problem = user_name_problem(value)
    if problem is not None:
        raise InputError(f"{problem} (at most {ID_MAX_CHARS} letters, digits and _ . @ -)")
    return value


def label_problem(value: str, what: str = "name") -> str | None:
    """Return why ``value`` is not a valid label, or None when it is."""
    if len(value) > LABEL_MAX_CHARS:
        return f"{what} {_shown(value)} is longer than {LABEL_MAX_CHARS} characters"
    if _CONTROL.search(value):
        return f"{what} {_shown(value)} holds a control character"
    return None


def check_label(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a valid label; raise InputError saying why not otherwise."""
    problem = label_problem(value, what)
    if problem is not None:
        raise InputError(problem)
    return value
