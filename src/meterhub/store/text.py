"""The rule for text the store takes: no NUL character, on every backend.

PostgreSQL cannot store a NUL in text (SQLite can, but such a name is then unreachable through
a URL), so a NUL in any id, name, option or query value is the user's mistake: it is refused as
an :class:`InputError` before any query runs, never reported as a database failure.
"""

from __future__ import annotations

from collections.abc import Mapping

from meterhub.errors import InputError
from meterhub.model import Meter

__all__ = ["NUL_MESSAGE", "reject_nul", "reject_nul_in_meter"]

NUL_MESSAGE = "must not contain the NUL character (\\u0000, %00); remove it and try again"
_NUL = "\x00"


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return _NUL in value
    if isinstance(value, Mapping):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_nul(item) for item in value)
    return False


def reject_nul(*values: object, what: str = "text") -> None:
    """Raise InputError if any string in ``values`` (nested in mappings and sequences too) holds a NUL."""
    if any(_holds_nul(value) for value in values):
        raise InputError(f"{what} {NUL_MESSAGE}")


def reject_nul_in_meter(meter: Meter) -> None:
    """Raise InputError if a meter's vendor, zone, name or options hold a NUL."""
    reject_nul(meter.vendor, meter.tz, meter.name, dict(meter.options), what="a meter's settings")
