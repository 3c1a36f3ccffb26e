"""Shape the AMS reader's HTTP answers exactly as its API document shows them.

Pure functions of a :class:`ReaderDevice` and an instant. Numbers keep the document's kinds:
fields it shows as ``0`` are integers, fields it shows as ``0.0`` are floats, and the plot and
peak values are compact (``5`` or ``5.12``) as in its examples.

``data.json`` follows the reader's settings as the firmware does: the flat layout before
v2.3.0, ``l2.e`` true when the meter sends no L2 current, zeros for what the meter's HAN list
does not carry, the clock as seconds since boot without NTP, -127 without a temperature sensor.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .device import NO_SENSOR_C, UI_SETTINGS, PhaseSnapshot, ReaderDevice, Snapshot
from .ledger import HOUR, Totals, day_start, floor_hour, local_midnight
from .tariff import PEAK_DAYS, THRESHOLD_SENTINEL

__all__ = [
    "PRICE_HOURS",
    "compact",
    "data_json",
    "dayplot_json",
    "energyprice_json",
    "importprice_json",
    "monthplot_json",
    "priceconfig_json",
    "sysinfo_json",
    "tariff_json",
    "temperature_json",
]

Json = dict[str, Any]
PRICE_HOURS = 36
PRICE_SOURCE = "EOE"
"""ENTSO-E, the default price source of the reader."""
_FREE_HEAP_BYTES = 118_000
PRICE_DAY_ZONE = ZoneInfo("Europe/Oslo")
"""The reader counts its price day from midnight CET/CEST (the same midnight as Oslo's)."""
IMPORTPRICE_SINCE = (2, 5, 0)
"""``/importprice.json`` (15- or 60-minute prices from midnight) exists from this version on."""


def compact(value: float, digits: int = 2) -> int | float:
    """Round ``value`` and give an int when nothing is after the point, as the vendor prints."""
    rounded = round(float(value), digits)
    return int(rounded) if rounded.is_integer() else rounded


def _max_import_w(device: ReaderDevice) -> int:
    config = device.config
    if config.phases == 1:
        return round(230 * config.main_fuse_a)
    line_v = 230 if config.distribution_system == 1 else 400
    return round(3**0.5 * line_v * config.main_fuse_a)


def _totals(totals: Totals) -> Json:
    return {
        "u": round(totals.use_kwh, 2),
        "c": round(totals.cost, 2),
        "p": round(totals.produced_kwh, 2),
        "i": round(totals.income, 2),
    }


def _line(phase: PhaseSnapshot, list_type: int) -> Json:
    per_phase = list_type >= 4
    return {
        "u": phase.voltage_v if list_type >= 2 else 0.0,
        "i": phase.current_a if list_type >= 2 else 0.0,
        "p": phase.import_w if per_phase else 0,
        "q": phase.export_w if per_phase else 0,
        "f": phase.power_factor if per_phase else 0.0,
    }


def _price(value: float) -> float:
    return round(value, 2 if abs(value) > 1.0 else 4)


def _peak_values(snapshot: Snapshot) -> list[float]:
    values = sorted((peak.energy_kwh for peak in snapshot.capacity.peaks), reverse=True)
    return [float(value) for value in values] + [0.0] * (PEAK_DAYS - len(values))


def _flat_phases(lines: list[Json], l2_missing: bool) -> Json:
    """The per-phase keys of firmware before v2.3.0: no per-phase power."""
    l1, l2, l3 = lines
    return {
        "u1": l1["u"], "u2": l2["u"], "u3": l3["u"],
        "i1": l1["i"], "i2": l2["i"], "i2e": l2_missing, "i3": l3["i"],
    }  # fmt: skip


def data_json(device: ReaderDevice, snapshot: Snapshot, mqtt_status: int = 0) -> Json:
    """Return ``/data.json``: the latest meter payload and the reader's own state."""
    config = device.config
    list_type = config.list_type
    lines = [_line(phase, list_type) for phase in snapshot.phases]
    l2_missing = not config.l2_current_present
    registers = list_type >= 3
    export = list_type >= 2
    power_factor = snapshot.power_factor if list_type >= 4 else 0.0
    meter: Json = {
        "i": snapshot.import_w,
        "e": snapshot.export_w if export else 0,
        "w": snapshot.import_w - (snapshot.export_w if export else 0),
        "ri": snapshot.reactive_import_var if export else 0,
        "re": snapshot.reactive_export_var if export else 0,
        "ic": snapshot.energy_import_kwh if registers else 0.0,
        "ec": snapshot.energy_export_kwh if registers else 0.0,
        "ric": snapshot.reactive_import_kvarh if registers else 0.0,
        "rec": snapshot.reactive_export_kvarh if registers else 0.0,
    }
    if config.nested_layout:
        phases: Json = {
            "l1": lines[0],
            "l2": {**lines[1], "e": l2_missing},
            "l3": lines[2],
            "f": power_factor,
        }
    else:
        del meter["w"]
        phases = {
            **_flat_phases(lines, l2_missing),
            "f": power_factor,
            **{f"f{n}": line["f"] for n, line in enumerate(lines, 1)},
        }
    prices: Json = {"p": _price(snapshot.price), "px": _price(snapshot.price)}
    if not config.nested_layout:
        del prices["px"]
    return {
        "im": _max_import_w(device),
        "om": round(config.pv_peak_w),
        "mf": config.main_fuse_a,
        **meter,
        **phases,
        "v": snapshot.vcc_v,
        "r": snapshot.rssi_dbm,
        "t": _reader_temperature(config.temperature_sensors, snapshot),
        "u": snapshot.uptime_s,
        "m": _FREE_HEAP_BYTES,
        "em": 1,
        "hm": 1,
        "wm": 1 if snapshot.rssi_dbm > -75 else 2,
        "mm": mqtt_status,
        "me": 0,
        **prices,
        "mt": config.meter_mfg,
        "ds": config.distribution_system,
        "ea": {
            "x": snapshot.capacity.month_max_kwh,
            "p": _peak_values(snapshot),
            "t": snapshot.capacity.threshold_kwh,
            "h": _totals(snapshot.hour),
            "d": _totals(snapshot.day),
            "m": _totals(snapshot.month),
        },
        "c": int(snapshot.ts.timestamp()) if config.ntp else snapshot.uptime_s,
    }


def dayplot_json(device: ReaderDevice, now: datetime) -> Json:
    """Return ``/dayplot.json``: import and export of the last 24 closed hours by UTC hour."""
    payload: Json = {"unit": "kwh"}
    by_hour: dict[int, tuple[float, float]] = {}
    current = floor_hour(now)
    for back in range(24, 0, -1):
        start = current - HOUR * back
        by_hour[start.hour] = device.ledger.hour_kwh(start)
    for hour in range(24):
        import_kwh, export_kwh = by_hour[hour]
        payload[f"i{hour:02d}"] = compact(import_kwh)
        payload[f"e{hour:02d}"] = compact(export_kwh)
    return payload


def monthplot_json(device: ReaderDevice, now: datetime) -> Json:
    """Return ``/monthplot.json``: import and export per day of month, 1 to 31.

    Days of this month that have ended show this month; the reader's ring keeps last month's
    figure for today and later days until they end (zero where last month had no such day).
    """
    zone = device.zone
    today = now.astimezone(zone).date()
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    last_month_days = calendar.monthrange(last_month_end.year, last_month_end.month)[1]
    payload: Json = {"unit": "kwh"}
    for day in range(1, 32):
        if day < today.day:
            start_day = first.replace(day=day)
        elif day <= last_month_days:
            start_day = last_month_end.replace(day=day)
        else:
            start_day = None
        energy = (0.0, 0.0)
        if start_day is not None:
            energy = device.ledger.day_kwh(day_start(start_day, zone))
        payload[f"i{day:02d}"] = compact(energy[0])
        payload[f"e{day:02d}"] = compact(energy[1])
    return payload


def energyprice_json(device: ReaderDevice, now: datetime) -> Json:
    """Return ``/energyprice.json``: 36 hourly prices from the current hour, null if unknown."""
    payload: Json = {"currency": device.config.currency, "source": PRICE_SOURCE}
    for offset, price in enumerate(device.prices.ahead(now, PRICE_HOURS)):
        payload[f"{offset:02d}"] = price
    return payload


def serves_importprice(firmware_version: str) -> bool:
    """Say whether a firmware version serves ``/importprice.json`` (v2.5.0 and later)."""
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", firmware_version)
    if match is None:
        return True  # a development build of current sources
    return tuple(int(part) for part in match.groups()) >= IMPORTPRICE_SINCE


def importprice_json(device: ReaderDevice, now: datetime) -> Json | None:
    """Return ``/importprice.json``: hourly prices from the price day's midnight to the end of
    tomorrow, null where not yet published; None (404) on firmware before v2.5.0."""
    if not serves_importprice(device.config.firmware_version):
        return None
    midnight = local_midnight(now, PRICE_DAY_ZONE)
    end = local_midnight(now, PRICE_DAY_ZONE, 2)
    known_until = device.prices.known_until(now)
    count = int((end - midnight) / HOUR)
    slots = [midnight + HOUR * index for index in range(count)]
    return {
        "currency": device.config.currency,
        "source": PRICE_SOURCE,
        "resolution": 60,
        "direction": "import",
        "cursor": int((floor_hour(now) - midnight) / HOUR),
        "importExportPriceDifferent": False,
        "prices": [device.prices.price_at(slot) if slot < known_until else None for slot in slots],
    }


def tariff_json(device: ReaderDevice, now: datetime) -> Json:
    """Return ``/tariff.json``: thresholds, this month's daily peaks, next step and month value."""
    capacity = device.ledger.capacity(now)
    return {
        "t": [*device.config.thresholds_kwh, THRESHOLD_SENTINEL],
        "p": [{"d": peak.day, "h": peak.hour, "v": compact(peak.energy_kwh)} for peak in capacity.peaks],
        "c": capacity.threshold_kwh,
        "m": float(capacity.month_max_kwh),
    }


def priceconfig_json(device: ReaderDevice) -> Json:
    """Return ``/priceconfig.json``: the reader's price modifier rows (none unless configured)."""
    return {"o": [dict(row) for row in device.config.price_rows]}


def _reader_temperature(configured: tuple[tuple[str, float], ...], snapshot: Snapshot) -> float:
    """Return data.json's ``t``: the average of the sensors that answer (above -85), else -127."""
    if not configured:
        return snapshot.temperature_c if snapshot.sensors else NO_SENSOR_C
    valid = [value for _address, value in snapshot.sensors if value > -85]
    return round(sum(valid) / len(valid), 2) if valid else NO_SENSOR_C


def temperature_json(device: ReaderDevice, snapshot: Snapshot) -> Json:
    """Return ``/temperature.json``: the sensor count ``c`` and one entry per sensor in ``s``.

    Each entry is ``{"i": index, "a": address (16 upper-case hex digits), "n": "", "c": 1,
    "v": reading}``, as the firmware prints it; ``s`` is empty without a sensor.
    """
    sensors = [
        {"i": index, "a": address.upper(), "n": "", "c": 1, "v": value}
        for index, (address, value) in enumerate(snapshot.sensors)
    ]
    return {"c": len(sensors), "s": sensors}


def sysinfo_json(device: ReaderDevice, now: datetime) -> Json:
    """Return ``/sysinfo.json``: firmware, chip, network, meter and last month's figures."""
    config = device.config
    zone = device.zone
    this_first = now.astimezone(zone).date().replace(day=1)
    last_first = (this_first - timedelta(days=1)).replace(day=1)
    last_month = device.ledger.totals(day_start(last_first, zone), day_start(this_first, zone))
    offset = now.astimezone(zone).utcoffset() or timedelta()
    mac_last = device.mac.split(":")
    ap_mac = ":".join([*mac_last[:5], f"{(int(mac_last[5], 16) + 1) % 256:02X}"])
    return {
        "version": config.firmware_version,
        "chip": "esp32s2",
        "chipId": "".join(mac_last[4:]),
        "cpu": 160,
        "mac": device.mac,
        "apmac": ap_mac,
        "board": 5,
        "vndcfg": True,
        "usrcfg": True,
        "fwconsent": 1,
        "hostname": config.hostname,
        "booting": False,
        "upgrading": False,
        "net": {
            "ip": "127.0.0.1",
            "mask": "255.255.255.0",
            "gw": "127.0.0.1",
            "dns1": "1.1.1.1",
            "dns2": "",
            "ipv6": "",
            "dns1v6": "",
            "dns2v6": "",
        },
        "if": {"eth": False},
        "meter": {"mfg": config.meter_mfg, "model": config.meter_model, "id": config.meter_id},
        "ui": UI_SETTINGS,
        "security": 1 if config.password else 0,
        "context": "",
        "boot_reason": 3,
        "ex_cause": 3,
        "upgrade": {"x": 2, "e": 0, "f": "v2.3.8", "t": config.firmware_version},
        "last_month": {
            "u": compact(last_month.use_kwh, 1),
            "c": compact(last_month.cost, 1),
            "p": compact(last_month.produced_kwh, 1),
            "i": compact(last_month.income, 1),
        },
        "clock_offset": int(offset.total_seconds() // 3600),
        "features": ["rdebug", "kmp"],
    }
