"""What each vendor's simulator holds to be true, for the end-to-end tests of the hub.

A case builds its vendor's simulator (with an offline window, a register reset and a known
start where asked), the meter the hub polls, and answers three questions from the simulator's
own state (its physics, account or device, read in process) rather than from its HTTP answers:
what every stored row should read (to the precision the vendor shows), what the vendor could
have served in a span, and which documented (or, where the vendor documents none, declared)
quotas its calls must keep.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pytest

from meterhub.model import IntervalEnergy, Meter, Reading
from meterhub.vendors.amsreader.ledger import floor_hour
from meterhub.vendors.amsreader.mapping import SETTLE_S, SOURCE_DAYPLOT, SOURCE_MONTHPLOT
from meterhub.vendors.amsreader.payloads import compact
from meterhub.vendors.iammeter.account import MeterSpec, SiteSpec
from meterhub.vendors.iammeter.payloads import METERSDATA_FLAT
from meterhub.vendors.intellimeter.payloads import INTERVAL, interval_floor
from meterhub.vendors.physics import Household
from meterhub.vendors.umeter.payloads import ZONE as UMETER_ZONE
from meterhub.vendors.umeter.payloads import UMeterSimConfig

__all__ = ["CASES", "Expect", "Outages", "QuotaCheck", "VendorCase", "mismatches"]

_HOUR = timedelta(hours=1)
Expect = dict[str, tuple[float, float]]
"""Reading field -> (true value, the resolution the vendor shows it in)."""


@dataclass(frozen=True)
class Outages:
    """The troubles of a two-day run: the device offline, 5xx bursts, the hub down, a reset."""

    offline: tuple[datetime, datetime]
    bursts: tuple[tuple[datetime, datetime, int, int], ...]
    """(start, end, HTTP status, every Nth call fails)."""
    hub_down: tuple[datetime, datetime]
    reset: datetime


@dataclass(frozen=True)
class QuotaCheck:
    """A limit the calls to some routes must keep: at most ``limit`` in any ``window_s``."""

    what: str
    paths: tuple[str, ...]
    limit: int
    window_s: float

    def breaches(self, call_times: dict[str, list[datetime]]) -> list[str]:
        """Return every window of the simulator's call log that holds one call too many."""
        times = sorted(t for path in self.paths for t in call_times.get(path, []))
        found = []
        for first, last in zip(times, times[self.limit :], strict=False):
            if (last - first).total_seconds() < self.window_s:
                found.append(f"{self.what}: {self.limit + 1} calls from {first} to {last}")
        return found


def mismatches(row: Reading | IntervalEnergy, expect: Expect) -> list[str]:
    """Return how a stored row differs from the truth, beyond half the vendor's resolution."""
    wrong = []
    for name, (truth, resolution) in expect.items():
        stored = getattr(row, name)
        if stored is None or abs(stored - truth) > resolution / 2 + 1e-6:
            where = row.ts if isinstance(row, Reading) else row.start
            phase = f" phase {row.phase}" if isinstance(row, Reading) else ""
            wrong.append(f"{where}{phase} {name}: stored {stored}, true {truth}")
    return wrong


def _env_secret(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> str:
    monkeypatch.setenv(name, value)
    return f"env:{name}"


def _every(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    while start < end:
        yield start
        start += step


class VendorCase(ABC):
    """One vendor: its simulator's options, its meter, its truth, what it serves, its quotas."""

    vendor: ClassVar[str]
    interval_s: ClassVar[int]
    quota_checks: ClassVar[tuple[QuotaCheck, ...]]

    @abstractmethod
    def sim_options(self, start: datetime, outages: Outages | None) -> dict[str, Any]:
        """Return the simulator's ``create_app`` options."""

    def physics_offline(self) -> bool:
        """Return whether the outage's offline window is the simulator's own (else a fault)."""
        return True

    @abstractmethod
    def meter(self, info: dict[str, Any], base_url: str, monkeypatch: pytest.MonkeyPatch) -> Meter:
        """Return the meter of the simulator's account, its secrets as env references."""

    def latest_instant(self, app: Any, now: datetime) -> datetime:
        """Return the instant of the newest data the vendor has at ``now``."""
        return now

    @abstractmethod
    def reading_truth(self, app: Any, reading: Reading) -> Expect:
        """Return what a stored reading should hold (raise AssertionError for a false instant)."""

    def interval_truth(self, app: Any, record: IntervalEnergy) -> Expect:
        """Return what a stored interval record should hold."""
        raise AssertionError(f"{self.vendor} stores no interval {record}")

    def servable_readings(self, app: Any, start: datetime, end: datetime) -> list[datetime]:
        """Return the reading instants in [start, end) the vendor's history serves."""
        return []

    def servable_intervals(
        self, app: Any, start: datetime, end: datetime, now: datetime
    ) -> list[tuple[datetime, str]]:
        """Return (start, source) of interval records in [start, end) history serves at ``now``."""
        return []

    @abstractmethod
    def household(self, app: Any) -> Household:
        """Return the physics behind the meter."""


# --- IAMMETER ---------------------------------------------------------------------------------
class IammeterCase(VendorCase):
    """A single-phase meter of the IAMMETER cloud: latest uploads, 5-minute history."""

    vendor = "iammeter"
    interval_s = 300
    sn = "E2E0001A"
    quota_checks = (
        QuotaCheck("login per hour", ("/api/v1/user/login",), 5, 3600),
        QuotaCheck("login per day", ("/api/v1/user/login",), 30, 86_400),
        QuotaCheck(
            "meterdata per hour",
            ("/api/v1/site/meterdata/{sn}", "/api/v1/site/meterdata2/{sn}"),
            12,
            3600,
        ),
    )

    def sim_options(self, start: datetime, outages: Outages | None) -> dict[str, Any]:
        """Return one site with one meter, offline and reset as the outages say."""
        site = SiteSpec("e2e", phases=1, base_load_w=450.0, initial_import_kwh=1766.59)
        if outages is not None:
            off_start, off_end = outages.offline
            site = replace(
                site, offline_ago=((start - off_start, off_end - off_start),), resets=(outages.reset,)
            )
        meters = (MeterSpec(self.sn, "e2e", METERSDATA_FLAT),)
        return {"start": start, "sites": (site,), "meters": meters, "places": ()}

    def meter(self, info: dict[str, Any], base_url: str, monkeypatch: pytest.MonkeyPatch) -> Meter:
        """Return the meter of the account's only SN."""
        options = {
            "base_url": base_url,
            "username": info["user_name"],
            "password": _env_secret(monkeypatch, "E2E_IAM_PASSWORD", info["password"]),
            "sn": self.sn,
        }
        return Meter("iam", "iammeter", 1, info["tz"], self.interval_s, "", options)

    def latest_instant(self, app: Any, now: datetime) -> datetime:
        """Return the meter's last upload."""
        upload: datetime = app.state.account.meters[self.sn].latest_upload(now)
        return upload

    def reading_truth(self, app: Any, reading: Reading) -> Expect:
        """Return the upload at the reading's instant, rounded like meterdata2."""
        meter = app.state.account.meters[self.sn]
        assert meter.latest_upload(reading.ts) == reading.ts, f"no upload at {reading.ts}"
        assert reading.phase == 0
        state = meter.reading_at(reading.ts).phases[0]
        return {
            "voltage_v": (state.voltage_v, 0.01),
            "current_a": (state.current_a, 0.001),
            "power_w": (state.power_w, 0.1),
            "power_factor": (state.power_factor, 0.01),
            "energy_import_kwh": (state.energy_import_kwh, 0.001),
            "energy_export_kwh": (state.energy_export_kwh, 0.001),
        }

    def servable_readings(self, app: Any, start: datetime, end: datetime) -> list[datetime]:
        """Return the first upload of each 5-minute bucket (meterdatalist2 at the meter's interval)."""
        meter = app.state.account.meters[self.sn]
        bucket_start = datetime.fromtimestamp(
            start.timestamp() // self.interval_s * self.interval_s, start.tzinfo
        )
        return [at for at in meter.uploads(bucket_start, end, self.interval_s) if at >= start]

    def household(self, app: Any) -> Household:
        """Return the site's physics."""
        household: Household = app.state.account.meters[self.sn].household
        return household


# --- smart-MAC --------------------------------------------------------------------------------
class SmartmacCase(VendorCase):
    """A three-line smart-MAC device of the standard rate class; it keeps no history."""

    vendor = "smartmac"
    interval_s = 60
    quota_checks = (QuotaCheck("getdata (standard rate class)", ("/",), 1, 60),)

    def sim_options(self, start: datetime, outages: Outages | None) -> dict[str, Any]:
        """Return a device with PV (so it exports too), offline and reset as told."""
        options: dict[str, Any] = {"start": start, "base_load_w": 300.0, "pv_peak_w": 8000.0}
        if outages is not None:
            options |= {"offline": (outages.offline,), "resets": (outages.reset,)}
        return options

    def meter(self, info: dict[str, Any], base_url: str, monkeypatch: pytest.MonkeyPatch) -> Meter:
        """Return the device as a meter."""
        options = {
            "base_url": base_url,
            "devid": info["devid"],
            "devpass": _env_secret(monkeypatch, "E2E_SM_PIN", info["devpass"]),
        }
        return Meter("sm", "smartmac", info["phases"], "Europe/Oslo", self.interval_s, "", options)

    def reading_truth(self, app: Any, reading: Reading) -> Expect:
        """Return the device's state at its answer's time, in the digits it sends."""
        state = app.state.device.household.state_at(reading.ts)
        if reading.phase == 0:
            total = state.total
            return {
                "voltage_v": (total.voltage_v, 0.01),
                "current_a": (total.current_a, 0.03),
                "power_w": (total.power_w, 3.0),
                "energy_import_kwh": (total.energy_import_kwh, 0.003),
                "energy_export_kwh": (total.energy_export_kwh, 0.003),
            }
        phase = state.phases[reading.phase - 1]
        return {
            "voltage_v": (phase.voltage_v, 0.01),
            "current_a": (abs(phase.current_a), 0.01),
            "power_w": (phase.power_w, 1.0),
            "power_factor": (abs(phase.power_factor), 0.01),
            "energy_import_kwh": (phase.energy_import_kwh, 0.001),
            "energy_export_kwh": (phase.energy_export_kwh, 0.001),
        }

    def household(self, app: Any) -> Household:
        """Return the device's physics."""
        household: Household = app.state.device.household
        return household


# --- Intellimeter -----------------------------------------------------------------------------
class IntellimeterCase(VendorCase):
    """One metering point of the Intellimeter cloud: 5-minute registers and energies."""

    vendor = "intellimeter"
    interval_s = 300
    point = "meter1"
    quota_checks = (
        QuotaCheck("session (declared)", ("/session",), 10, 3600),
        QuotaCheck("data (declared)", ("/data",), 12, 3600),
        QuotaCheck("interval (declared)", ("/interval",), 12, 3600),
        QuotaCheck("file (declared)", ("/file",), 60, 3600),
    )

    def sim_options(self, start: datetime, outages: Outages | None) -> dict[str, Any]:
        """Return the project, its points offline and reset as told."""
        options: dict[str, Any] = {"start": start}
        if outages is not None:
            options |= {"offline": (outages.offline,), "resets": (outages.reset,)}
        return options

    def meter(self, info: dict[str, Any], base_url: str, monkeypatch: pytest.MonkeyPatch) -> Meter:
        """Return the first metering point as a meter."""
        options = {
            "base_url": base_url,
            "username": info["login"]["username"],
            "password": _env_secret(monkeypatch, "E2E_IM_PASSWORD", info["login"]["password"]),
            "point": self.point,
        }
        return Meter("im", "intellimeter", 3, info["tz"], self.interval_s, "", options)

    def _point_id(self, app: Any) -> int:
        point_id: int = app.state.site.point_named(self.point).id
        return point_id

    def latest_instant(self, app: Any, now: datetime) -> datetime:
        """Return the point's latest recorded 5-minute boundary."""
        latest: datetime = app.state.site.readings.latest(self._point_id(app), now)
        return latest

    def reading_truth(self, app: Any, reading: Reading) -> Expect:
        """Return the register at a recorded 5-minute boundary."""
        readings, point_id = app.state.site.readings, self._point_id(app)
        assert interval_floor(reading.ts) == reading.ts, f"{reading.ts} is not a 5-minute boundary"
        assert readings.recorded(point_id, reading.ts), f"nothing recorded at {reading.ts}"
        return {"energy_import_kwh": (readings.register_kwh(point_id, reading.ts), 0.001)}

    def interval_truth(self, app: Any, record: IntervalEnergy) -> Expect:
        """Return the import energy of the 5 minutes ending at the record's end.

        ``/interval`` shows it to 0.001 kWh; history gives it as the difference of two registers
        shown to 0.001 kWh each, so the two may differ by 0.001 kWh.
        """
        readings, point_id = app.state.site.readings, self._point_id(app)
        assert record.end - record.start == INTERVAL and readings.recorded(point_id, record.end)
        return {"import_kwh": (readings.interval_kwh(point_id, record.end), 0.002)}

    def servable_readings(self, app: Any, start: datetime, end: datetime) -> list[datetime]:
        """Return the recorded 5-minute boundaries in [start, end) that ``/file`` exports."""
        readings, point_id = app.state.site.readings, self._point_id(app)
        first = interval_floor(start)
        first += INTERVAL if first < start else timedelta()
        return [ts for ts in _every(first, end, INTERVAL) if readings.recorded(point_id, ts)]

    def household(self, app: Any) -> Household:
        """Return the point's physics."""
        household: Household = app.state.site.readings.households[self._point_id(app)]
        return household


# --- AMS reader -------------------------------------------------------------------------------
class AmsReaderCase(VendorCase):
    """A three-phase AMS reader: readings when polled, hours and days from its plots."""

    vendor = "amsreader"
    interval_s = 300
    quota_checks = (
        QuotaCheck(
            "one call per 2 s (declared)",
            ("/data.json", "/dayplot.json", "/monthplot.json", "/sysinfo.json", "/configuration.json"),
            1,
            2,
        ),
    )

    def sim_options(self, start: datetime, outages: Outages | None) -> dict[str, Any]:
        """Return a reader on a household with PV, offline and reset as told."""
        options: dict[str, Any] = {"start": start, "base_load_w": 300.0, "pv_peak_w": 8000.0}
        if outages is not None:
            options |= {"offline": (outages.offline,), "resets": (outages.reset,)}
        return options

    def meter(self, info: dict[str, Any], base_url: str, monkeypatch: pytest.MonkeyPatch) -> Meter:
        """Return the reader as a meter polled every 5 minutes."""
        return Meter("ams", "amsreader", 3, "Europe/Oslo", self.interval_s, "", {"base_url": base_url})

    def reading_truth(self, app: Any, reading: Reading) -> Expect:
        """Return the reader's snapshot at its clock's second, as data.json shows it."""
        snap = app.state.device.snapshot(reading.ts)
        if reading.phase == 0:
            return {
                "power_w": (snap.import_w - snap.export_w, 1.0),
                "reactive_power_var": (snap.reactive_import_var - snap.reactive_export_var, 1.0),
                "power_factor": (snap.power_factor, 0.01),
                "energy_import_kwh": (snap.energy_import_kwh, 0.001),
                "energy_export_kwh": (snap.energy_export_kwh, 0.001),
                "reactive_import_kvarh": (snap.reactive_import_kvarh, 0.001),
                "reactive_export_kvarh": (snap.reactive_export_kvarh, 0.001),
            }
        phase = snap.phases[reading.phase - 1]
        return {
            "voltage_v": (phase.voltage_v, 0.01),
            "current_a": (phase.current_a, 0.01),
            "power_w": (phase.import_w - phase.export_w, 1.0),
            "power_factor": (phase.power_factor, 0.01),
        }

    def interval_truth(self, app: Any, record: IntervalEnergy) -> Expect:
        """Return the hour (dayplot) or local day (monthplot) the reader's ledger recorded."""
        ledger = app.state.device.ledger
        if record.source == SOURCE_DAYPLOT:
            assert record.end - record.start == timedelta(hours=1)
            import_kwh, export_kwh = ledger.hour_kwh(record.start)
        else:
            assert record.source == SOURCE_MONTHPLOT
            import_kwh, export_kwh = ledger.day_kwh(record.start)
        return {"import_kwh": (compact(import_kwh), 0.01), "export_kwh": (compact(export_kwh), 0.01)}

    def servable_intervals(
        self, app: Any, start: datetime, end: datetime, now: datetime
    ) -> list[tuple[datetime, str]]:
        """Return the closed, settled UTC hours in [start, end) that dayplot shows at ``now``."""
        current = floor_hour(now)
        settled = (now - current).total_seconds() >= SETTLE_S
        newest = current - (_HOUR if settled else 2 * _HOUR)
        oldest = max(start, current - 24 * _HOUR)
        first = floor_hour(oldest) + (_HOUR if floor_hour(oldest) < oldest else timedelta())
        return [(hour, SOURCE_DAYPLOT) for hour in _every(first, min(end, newest + _HOUR), _HOUR)]

    def household(self, app: Any) -> Household:
        """Return the reader's physics."""
        household: Household = app.state.device.household
        return household


# --- UMeter -----------------------------------------------------------------------------------
class UmeterCase(VendorCase):
    """One EAN of a UMeter account: quarter-hour energies and the registers at local midnight."""

    vendor = "umeter"
    interval_s = 900
    quota_checks = (
        QuotaCheck("token (declared)", ("/token",), 10, 3600),
        QuotaCheck(
            "api (declared)",
            ("/api/customer", "/api/v2/measurements/{kind}/{value}", "/api/P4/{ean}/{start}/{end}"),
            240,
            3600,
        ),
    )
    _IMPORT = ("r181", "r182")
    _EXPORT = ("r281", "r282")

    def sim_options(self, start: datetime, outages: Outages | None) -> dict[str, Any]:
        """Return the account; a reset changes nothing UMeter shows (it reads the grid operator)."""
        config = UMeterSimConfig(start=start)
        if outages is not None:
            config = replace(config, site=replace(config.site, resets=(outages.reset,)))
        return {"config": config}

    def physics_offline(self) -> bool:
        """Return False: the offline window is the API being unreachable."""
        return False

    def meter(self, info: dict[str, Any], base_url: str, monkeypatch: pytest.MonkeyPatch) -> Meter:
        """Return the account's EAN as a meter."""
        options = {
            "base_url": base_url,
            "username": info["credentials"]["username"],
            "password": _env_secret(monkeypatch, "E2E_UM_PASSWORD", info["credentials"]["password"]),
            "ean": info["eans"][0],
        }
        return Meter("um", "umeter", 1, info["zone"], self.interval_s, "", options)

    def _registers(self, app: Any, ts: datetime) -> dict[str, float]:
        registers = app.state.server.account.registers_at(ts)
        return {key: round(value, 2) for key, value in registers.items()}

    def latest_instant(self, app: Any, now: datetime) -> datetime:
        """Return the end of the last quarter hour that has ended."""
        return datetime.fromtimestamp(now.timestamp() // 900 * 900, now.tzinfo)

    def reading_truth(self, app: Any, reading: Reading) -> Expect:
        """Return the registers at local midnight (beginReadings), to 0.01 kWh each."""
        local = reading.ts.astimezone(UMETER_ZONE)
        assert (local.hour, local.minute, local.second) == (0, 0, 0), f"{local} is not a midnight"
        registers = self._registers(app, reading.ts)
        return {
            "energy_import_kwh": (sum(registers[k] for k in self._IMPORT), 0.02),
            "energy_export_kwh": (sum(registers[k] for k in self._EXPORT), 0.02),
        }

    def interval_truth(self, app: Any, record: IntervalEnergy) -> Expect:
        """Return the quarter's usage: differences of the registers read to 0.01 kWh."""
        assert record.end - record.start == timedelta(minutes=15)
        before, after = self._registers(app, record.start), self._registers(app, record.end)

        def usage(keys: tuple[str, ...]) -> float:
            return sum(round(after[k] - before[k], 2) for k in keys)

        return {"import_kwh": (usage(self._IMPORT), 1e-6), "export_kwh": (usage(self._EXPORT), 1e-6)}

    def servable_intervals(
        self, app: Any, start: datetime, end: datetime, now: datetime
    ) -> list[tuple[datetime, str]]:
        """Return every quarter in [start, end) that has ended by ``now``."""
        first = datetime.fromtimestamp(-(-start.timestamp() // 900) * 900, start.tzinfo)
        quarter = timedelta(minutes=15)
        return [(q, "umeter:15min") for q in _every(first, end, quarter) if q + quarter <= now]

    def household(self, app: Any) -> Household:
        """Return the household behind the metering point."""
        household: Household = app.state.server.account.household
        return household


CASES: dict[str, VendorCase] = {
    case.vendor: case
    for case in (IammeterCase(), SmartmacCase(), IntellimeterCase(), AmsReaderCase(), UmeterCase())
}
"""Every vendor's case, by vendor name, in the registry's order."""
