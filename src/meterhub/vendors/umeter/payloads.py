"""The simulated UMeter user: customer facts, metering point and tariff registers.

``customer()`` has the structure of the captured ``GET /api/customer`` answer
(``fixtures/umeter/customer.redacted.json``): same keys, nesting and value types. Registers
follow the Dutch OBIS convention: r181/r281 are import and export in the low (off-peak, "dal")
tariff, r182/r282 in the normal (peak) tariff. Peak hours are weekdays from
``peak_hour_starts_on`` to ``peak_hour_ends_on`` local time (public holidays are not modelled).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from meterhub.vendors.physics import REGISTER_EPOCH, Household, SiteConfig

__all__ = ["ZONE", "UMeterAccount", "UMeterSimConfig", "local_midnight", "local_text"]

ZONE = ZoneInfo("Europe/Amsterdam")
"""UMeter's calendar: days, months and quarter hours are Dutch local time."""

Json = dict[str, Any]
_PEAK_SHARE = 0.6  # share of the initial registers counted in the peak tariff


@dataclass(frozen=True)
class UMeterSimConfig:
    """One simulated UMeter user with one address (a Dutch household with solar panels)."""

    seed: int = 1
    speed: float = 1.0
    start: datetime | None = None
    username: str = "demo@umeter.example"
    password: str = "umeter-demo"  # noqa: S105 - the simulator's published demo login
    token_lifetime_s: int = 86_400
    price_peak: float = 0.26119
    price_off_peak: float = 0.20976
    flat_fee: float = 64.8
    peak_hour_starts_on: int = 7
    peak_hour_ends_on: int = 23
    incl_vat: bool = True
    recorded_days: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Captured ``date/YYYYMMDD`` answers served as they are for those days (keyed YYYYMMDD)."""
    site: SiteConfig = field(
        default_factory=lambda: SiteConfig(
            latitude=52.09,
            longitude=5.12,
            tz="Europe/Amsterdam",
            base_load_w=250.0,
            pv_peak_w=3500.0,
            initial_import_kwh=12_000.0,
            initial_export_kwh=6_000.0,
        )
    )


def local_text(ts: datetime) -> str:
    """Format an instant as UMeter does: local ``YYYY-MM-DD HH:MM:SS``."""
    return ts.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")


def local_midnight(day: date) -> datetime:
    """Return the UTC instant at which local ``day`` starts."""
    return datetime.combine(day, time(), tzinfo=ZONE).astimezone(UTC)


class UMeterAccount:
    """The simulated user: customer facts, the metering point and its tariff registers."""

    def __init__(self, config: UMeterSimConfig) -> None:
        self.config = config
        self.household = Household(replace(config.site, seed=config.seed))
        digest = hashlib.sha256(f"umeter:{config.seed}".encode()).hexdigest()
        self.ean = _ean(int(digest[:12], 16))
        self.customer_id = str(uuid.UUID(digest[:32]))
        self.address_id = 60_000 + int(digest[32:36], 16) % 10_000
        self._peak_days = _peak_ledger(
            self.household.config, config.peak_hour_starts_on, config.peak_hour_ends_on
        )

    def customer(self) -> Json:
        """Return the ``GET /api/customer`` answer."""
        cfg = self.config
        address = {
            "id": self.address_id,
            "gId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"umeter:{self.ean}")),
            "title": "Thuis",
            "status": "Ok",
            "elecMeterNumber": f"E{self.ean[-10:]}",
            "street": "Simulatiestraat",
            "buildingNr": 1 + cfg.seed % 200,
            "buildingNrEx": "",
            "city": "Utrecht",
            "zipCode": "3511 AA",
            "yearBuilt": 2001,
            "sqMeters": 100,
            "buildingType": "Row",
            "residents": 4,
            "knmiStationId": 260,
            "supplier": "Eneco",
            "energyContractEndsOn": "20321231",
            "contractAlarm": True,
            "bba": 25.0,
            "bbaGoal": 25.0,
            "inclVAT": cfg.incl_vat,
            "shouldUseOnlyCommercialTariffs": False,
            "energyYearStartsOn": 8,
            "energyContractStartsOn": "20200101",
            "eEan": {
                "ean": self.ean,
                "pricePeak": float(cfg.price_peak),
                "priceOffPeak": float(cfg.price_off_peak),
                "flatFee": float(cfg.flat_fee),
                "peakHourEndsOn": cfg.peak_hour_ends_on,
                "status": "Ok",
            },
            "tussenMeters": [],
            "inbetweenMeters": [],
            "devices": [{"id": self.ean, "name": "Main elec meter", "type": "mainelec"}],
            "createdAt": "2022-09-23T22:54:50.577Z",
        }
        return {
            "id": self.customer_id,
            "surName": "Simulatie",
            "email": cfg.username,
            "adviserCode": "umeter",
            "hasAcceptedGDPR": True,
            "hasAcceptedNewsLetter": False,
            "emailSettings": {
                "newFeatures": False,
                "usageNotificationDaily": False,
                "usageNotificationWeekly": False,
                "usageNotificationMonthly": False,
                "energyContractAlarm": False,
            },
            "lang": "NL",
            "addresses": [address],
            "tussenMeters": [],
            "p1Devices": [],
            "isDemoCustomer": False,
        }

    def registers_at(self, ts: datetime) -> dict[str, float]:
        """Return the four tariff registers (kWh) at ``ts``."""
        site = self.household.config
        total_in, total_out = self._signed_energy(ts)
        peak_in, peak_out = self._peak_since_epoch(ts)
        return {
            "r181": site.initial_import_kwh * (1 - _PEAK_SHARE) + total_in - peak_in,
            "r182": site.initial_import_kwh * _PEAK_SHARE + peak_in,
            "r281": site.initial_export_kwh * (1 - _PEAK_SHARE) + total_out - peak_out,
            "r282": site.initial_export_kwh * _PEAK_SHARE + peak_out,
        }

    def is_peak(self, ts: datetime) -> bool:
        """Return whether the normal (peak) tariff applies at ``ts``."""
        local = ts.astimezone(ZONE)
        hours = self.config.peak_hour_starts_on <= local.hour < self.config.peak_hour_ends_on
        return local.weekday() < 5 and hours

    def outdoor_temperature_c(self, ts: datetime) -> float:
        """Return the KNMI-station temperature the answers show, to 0.1 degC."""
        local = ts.astimezone(ZONE)
        season = -7.0 * math.cos(2 * math.pi * (local.timetuple().tm_yday - 20) / 365.25)
        daily = -3.0 * math.cos(2 * math.pi * (local.hour + local.minute / 60 - 4) / 24)
        digest = hashlib.sha256(f"knmi:{self.config.seed}:{local.date()}".encode()).digest()
        weather = (digest[0] / 255.0 - 0.5) * 4.0
        return round(10.5 + season + daily + weather, 1)

    def sun_info(self, day: date) -> Json:
        """Return sunrise and sunset of local ``day`` at the address."""
        site = self.household.config
        doy = day.timetuple().tm_yday
        declination = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365.0)
        b = 2 * math.pi * (doy - 81) / 364.0
        eot_min = 9.87 * math.sin(2 * b) - 7.53 * math.cos(b) - 1.5 * math.sin(b)
        lat = math.radians(site.latitude)
        cos_h = (math.sin(math.radians(-0.833)) - math.sin(lat) * math.sin(declination)) / (
            math.cos(lat) * math.cos(declination)
        )
        half_day_h = math.degrees(math.acos(max(-1.0, min(1.0, cos_h)))) / 15.0
        noon_utc_h = 12.0 - site.longitude / 15.0 - eot_min / 60.0
        midnight = datetime.combine(day, time(), tzinfo=UTC)
        return {
            "sunRise": local_text(midnight + timedelta(hours=noon_utc_h - half_day_h)),
            "sunSet": local_text(midnight + timedelta(hours=noon_utc_h + half_day_h)),
        }

    def _signed_energy(self, ts: datetime) -> tuple[float, float]:
        """Return (import, export) kWh from REGISTER_EPOCH to ``ts``, negative before it."""
        if ts >= REGISTER_EPOCH:
            return self.household.energy_between(REGISTER_EPOCH, ts)
        before_in, before_out = self.household.energy_between(ts, REGISTER_EPOCH)
        return -before_in, -before_out

    def _peak_since_epoch(self, ts: datetime) -> tuple[float, float]:
        """Return peak-tariff (import, export) kWh from REGISTER_EPOCH to ``ts``."""
        day = ts.astimezone(ZONE).date()
        start_in, start_out = self._peak_before(day)
        window_start, window_end = self._peak_window(day)
        if window_start is None or window_end is None or ts <= window_start:
            return start_in, start_out
        part_in, part_out = self.household.energy_between(window_start, min(ts, window_end))
        return start_in + part_in, start_out + part_out

    def _peak_before(self, day: date) -> tuple[float, float]:
        """Return peak (import, export) kWh between the epoch's local day and ``day`` (signed)."""
        known = self._peak_days.get(day)
        if known is not None:
            return known
        step = timedelta(days=1 if day > _epoch_day() else -1)
        current = day - step
        while current not in self._peak_days:
            current -= step
        while current != day:
            total_in, total_out = self._peak_days[current]
            counted = current if step.days > 0 else current + step
            day_in, day_out = self._peak_of(counted)
            sign = 1.0 if step.days > 0 else -1.0
            current += step
            self._peak_days[current] = (total_in + sign * day_in, total_out + sign * day_out)
        return self._peak_days[day]

    def _peak_of(self, day: date) -> tuple[float, float]:
        start, end = self._peak_window(day)
        if start is None or end is None:
            return 0.0, 0.0
        return self.household.energy_between(start, end)

    def _peak_window(self, day: date) -> tuple[datetime | None, datetime | None]:
        if day.weekday() >= 5:
            return None, None
        cfg = self.config
        start = datetime.combine(day, time(cfg.peak_hour_starts_on), tzinfo=ZONE)
        end = datetime.combine(day, time(cfg.peak_hour_ends_on % 24), tzinfo=ZONE)
        if cfg.peak_hour_ends_on >= 24:
            end = datetime.combine(day + timedelta(days=1), time(), tzinfo=ZONE)
        return start.astimezone(UTC), end.astimezone(UTC)


@lru_cache(maxsize=32)
def _peak_ledger(site: SiteConfig, starts_on: int, ends_on: int) -> dict[date, tuple[float, float]]:
    """Return the shared memo of peak energy before each local day (walking it is costly)."""
    return {_epoch_day(): (0.0, 0.0)}


def _epoch_day() -> date:
    return REGISTER_EPOCH.astimezone(ZONE).date()


def _ean(number: int) -> str:
    """Return a valid 18-digit Dutch EAN (GS1 check digit) derived from ``number``."""
    body = "871687" + f"{number % 10**11:011d}"
    total = sum(int(digit) * (3 if i % 2 == 0 else 1) for i, digit in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)
