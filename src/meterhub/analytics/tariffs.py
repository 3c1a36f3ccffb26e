"""Tariffs as plain data in ``Place.tariff``, and the price that applies to each stretch of time.

A tariff prices import one way: a fixed price, time-of-use windows (a peak price on chosen
days between two local hours, as UMeter's pricePeak, priceOffPeak and peakHourEndsOn), or a
dynamic price series imported with ``meterhub prices import`` (15- or 60-minute slots). An
adder (a grid fee, a supplier's margin) may be put on every import price. Export is
compensated by a fixed price or a series, or not at all. Fixed fees accrue per local day and
per local month. Capacity-tariff settings live here too, read by ``analytics.capacity``.

The keys of the plain data are the field names of :class:`Tariff`; prices are per kWh in
``currency``, fees in ``currency``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from meterhub.analytics.calendar import local_midnight, to_zone
from meterhub.errors import InputError
from meterhub.model import Direction, PricePoint
from meterhub.timeutil import to_ms

__all__ = [
    "DEFAULT_PEAK_END_HOUR",
    "DEFAULT_PEAK_START_HOUR",
    "UMETER_FLAT_FEE_DAYS",
    "PriceSlot",
    "Tariff",
    "price_slots",
]

DEFAULT_PEAK_START_HOUR = 7
DEFAULT_PEAK_END_HOUR = 23
_DAY = timedelta(days=1)
UMETER_FLAT_FEE_DAYS = 360
"""UMeter books its yearly ``flatFee`` per day as flatFee / 360 (64.8 shows as 0.18 a day)."""


@dataclass(frozen=True, slots=True)
class PriceSlot:
    """The price per kWh over [start, end); None where no price is known."""

    start: datetime
    end: datetime
    price_per_kwh: float | None


@dataclass(frozen=True, slots=True)
class Tariff:
    """How a place's energy is priced; build it from plain data with :meth:`from_data`."""

    currency: str = ""
    import_per_kwh: float | None = None
    peak_per_kwh: float | None = None
    offpeak_per_kwh: float | None = None
    peak_start_hour: int = DEFAULT_PEAK_START_HOUR
    peak_end_hour: int = DEFAULT_PEAK_END_HOUR
    """Local hour the peak window ends (UMeter's peakHourEndsOn); 24 is midnight."""
    peak_weekdays_only: bool = True
    """Peak prices apply Monday to Friday only (as UMeter's); all days otherwise."""
    import_series: str | None = None
    import_adder_per_kwh: float = 0.0
    export_per_kwh: float | None = None
    export_series: str | None = None
    export_adder_per_kwh: float = 0.0
    fee_per_day: float = 0.0
    fee_per_month: float = 0.0
    capacity_thresholds_kwh: tuple[float, ...] | None = None
    capacity_peak_days: int | None = None

    def __post_init__(self) -> None:
        kinds = [
            name
            for name, set_ in (
                ("a fixed price", self.import_per_kwh is not None),
                ("time-of-use prices", self.peak_per_kwh is not None or self.offpeak_per_kwh is not None),
                ("a price series", self.import_series is not None),
            )
            if set_
        ]
        if len(kinds) > 1:
            raise InputError(f"a tariff prices import one way, not with {' and '.join(kinds)}")
        if (self.peak_per_kwh is None) != (self.offpeak_per_kwh is None):
            raise InputError("time-of-use prices need both a peak and an off-peak price")
        if not 0 <= self.peak_start_hour < self.peak_end_hour <= 24:
            raise InputError(
                "peak hours must satisfy 0 <= start < end <= 24, "
                f"not {self.peak_start_hour}-{self.peak_end_hour}"
            )
        if self.export_per_kwh is not None and self.export_series is not None:
            raise InputError("export is compensated by a fixed price or a series, not both")
        if self.prices_anything and not self.currency.strip():
            raise InputError("a tariff with prices or fees needs a currency (such as EUR or NOK)")
        if self.capacity_peak_days is not None and self.capacity_peak_days < 1:
            raise InputError("the number of capacity peaks must be at least 1")
        if self.capacity_thresholds_kwh is not None:
            steps = self.capacity_thresholds_kwh
            if not steps or any(b <= a for a, b in itertools.pairwise(steps)) or steps[0] <= 0:
                raise InputError("capacity thresholds must be positive and increasing, like 5,10,15")

    @property
    def prices_anything(self) -> bool:
        """Tell whether the tariff sets any price or fee."""
        return any(
            (
                self.import_per_kwh is not None,
                self.peak_per_kwh is not None,
                self.import_series is not None,
                self.export_per_kwh is not None,
                self.export_series is not None,
                self.fee_per_day,
                self.fee_per_month,
            )
        )

    @property
    def prices_import(self) -> bool:
        """Tell whether the tariff sets a price for import."""
        return (
            self.import_per_kwh is not None or self.peak_per_kwh is not None or self.import_series is not None
        )

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Tariff:
        """Return the tariff that plain data (``Place.tariff``) describes; raise InputError if malformed."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InputError(f"unknown tariff setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if value is None:
                continue
            values[name] = _coerce(name, value)
        return cls(**values)

    @classmethod
    def from_umeter(cls, ean: Mapping[str, Any], currency: str = "EUR") -> Tariff:
        """Return the tariff of a UMeter address's facts: pricePeak, priceOffPeak, peakHourEndsOn, flatFee.

        ``flatFee`` is a yearly supply fee that UMeter books per day as flatFee / 360 (its
        captured cost explanation shows 64.8 as 0.18 a day), so it becomes ``fee_per_day``.
        ``inclVAT`` does not change the prices: the captured explanation applies pricePeak as
        given and adds 21 % VAT on top even with inclVAT true, so it tells how UMeter shows its
        totals, and the tariff (which has no VAT setting) prices without VAT, as given.
        """
        try:
            incl_vat = ean.get("inclVAT")
            if incl_vat is not None and not isinstance(incl_vat, bool):
                raise ValueError(f"inclVAT {incl_vat!r} is not true or false")
            flat_fee = _umeter_price(ean.get("flatFee", 0.0), "flatFee")
            if flat_fee < 0:
                raise ValueError(f"flatFee {flat_fee!r} is negative")
            return cls(
                currency=currency,
                peak_per_kwh=_umeter_price(ean["pricePeak"], "pricePeak"),
                offpeak_per_kwh=_umeter_price(ean["priceOffPeak"], "priceOffPeak"),
                peak_end_hour=_umeter_hour(ean.get("peakHourEndsOn", DEFAULT_PEAK_END_HOUR)),
                fee_per_day=flat_fee / UMETER_FLAT_FEE_DAYS,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"UMeter tariff facts are incomplete: {exc}") from exc

    def to_data(self) -> dict[str, Any]:
        """Return the tariff as plain data, leaving out settings at their defaults."""
        defaults = Tariff()
        data: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if value != getattr(defaults, name):
                data[name] = list(value) if isinstance(value, tuple) else value
        return data

    def series_for(self, direction: Direction) -> str | None:
        """Return the price series named for a direction, if dynamic."""
        return self.import_series if direction is Direction.IMPORT else self.export_series

    def slots(
        self,
        direction: Direction,
        start: datetime,
        end: datetime,
        tz: str | tzinfo,
        points: Sequence[PricePoint] = (),
    ) -> list[PriceSlot]:
        """Return contiguous price slots covering [start, end); ``points`` are the series' slots."""
        if direction is Direction.EXPORT:
            if self.export_series is not None:
                return _series_slots(points, start, end, self.currency, self.export_adder_per_kwh)
            credit = 0.0 if self.export_per_kwh is None else self.export_per_kwh + self.export_adder_per_kwh
            return [PriceSlot(start, end, credit)]
        if self.import_series is not None:
            return _series_slots(points, start, end, self.currency, self.import_adder_per_kwh)
        if self.peak_per_kwh is not None and self.offpeak_per_kwh is not None:
            peak = self.peak_per_kwh + self.import_adder_per_kwh
            offpeak = self.offpeak_per_kwh + self.import_adder_per_kwh
            return self._time_of_use(start, end, to_zone(tz), peak, offpeak)
        price = None if self.import_per_kwh is None else self.import_per_kwh + self.import_adder_per_kwh
        return [PriceSlot(start, end, price)]

    def _time_of_use(
        self, start: datetime, end: datetime, zone: tzinfo, peak: float, offpeak: float
    ) -> list[PriceSlot]:
        slots: list[PriceSlot] = []
        cursor = start
        day = start.astimezone(zone).date()
        while local_midnight(day, zone) < end:
            lo, hi = self._peak_window(day, zone)
            lo, hi = max(lo, cursor), min(hi, end)
            if lo < hi:
                if lo > cursor:
                    slots.append(PriceSlot(cursor, lo, offpeak))
                slots.append(PriceSlot(lo, hi, peak))
                cursor = hi
            day += _DAY
        if cursor < end:
            slots.append(PriceSlot(cursor, end, offpeak))
        return slots

    def _peak_window(self, day: date, zone: tzinfo) -> tuple[datetime, datetime]:
        if self.peak_weekdays_only and day.weekday() >= 5:
            midnight = local_midnight(day, zone)
            return midnight, midnight
        lo = datetime(day.year, day.month, day.day, self.peak_start_hour, tzinfo=zone).astimezone(UTC)
        if self.peak_end_hour == 24:
            return lo, local_midnight(day + _DAY, zone)
        hi = datetime(day.year, day.month, day.day, self.peak_end_hour, tzinfo=zone).astimezone(UTC)
        return lo, hi


def _umeter_price(value: object, name: str) -> float:
    """Return a UMeter price per kWh; raise ValueError for a non-number or a non-finite one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} {value!r} is not a number")
    price = float(value)
    if not -1e6 < price < 1e6:
        raise ValueError(f"{name} {value!r} is not a price")
    return price


def _umeter_hour(value: object) -> int:
    """Return UMeter's peakHourEndsOn as a whole hour; raise ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"peakHourEndsOn {value!r} is not an hour")
    hour = float(value)
    if not hour.is_integer():
        raise ValueError(f"peakHourEndsOn {value!r} is not a whole hour")
    return int(hour)


def price_slots(points: Sequence[PricePoint], start: datetime, end: datetime) -> list[PriceSlot]:
    """Return a series' points as contiguous slots covering [start, end), None in the holes."""
    return _series_slots(points, start, end, None, 0.0)


def _series_slots(
    points: Sequence[PricePoint], start: datetime, end: datetime, currency: str | None, adder: float
) -> list[PriceSlot]:
    slots: list[PriceSlot] = []
    cursor = start
    for point in sorted(points, key=lambda p: p.start):
        if point.end <= cursor or point.start >= end:
            continue
        if currency is not None and point.currency.upper() != currency.upper():
            raise InputError(
                f"price series {point.series!r} is in {point.currency}, the tariff in {currency}"
            )
        if point.start < cursor and slots:
            raise InputError(
                f"price series {point.series!r} has overlapping slots at {point.start.isoformat()}"
            )
        if any(to_ms(t) % 900_000 for t in (point.start, point.end)):
            raise InputError(
                f"price slot {point.start.isoformat()} of series {point.series!r} is off the 15-minute grid"
            )
        if point.start > cursor:
            slots.append(PriceSlot(cursor, point.start, None))
        slots.append(PriceSlot(max(point.start, start), min(point.end, end), point.price_per_kwh + adder))
        cursor = min(point.end, end)
    if cursor < end:
        slots.append(PriceSlot(cursor, end, None))
    return slots


_FLOAT_KEYS = frozenset(
    {
        "import_per_kwh",
        "peak_per_kwh",
        "offpeak_per_kwh",
        "import_adder_per_kwh",
        "export_per_kwh",
        "export_adder_per_kwh",
        "fee_per_day",
        "fee_per_month",
    }
)
_INT_KEYS = frozenset({"peak_start_hour", "peak_end_hour", "capacity_peak_days"})
_TEXT_KEYS = frozenset({"currency", "import_series", "export_series"})


def _coerce(name: str, value: Any) -> Any:
    try:
        if name in _FLOAT_KEYS:
            return float(value)
        if name in _INT_KEYS:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if name in _TEXT_KEYS:
            if not isinstance(value, str):
                raise ValueError(value)
            return value.upper() if name == "currency" else value
        if name == "peak_weekdays_only":
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        return tuple(float(step) for step in value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"tariff setting {name} has a malformed value {value!r}") from exc
