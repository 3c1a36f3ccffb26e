"""The zone of a meter being added, asked of its vendor where the vendor can tell it.

IAMMETER's cloud gives each upload in local time and UTC, an AMS reader names its zone in its
configuration, and UMeter's metering points are all in the Netherlands: a meter of these vendors
added without ``--tz`` takes the zone the vendor tells, through a discovery with the meter's own
options (kept for the vendor's quota window, :mod:`meterhub.discoverycache`, so a discovery just
before costs nothing). smart-MAC devices and Intellimeter accounts tell no zone: their meters take
the hub's default, as every meter does when its vendor cannot be asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from meterhub.errors import MeterhubError
from meterhub.hubzone import default_zone
from meterhub.redact import redact_text
from meterhub.store.base import Store
from meterhub.vendors.base import Discovered
from meterhub.vendors.registry import load_connector

__all__ = ["IDENTIFYING_OPTIONS", "VendorZone", "vendor_tells_zone", "zone_from_vendor"]

IDENTIFYING_OPTIONS = ("sn", "ean", "devid", "point_id", "point")
"""Options that single out one meter of an account: a discovered meter matches on them."""


@dataclass(frozen=True, slots=True)
class VendorZone:
    """The zone a meter takes and where it came from, for people (``source``)."""

    tz: str
    source: str


def vendor_tells_zone(vendor: str, options: Mapping[str, str]) -> bool:
    """Tell whether ``vendor``'s discovery names the zone of a meter of ``options``.

    A meter read on the local network (IAMMETER's ``source=device``) tells none.
    """
    if options.get("source", "cloud") == "device":
        return False
    try:
        return bool(getattr(load_connector(vendor), "tells_zone", False))
    except MeterhubError:
        return False


def _matching(found: Sequence[Discovered], options: Mapping[str, str]) -> list[Discovered]:
    keys = [key for key in IDENTIFYING_OPTIONS if options.get(key)]
    if not keys:
        return list(found) if len(found) == 1 else []
    return [item for item in found if all(item.options.get(key) == options[key] for key in keys)]


async def zone_from_vendor(store: Store, vendor: str, options: Mapping[str, str]) -> VendorZone:
    """Return the zone the vendor tells for the meter of ``options``, else the hub's default.

    Never raises for the vendor's sake: a vendor that fails, or names no single meter matching
    the options, leaves the default, and ``source`` says why.
    """
    from meterhub import catalog  # catalog builds on this module's callers, not the other way

    fallback = default_zone(store)
    try:
        answer = await catalog.discover_meters_kept(store, vendor, options, None)
    except MeterhubError as exc:
        reason = redact_text(str(exc))
        return VendorZone(fallback.tz, f"{fallback.source}; {vendor} could not be asked ({reason})")
    zones = {item.tz for item in _matching(answer.found, options)}
    if len(zones) != 1:
        return VendorZone(fallback.tz, f"{fallback.source}; {vendor} named no single meter of these options")
    (tz,) = zones
    return VendorZone(tz, f"as {vendor} tells")
