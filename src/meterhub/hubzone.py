"""The hub's default time zone: what a meter or place gets when neither the user nor its vendor
names one.

It is chosen in this order, and every answer says which rule chose it, so a zone is never
silently UTC:

1. the hub setting (``meterhub settings set default-tz Europe/Oslo``), kept in the database so
   the CLI, the API and the dashboard agree;
2. the ``METERHUB_DEFAULT_TZ`` environment variable;
3. this machine's zone (``TZ``, ``/etc/localtime`` or ``/etc/timezone``);
4. UTC, when nothing above names a zone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meterhub.config import Settings
from meterhub.errors import FieldError, MeterhubError
from meterhub.store.base import Store
from meterhub.timeutil import get_zone

__all__ = [
    "SETTING_SCOPE",
    "ZoneChoice",
    "check_zone",
    "default_zone",
    "machine_zone",
    "set_default_zone",
    "zone_of_meters",
]

SETTING_SCOPE = "hub-setting"
"""The token-store scope hub settings are kept under (no secrets; nothing expires)."""
DEFAULT_TZ_KEY = "default_tz"
ENV_NAME = "METERHUB_DEFAULT_TZ"
UTC_ALIASES = frozenset({"Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"})
"""Names the zone database keeps for UTC itself; a machine set to one of them is shown as UTC."""


@dataclass(frozen=True, slots=True)
class ZoneChoice:
    """A default zone and the rule that chose it, in words for people."""

    tz: str
    source: str


def check_zone(tz: str) -> str:
    """Return ``tz`` if it names an IANA time zone; raise FieldError (``tz``) otherwise."""
    try:
        get_zone(tz)
    except (OSError, ValueError, MeterhubError) as exc:  # a zone-database folder, a name too long
        raise FieldError("tz", f"unknown time zone {tz!r} (use an IANA name like Europe/Oslo)") from exc
    return tz


def _known(tz: str | None) -> str | None:
    if not tz:
        return None
    try:
        return check_zone(tz)
    except FieldError:
        return None


def machine_zone(etc: Path = Path("/etc")) -> str | None:
    """Return the IANA zone this machine is set to, or None when it names none."""
    from_env = _known(os.environ.get("TZ", "").removeprefix(":"))
    if from_env:
        return from_env
    try:
        target = str((etc / "localtime").readlink())
    except OSError:
        target = ""
    if "zoneinfo/" in target:
        found = _known(target.split("zoneinfo/", 1)[1])
        if found:
            return found
    try:
        return _known((etc / "timezone").read_text(encoding="utf-8").strip())
    except OSError:
        return None


def default_zone(store: Store) -> ZoneChoice:
    """Return the hub's default zone and which rule chose it."""
    kept = store.token_get(SETTING_SCOPE, DEFAULT_TZ_KEY)
    if kept is not None and _known(kept[0]):
        return ZoneChoice(kept[0], "the hub's default zone")
    from_env = _known(Settings().default_tz)
    if from_env:
        return ZoneChoice(from_env, f"the hub's default zone from {ENV_NAME}")
    machine = machine_zone()
    if machine in UTC_ALIASES:
        machine = "UTC"
    if machine:
        return ZoneChoice(machine, "this machine's zone; set the hub's with `meterhub settings set`")
    return ZoneChoice("UTC", "no zone is set anywhere; set one with `meterhub settings set default-tz`")


def set_default_zone(store: Store, tz: str | None) -> ZoneChoice:
    """Set the hub's default zone (None forgets it); return the default that now applies."""
    if tz is None:
        store.token_delete(SETTING_SCOPE, DEFAULT_TZ_KEY)
    else:
        store.token_set(SETTING_SCOPE, DEFAULT_TZ_KEY, check_zone(tz), None)
    return default_zone(store)


def zone_of_meters(store: Store, meter_ids: Sequence[str] | None = None) -> str:
    """Return the zone a date or offset-less time means for these meters (default: all of them).

    It is their own zone when they share one, else the hub's default zone.
    """
    meters = [store.get_meter(m) for m in meter_ids] if meter_ids else store.list_meters()
    zones = {meter.tz for meter in meters}
    return zones.pop() if len(zones) == 1 else default_zone(store).tz
