"""Bidding zones of the European day-ahead market: friendly name, EIC code, local zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from meterhub.errors import InputError
from meterhub.timeutil import get_zone

__all__ = ["ZONES", "BiddingZone", "day_bounds", "find_zone"]


@dataclass(frozen=True, slots=True)
class BiddingZone:
    """A bidding zone: the name people use, its EIC code and the zone its delivery day is counted in."""

    name: str
    eic: str
    tz: str
    label: str


ZONES: tuple[BiddingZone, ...] = (
    BiddingZone("NO1", "10YNO-1--------2", "Europe/Oslo", "Norway south-east (Oslo)"),
    BiddingZone("NO2", "10YNO-2--------T", "Europe/Oslo", "Norway south-west (Kristiansand)"),
    BiddingZone("NO3", "10YNO-3--------J", "Europe/Oslo", "Norway middle (Trondheim)"),
    BiddingZone("NO4", "10YNO-4--------9", "Europe/Oslo", "Norway north (Tromsø)"),
    BiddingZone("NO5", "10Y1001A1001A48H", "Europe/Oslo", "Norway west (Bergen)"),
    BiddingZone("SE1", "10Y1001A1001A44P", "Europe/Stockholm", "Sweden north (Luleå)"),
    BiddingZone("SE2", "10Y1001A1001A45N", "Europe/Stockholm", "Sweden north-middle (Sundsvall)"),
    BiddingZone("SE3", "10Y1001A1001A46L", "Europe/Stockholm", "Sweden south-middle (Stockholm)"),
    BiddingZone("SE4", "10Y1001A1001A47J", "Europe/Stockholm", "Sweden south (Malmö)"),
    BiddingZone("DK1", "10YDK-1--------W", "Europe/Copenhagen", "Denmark west"),
    BiddingZone("DK2", "10YDK-2--------M", "Europe/Copenhagen", "Denmark east"),
    BiddingZone("FI", "10YFI-1--------U", "Europe/Helsinki", "Finland"),
    BiddingZone("EE", "10Y1001A1001A39I", "Europe/Tallinn", "Estonia"),
    BiddingZone("LV", "10YLV-1001A00074", "Europe/Riga", "Latvia"),
    BiddingZone("LT", "10YLT-1001A0008Q", "Europe/Vilnius", "Lithuania"),
    BiddingZone("DE-LU", "10Y1001A1001A82H", "Europe/Berlin", "Germany and Luxembourg"),
    BiddingZone("NL", "10YNL----------L", "Europe/Amsterdam", "Netherlands"),
    BiddingZone("BE", "10YBE----------2", "Europe/Brussels", "Belgium"),
    BiddingZone("FR", "10YFR-RTE------C", "Europe/Paris", "France"),
    BiddingZone("AT", "10YAT-APG------L", "Europe/Vienna", "Austria"),
    BiddingZone("CH", "10YCH-SWISSGRIDZ", "Europe/Zurich", "Switzerland"),
    BiddingZone("PL", "10YPL-AREA-----S", "Europe/Warsaw", "Poland"),
    BiddingZone("CZ", "10YCZ-CEPS-----N", "Europe/Prague", "Czechia"),
    BiddingZone("SK", "10YSK-SEPS-----K", "Europe/Bratislava", "Slovakia"),
    BiddingZone("HU", "10YHU-MAVIR----U", "Europe/Budapest", "Hungary"),
    BiddingZone("SI", "10YSI-ELES-----O", "Europe/Ljubljana", "Slovenia"),
    BiddingZone("HR", "10YHR-HEP------M", "Europe/Zagreb", "Croatia"),
    BiddingZone("RO", "10YRO-TEL------P", "Europe/Bucharest", "Romania"),
    BiddingZone("BG", "10YCA-BULGARIA-R", "Europe/Sofia", "Bulgaria"),
    BiddingZone("GR", "10YGR-HTSO-----Y", "Europe/Athens", "Greece"),
    BiddingZone("ES", "10YES-REE------0", "Europe/Madrid", "Spain"),
    BiddingZone("PT", "10YPT-REN------W", "Europe/Lisbon", "Portugal"),
)
"""The zones ``--zone`` accepts by name; an EIC code of another zone is accepted as it is."""

_BY_NAME = {zone.name: zone for zone in ZONES}
_BY_EIC = {zone.eic: zone for zone in ZONES}
_ALIASES = {"DE": "DE-LU", "DE_LU": "DE-LU", "DELU": "DE-LU", "LU": "DE-LU"}


def find_zone(text: str, tz: str | None = None) -> BiddingZone:
    """Return the zone a name (NO1, DE-LU) or EIC code names; raise InputError listing the names.

    An EIC code not in :data:`ZONES` is accepted with ``tz`` (default Europe/Brussels, CET).
    """
    key = text.strip().upper().replace(" ", "")
    key = _ALIASES.get(key, key)
    if key in _BY_NAME:
        return _BY_NAME[key]
    eic = text.strip()
    if eic in _BY_EIC:
        return _BY_EIC[eic]
    if len(eic) == 16 and eic[:3] == "10Y" and all(c.isalnum() or c == "-" for c in eic):
        return BiddingZone(eic, eic, tz or "Europe/Brussels", eic)
    names = ", ".join(zone.name for zone in ZONES)
    raise InputError(f"unknown bidding zone {text!r}; use one of {names} or a 16-character EIC code")


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """Return the UTC instants of ``day``'s local midnight and the next one in ``tz``.

    A delivery day is 23 hours long when clocks go forward and 25 when they go back.
    """
    zone = get_zone(tz)
    after = day + timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    return start, datetime(after.year, after.month, after.day, tzinfo=zone).astimezone(UTC)
