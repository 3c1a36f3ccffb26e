"""Pure functions from UMeter answers (customer, measurements) to the canonical model.

Measurements list intervals (15 minutes, a day or a month) as local Europe/Amsterdam times
``YYYY-MM-DD HH:MM:SS``; a day can have 92, 96 or 100 quarter hours, and the repeated hour of
the autumn change is told apart by order. Registers follow the Dutch OBIS convention and are
mapped declaratively (:data:`ENERGY_FIELDS`): import is r181 + r182 (low and normal tariff),
export r281 + r282. Usage is kWh unless the answer says ``"unit": "Wh"``. ``beginReadings``
become a phase-0 register reading at the period's start. Each interval's ``totalCost`` (UMeter's
own price of it in euro, without VAT, with taxes and its share of the fixed costs) becomes the
extra :data:`VENDOR_COST_EXTRA` at the interval's start. Anything that cannot be mapped raises
:class:`PayloadError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from meterhub.errors import PayloadError
from meterhub.model import PHASE_TOTAL, Extra, IntervalEnergy, Reading

__all__ = [
    "ENERGY_FIELDS",
    "UNIT_FACTORS",
    "VENDOR_COST_EXTRA",
    "ZONE",
    "Address",
    "EnergyField",
    "Measurements",
    "Token",
    "decode",
    "local_time",
    "map_customer",
    "map_measurements",
    "map_token",
]

ZONE = ZoneInfo("Europe/Amsterdam")
"""UMeter's calendar: days, months and quarter hours are Dutch local time."""
UNIT_FACTORS: dict[str, float] = {"kwh": 1.0, "wh": 0.001}
"""kWh per unit of usage; answers without a ``unit`` are in kWh."""
_LOCAL_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})", re.ASCII)
_DAY = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_SHORTEST_INTERVAL = timedelta(seconds=1)  # the times' resolution: an interval's end is after its start
OUTDOOR_TEMPERATURE_EXTRA = "outdoor_temperature_c"
"""The KNMI station's temperature that interval rows may carry."""
VENDOR_COST_EXTRA = "vendor_cost_eur"
"""UMeter's cost of one interval in euro (without VAT), as ``analytics.cost`` reads vendor costs."""
MAX_TOKEN_LIFETIME_S = 366 * 86_400.0
"""A longer promised lifetime is cut to this: signing in again early is harmless, an expiry past
the calendar's end is not."""


@dataclass(frozen=True, slots=True)
class EnergyField:
    """An energy of the model as the sum of tariff registers."""

    target: str
    registers: tuple[str, ...]


ENERGY_FIELDS: tuple[EnergyField, ...] = (
    EnergyField("import_kwh", ("r181", "r182")),  # low (dal) and normal tariff
    EnergyField("export_kwh", ("r281", "r282")),
)
"""Import and export from the OBIS tariff registers; a register left out counts as absent."""


@dataclass(frozen=True, slots=True)
class Measurements:
    """One measurements answer in the model."""

    intervals: list[IntervalEnergy]
    readings: list[Reading]
    extras: list[Extra]


@dataclass(frozen=True, slots=True)
class Address:
    """An address of the customer with its metering point (EAN) and tariff facts.

    ``tariff_facts`` holds the address's ``pricePeak``, ``priceOffPeak``, ``peakHourEndsOn``,
    ``flatFee`` (from its ``eEan``) and ``inclVAT`` as given, for ``Tariff.from_umeter``.
    """

    ean: str
    title: str
    price_peak: float | None
    price_off_peak: float | None
    tariff_facts: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Token:
    """An OAuth token answer; ``repr`` hides both tokens."""

    access_token: str
    expires_in_s: float | None
    refresh_token: str | None

    def __repr__(self) -> str:
        return f"Token(access_token='***', expires_in_s={self.expires_in_s}, refresh_token='***')"


def decode(body: bytes) -> Any:
    """Parse a JSON body, raising PayloadError when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"UMeter answered something that is not JSON: {exc}") from exc


def _object(value: object, where: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise PayloadError(f"UMeter {where} is not an object")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"UMeter {where}: {value!r} is not a number")
    try:
        number = float(value)
    except OverflowError as exc:
        raise PayloadError(f"UMeter {where}: {value!r} is out of range") from exc
    if not math.isfinite(number):
        raise PayloadError(f"UMeter {where}: {value!r} is not finite")
    return number


def map_token(payload: object) -> Token:
    """Read a ``/token`` answer: access token, lifetime and refresh token."""
    body = _object(payload, "token answer")
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise PayloadError("UMeter token answer has no access_token")
    expires = body.get("expires_in")
    expires_in_s = None if expires is None else _number(expires, "expires_in")
    if expires_in_s is not None and expires_in_s < 0:
        raise PayloadError(f"UMeter token answer's expires_in {expires!r} is negative")
    refresh = body.get("refresh_token")
    return Token(
        access,
        None if expires_in_s is None else min(expires_in_s, MAX_TOKEN_LIFETIME_S),
        refresh if isinstance(refresh, str) and refresh else None,
    )


def map_customer(payload: object) -> list[Address]:
    """Return the customer's addresses that have an electricity metering point (EAN)."""
    addresses = _object(payload, "customer").get("addresses")
    if not isinstance(addresses, list):
        raise PayloadError("UMeter customer has no addresses list")
    found = []
    for index, item in enumerate(addresses):
        address = _object(item, f"address {index}")
        e_ean = address.get("eEan")
        if e_ean is None:
            continue
        e_ean = _object(e_ean, f"address {index} eEan")
        ean = e_ean.get("ean")
        if not isinstance(ean, str) or not ean:
            raise PayloadError(f"UMeter address {index} has an eEan without ean")
        title = address.get("title")
        facts = {name: e_ean[name] for name in _EAN_TARIFF_FACTS if e_ean.get(name) is not None}
        if address.get("inclVAT") is not None:
            facts["inclVAT"] = address["inclVAT"]
        found.append(Address(
            ean,
            title if isinstance(title, str) else "",
            _optional_number(e_ean.get("pricePeak"), "pricePeak"),
            _optional_number(e_ean.get("priceOffPeak"), "priceOffPeak"),
            facts,
        ))
    return found


_EAN_TARIFF_FACTS = ("pricePeak", "priceOffPeak", "peakHourEndsOn", "flatFee")


def _optional_number(value: object, where: str) -> float | None:
    return None if value is None else _number(value, where)


def local_time(text: object, earliest: datetime | None = None) -> datetime:
    """Return the UTC instant of local ``YYYY-MM-DD HH:MM:SS`` at or after ``earliest`` if it can be."""
    # Only the repeated hour of the autumn change has two instants; its second pass is taken
    # when the first comes before ``earliest`` (the previous interval's end).
    match = _LOCAL_TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise PayloadError(f"UMeter time {text!r} is not like 2022-09-28 00:15:00")
    year, month, day, hour, minute, second = map(int, match.groups())
    try:
        first = datetime(year, month, day, hour, minute, second, tzinfo=ZONE).astimezone(UTC)
        if earliest is not None and first < earliest:
            repeated = datetime(year, month, day, hour, minute, second, tzinfo=ZONE, fold=1).astimezone(UTC)
            if repeated >= earliest:
                return repeated
        return first
    except (ValueError, OverflowError) as exc:
        raise PayloadError(f"UMeter time {text!r} does not exist") from exc


def _energies(registers: object, where: str, factor: float) -> tuple[float | None, ...]:
    """Return each of ENERGY_FIELDS from a register object, None when none of its registers is given."""
    values = _object(registers, where)
    energies = []
    for energy in ENERGY_FIELDS:
        present = [_number(values[r], f"{where} {r}") for r in energy.registers if values.get(r) is not None]
        if any(value < 0 for value in present):
            # Registers only count up and usage is per direction, so a negative one is corruption.
            raise PayloadError(f"UMeter {where} holds a negative energy: {present}")
        total = sum(present) * factor if present else None
        if total is not None and not math.isfinite(total):
            raise PayloadError(f"UMeter {where}: the energy {present} overflows")
        energies.append(total)
    return tuple(energies)


def map_measurements(payload: object, meter_id: str, source: str = "umeter") -> Measurements:
    """Map a measurements answer (one metering point) to intervals, a register reading, extras."""
    if isinstance(payload, list):
        if len(payload) != 1:
            raise PayloadError(f"UMeter answered {len(payload)} metering points; one was asked")
        payload = payload[0]
    body = _object(payload, "measurements")
    unit = body.get("unit", "kWh")
    factor = UNIT_FACTORS.get(unit.lower()) if isinstance(unit, str) else None
    if factor is None:
        raise PayloadError(f"UMeter unit {unit!r} is not kWh or Wh")
    rows = body.get("aData")
    if not isinstance(rows, list):
        raise PayloadError("UMeter measurements have no aData list")
    intervals: list[IntervalEnergy] = []
    extras: list[Extra] = []
    previous_end: datetime | None = None
    for index, item in enumerate(rows):
        row = _object(item, f"aData row {index}")
        start = local_time(row.get("dateFrom"), previous_end)
        end = local_time(row.get("dateTo"), start + _SHORTEST_INTERVAL)
        import_kwh, export_kwh = _energies(row.get("usage"), f"aData row {index} usage", factor)
        try:
            intervals.append(IntervalEnergy(meter_id, start, end, import_kwh, export_kwh, source))
        except ValueError as exc:
            raise PayloadError(f"UMeter aData row {index}: {exc}") from exc
        if row.get("temperature") is not None:
            temperature_c = _number(row["temperature"], f"aData row {index} temperature")
            extras.append(Extra(meter_id, start, OUTDOOR_TEMPERATURE_EXTRA, temperature_c))
        cost_eur = _row_cost(row, f"aData row {index}")
        if cost_eur is not None:
            extras.append(Extra(meter_id, start, VENDOR_COST_EXTRA, cost_eur))
        previous_end = end
    return Measurements(intervals, _begin_readings(body, meter_id, factor), extras)


def _row_cost(row: dict[str, Any], where: str) -> float | None:
    """Return a row's ``totalCost``, else the sum of its per-register ``cost``; None without either."""
    if row.get("totalCost") is not None:
        return _number(row["totalCost"], f"{where} totalCost")
    costs = row.get("cost")
    if costs is None:
        return None
    values = _object(costs, f"{where} cost")
    present = [_number(value, f"{where} cost {key}") for key, value in values.items() if value is not None]
    total = sum(present)
    if not math.isfinite(total):
        raise PayloadError(f"UMeter {where}: the cost {present} overflows")
    return total if present else None


def _begin_readings(body: dict[str, Any], meter_id: str, factor: float) -> list[Reading]:
    """Return the registers at the period's start (``beginReadings`` on ``beginReadingsDate``)."""
    registers, day_text = body.get("beginReadings"), body.get("beginReadingsDate")
    if registers is None or day_text is None:
        return []
    import_kwh, export_kwh = _energies(registers, "beginReadings", factor)
    if import_kwh is None and export_kwh is None:
        return []
    match = _DAY.fullmatch(day_text) if isinstance(day_text, str) else None
    try:
        if match is None:
            raise ValueError("not eight digits")
        day = date(*map(int, match.groups()))
    except ValueError as exc:
        raise PayloadError(f"UMeter beginReadingsDate {day_text!r} is not YYYYMMDD") from exc
    return [Reading(meter_id, _local_midnight(day), PHASE_TOTAL,
                    energy_import_kwh=import_kwh, energy_export_kwh=export_kwh)]


def _local_midnight(day: date) -> datetime:
    try:
        return datetime(day.year, day.month, day.day, tzinfo=ZONE).astimezone(UTC)
    except OverflowError as exc:
        raise PayloadError(f"UMeter day {day} is out of range") from exc
