"""Measurement answers of the UMeter simulator, shaped like the captured ``p4data.json``.

A period is a local (Europe/Amsterdam) day in quarter hours, a month in days or a year in
months. Only intervals that ended before the simulated now are listed. Usage is the difference
of the tariff registers read at 10 Wh resolution, so intervals add up exactly to the period
total. Costs follow the captured answer: each interval's cost (energy, taxes and its share of the
daily fixed costs, excluding VAT) is booked on the first register shown; period totals include
21 % VAT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

from .payloads import ZONE, UMeterAccount, local_midnight, local_text

__all__ = ["MEAS_KEYS", "Period", "measurements", "parse_meas_keys", "parse_period"]

Json = dict[str, Any]
REGISTERS = ("r181", "r182", "r281", "r282")
_BEGIN_ORDER = ("r182", "r181", "r282", "r281")  # the order the captured answer uses
MEAS_KEYS: dict[str, tuple[str, ...]] = {"import": ("r181", "r182"), "export": ("r281", "r282")}
"""The registers each ``measKeys`` value selects."""
_VAT = 1.21
_TRANSPORT_PER_DAY = 0.7035
_TAX_REDUCTION_PER_DAY = -1.86748
_ODE_PER_KWH = 0.0305
_ENERGY_TAX_PER_KWH = 0.03679
_QUARTER = timedelta(minutes=15)


@dataclass(frozen=True)
class Period:
    """Local days [start, end) listed per quarter hour, day or month."""

    start: date
    end: date
    resolution: str  # "quarter", "day" or "month"

    @property
    def days(self) -> int:
        """Return the number of local days in the period."""
        return (self.end - self.start).days

    def previous(self) -> Period:
        """Return the period of the same kind just before this one."""
        if self.resolution == "quarter":
            return Period(self.start - timedelta(days=1), self.start, "quarter")
        if self.resolution == "day":
            return Period(_add_months(self.start, -1), self.start, "day")
        return Period(self.start.replace(year=self.start.year - 1), self.start, "month")

    def boundaries(self) -> list[datetime]:
        """Return the UTC instants that start each interval, then the period's end."""
        end = local_midnight(self.end)
        if self.resolution == "quarter":
            instant, marks = local_midnight(self.start), []
            while instant <= end:  # 92, 96 or 100 intervals: UTC steps across DST
                marks.append(instant)
                instant += _QUARTER
            return marks
        if self.resolution == "day":
            return [local_midnight(self.start + timedelta(days=i)) for i in range(self.days + 1)]
        months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
        return [local_midnight(_add_months(self.start, i)) for i in range(months + 1)]


def parse_period(kind: str, text: str) -> Period:
    """Read ``year/YYYY``, ``month/YYYYMM`` or ``date/YYYYMMDD``; raise ValueError if malformed."""
    digits = {"year": 4, "month": 6, "date": 8}.get(kind)
    if digits is None or not re.fullmatch(rf"\d{{{digits}}}", text):
        raise ValueError(f"'{kind}/{text}' is not one of year/YYYY, month/YYYYMM, date/YYYYMMDD")
    year = int(text[:4])
    if not 1900 <= year <= 2200:
        raise ValueError(f"year {year} is out of range")
    if kind == "year":
        return Period(date(year, 1, 1), date(year + 1, 1, 1), "month")
    month = int(text[4:6])
    if not 1 <= month <= 12:
        raise ValueError(f"month {text[4:6]} does not exist")
    if kind == "month":
        first = date(year, month, 1)
        return Period(first, _add_months(first, 1), "day")
    day = date(year, month, int(text[6:8]))  # ValueError for 20220230
    return Period(day, day + timedelta(days=1), "quarter")


def parse_meas_keys(values: list[str]) -> tuple[str, ...]:
    """Return the registers selected by ``measKeys`` values (all four when none is given)."""
    names = [part.strip().lower() for value in values for part in value.split(",") if part.strip()]
    unknown = sorted(set(names) - set(MEAS_KEYS))
    if unknown:
        raise ValueError(f"unknown measKeys {', '.join(unknown)}; use import and/or export")
    chosen = set(names) or set(MEAS_KEYS)
    return tuple(register for name in MEAS_KEYS if name in chosen for register in MEAS_KEYS[name])


def measurements(
    account: UMeterAccount, period: Period, keys: tuple[str, ...], now: datetime, explain: bool
) -> Json:
    """Return the answer for one metering point over ``period``, up to ``now``."""
    rows, usage = _rows(account, period, keys, now)
    _, usage_prev = _rows(account, period.previous(), keys, now)
    cost = sum(row["totalCost"] for row in rows)
    cost_prev = _period_cost(account, usage_prev, period.previous().days)
    begin_at = local_midnight(period.start)
    begin = account.registers_at(begin_at) if begin_at <= now else {}  # not read yet: none shown
    answer: Json = {
        "beginReadings": {key: round(begin[key], 2) for key in _BEGIN_ORDER if key in begin and key in keys},
        "beginReadingsDate": period.start.strftime("%Y%m%d"),
        "totalUsage": usage,
        "totalUsagePrev": usage_prev,
        "totalCost": _lumped(keys, round(cost * _VAT, 2)),
        "totalCost2": round(cost * _VAT, 2),
        "totalCostPrev": _lumped(keys, cost_prev),
        "totalCostPrev2": cost_prev,
        "aData": rows,
        "sunInfo": account.sun_info(period.start),
    }
    if explain:
        answer["explain"] = _explain(account, usage, period)
    answer["dataSource"] = "Netbeheerder"
    return answer


def _rows(
    account: UMeterAccount, period: Period, keys: tuple[str, ...], now: datetime
) -> tuple[list[Json], dict[str, float]]:
    """Return the period's interval rows up to ``now`` and their summed usage per register."""
    marks = [mark for mark in period.boundaries() if mark <= now]
    readings = [_rounded(account.registers_at(mark)) for mark in marks]
    rows, totals = [], dict.fromkeys(keys, 0.0)
    intervals = zip(pairwise(marks), pairwise(readings), strict=True)
    for (start, end), (before, after) in intervals:
        usage = {key: round(after[key] - before[key], 2) for key in keys}
        energy = sum(usage[key] * account_price(account, key) for key in keys)
        share = _fixed_cost_per_day(account) * (end - start) / timedelta(days=1)
        row: Json = {
            "dateFrom": local_text(start),
            "dateTo": local_text(end),
            "usage": usage,
            "cost": _lumped(keys, energy + share),
            "totalCost": energy + share,
        }
        local_start = start.astimezone(ZONE)
        if period.resolution != "quarter" or local_start.minute == 0:
            moment = start if period.resolution == "quarter" else start + timedelta(hours=12)
            row["temperature"] = account.outdoor_temperature_c(moment)
        rows.append(row)
        for key in keys:
            totals[key] += usage[key]
    return rows, {key: round(value, 2) for key, value in totals.items()}


def account_price(account: UMeterAccount, register: str) -> float:
    """Return the cost of one kWh on ``register`` excluding VAT (negative for export)."""
    cfg = account.config
    price = cfg.price_peak if register.endswith("2") else cfg.price_off_peak
    return -price if register.startswith("r2") else price + _ODE_PER_KWH + _ENERGY_TAX_PER_KWH


def _fixed_cost_per_day(account: UMeterAccount) -> float:
    return _TRANSPORT_PER_DAY + _TAX_REDUCTION_PER_DAY + account.config.flat_fee / 360


def _period_cost(account: UMeterAccount, usage: dict[str, float], days: int) -> float:
    energy = sum(value * account_price(account, key) for key, value in usage.items())
    return round((energy + _fixed_cost_per_day(account) * days) * _VAT, 2)


def _lumped(keys: tuple[str, ...], amount: float) -> dict[str, float]:
    """Book ``amount`` on the first register shown, as the captured answer does."""
    return {key: (amount if i == 0 else 0.0) for i, key in enumerate(keys)}


def _rounded(registers: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 2) for key, value in registers.items()}


def _explain(account: UMeterAccount, usage: dict[str, float], period: Period) -> Json:
    """Return the cost explanation: tariff items, VAT and their groupings."""
    cfg = account.config
    days, total = float(period.days), usage.get("r181", 0.0) + usage.get("r182", 0.0)
    items = (
        ("Netbeheerkosten (transport)", "TotalDays", days, _TRANSPORT_PER_DAY),
        ("Opslag duurzame energie", "TotalUsage", total, _ODE_PER_KWH),
        ("Vermindering energiebelasting", "TotalDays", days, _TAX_REDUCTION_PER_DAY),
        ("Energiebelasting", "TotalUsage", total, _ENERGY_TAX_PER_KWH),
        ("Normaaltarief", "HighUsage", usage.get("r182", 0.0), cfg.price_peak),
        ("Daltarief", "LowUsage", usage.get("r181", 0.0), cfg.price_off_peak),
        ("Vaste leveringskosten", "TotalDays", days, round(cfg.flat_fee / 360, 5)),
    )
    amounts = {name: round(quantity * tariff, 2) for name, _, quantity, tariff in items}
    exc_vat = round(sum(amounts.values()), 2)
    span = (local_text(local_midnight(period.start)), local_text(local_midnight(period.end)))
    answer: Json = {
        "specs": [_spec(item, amounts[item[0]], span) for item in items],
        "excBtw": exc_vat,
        "btw": round(exc_vat * (_VAT - 1), 2),
        "incBtw": round(exc_vat * _VAT, 2),
    }
    for key, label, description, names in _GROUPS:
        value = round(sum(amounts[name] for name in names) * _VAT, 2)
        answer[key] = value
        answer[f"{key}V" if key != "totalEnergySupplier" else "totalSupplyCostV"] = {
            "value": value,
            "name": label,
            "description": description,
        }
    return answer


_GROUPS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("totalTransport", "Netbeheerkosten", "Alleen Netbeheerkosten (transport van energie)",
     ("Netbeheerkosten (transport)",)),
    ("totalTaxes", "Overheidsheffingen", "ODE + Energieheffing + Vermindering energiebelasting",
     ("Opslag duurzame energie", "Energiebelasting", "Vermindering energiebelasting")),
    ("totalEnergySupplier", "Leveringskosten", "Daltarief + Normaaltarief + Vaste leveringskosten",
     ("Daltarief", "Normaaltarief", "Vaste leveringskosten")),
    ("totalFixedCost", "Vaste kosten",
     "Netbeheerkosten + Vaste leveringskosten + Vermindering energiebelasting",
     ("Netbeheerkosten (transport)", "Vaste leveringskosten", "Vermindering energiebelasting")),
    ("totalUsageDependentCost", "Verbruiksafhankelijke kosten",
     "ODE + Energiebelasting + Daltarief + Normaaltarief",
     ("Opslag duurzame energie", "Energiebelasting", "Daltarief", "Normaaltarief")),
)  # fmt: skip
"""Explanation totals: key, label, description and the items they add up (with VAT)."""


def _spec(item: tuple[str, str, float, float], amount: float, span: tuple[str, str]) -> Json:
    name, kind, quantity, tariff = item
    usage_slice: Json = {"quantity": round(quantity, 2), "tariff": tariff, "amountToPay": amount}
    if kind == "TotalUsage":
        usage_slice = {"sliceQuantityFrom": 0.0, "sliceQuantityTo": 10000.0, **usage_slice}
    return {
        "name": name,
        "tType": kind,
        "specSlices": [
            {"dateFrom": span[0], "dateTo": span[1], "sliceName": "", "usageSlices": [usage_slice]}
        ],
        "totalQuantity": round(quantity, 2),
        "totalAmountToPay": amount,
    }


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
