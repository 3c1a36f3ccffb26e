"""One simulated AMS reader: its settings, the household behind its meter, and its snapshot.

The snapshot is what the reader knows at one instant; ``data.json`` and both MQTT payload
formats are shaped from it, so the HTTP API and the publisher can never disagree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from meterhub.vendors.physics import Household, MeterState, PhaseState, SimClock, SiteConfig

from .ledger import EnergyLedger, PriceCurve, Totals, floor_hour, local_midnight
from .tariff import DEFAULT_THRESHOLDS_KWH, CapacityState

__all__ = [
    "FIRMWARE_VERSION",
    "NESTED_LAYOUT_SINCE",
    "NO_SENSOR_C",
    "OLD_FIRMWARE_VERSION",
    "UI_SETTINGS",
    "VARIANTS",
    "AmsReaderConfig",
    "PhaseSnapshot",
    "ReaderDevice",
    "Snapshot",
]

REACTIVE_REGISTER_RATIO = 0.2
"""The physics keeps no reactive registers; these grow at this share of the active ones."""
FIRMWARE_VERSION = "v2.3.9"
OLD_FIRMWARE_VERSION = "v2.2.28"
"""The last release before v2.3.0: flat data.json, ``q`` as reactive power."""
NESTED_LAYOUT_SINCE = (2, 3, 0)
"""Firmware from this version on prints ``l1..l3`` in data.json (``q`` = export power); older
firmware prints the flat ``u1..u3``, ``i1..i3``, ``i2e``, ``f1..f3`` and no per-phase power."""
NO_SENSOR_C = -127.0
"""What the reader prints as its temperature when no sensor answers."""
UI_SETTINGS: dict[str, int | str] = {
    **dict(zip("ievarctpdmslhfk", (1, 2, 2, 2, 0, 1, 2, 2, 1, 1, 2, 2, 2, 0, 2), strict=True)),
    "lang": "en",
}
"""Which panels the reader's web UI shows (``sysinfo.ui`` and ``configuration.u``)."""
_NO_PHASE = PhaseState(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

VARIANTS: dict[str, str] = {
    "unset_clock": "no NTP: data.json's clock c counts seconds since boot",
    "old_layout": f"firmware {OLD_FIRMWARE_VERSION}: flat data.json (u1..u3, i1..i3, i2e, f1..f3) "
    "and that version in sysinfo.json",
    "kaifa_it_list2": "a Kaifa MA304T3 on an IT grid sending list 2: l2.e true, per-phase power and "
    "power factors 0, registers 0.000 (no list-3 frame yet)",
    "no_temperature_sensor": "no temperature sensor answers: t is -127, temperature.json lists none",
}
"""The real-world variants the simulated reader reproduces (switched through SimKit)."""
_VARIANT_SETTINGS: dict[str, dict[str, object]] = {
    "unset_clock": {"ntp": False},
    "old_layout": {"firmware_version": OLD_FIRMWARE_VERSION},
    "kaifa_it_list2": {
        "list_type": 2,
        "distribution_system": 1,
        "l2_current_present": False,
        "meter_mfg": 2,
        "meter_model": "MA304T3",
        "list_id": "KFM_001",
    },
    "no_temperature_sensor": {"temperature_sensor": False, "temperature_sensors": ()},
}


@dataclass(frozen=True)
class AmsReaderConfig:
    """Settings of a simulated reader and of the site whose meter it reads."""

    start: datetime | None = None
    tz: str = "Europe/Oslo"
    phases: int = 3
    base_load_w: float = 1500.0
    pv_peak_w: float = 0.0
    latitude: float = 59.91
    longitude: float = 10.75
    replay_trace: Path | None = None
    offline: tuple[tuple[datetime, datetime], ...] = ()
    resets: tuple[datetime, ...] = ()
    replacements: tuple[tuple[datetime, float], ...] = ()
    initial_import_kwh: float = 1234.5
    initial_export_kwh: float = 0.0
    list_type: int = 4
    """The HAN list the meter sends: 1 (import power only), 2 (adds export, reactive power,
    voltages and currents), 3 (adds the registers), 4 (adds per-phase power and power factors).
    data.json prints zeros for what the meter does not send."""
    distribution_system: int = 2
    """1 = IT (230 V between phases), 2 = TN (400 V)."""
    l2_current_present: bool = True
    """IT-grid meters (e.g. Kaifa MA304T3) measure no L2 current; ``l2.e`` is then true."""
    firmware_version: str = FIRMWARE_VERSION
    """``sysinfo.json``'s version; before v2.3.0 data.json has the flat layout."""
    ntp: bool = True
    """Without NTP the reader's clock ``c`` counts seconds since boot."""
    main_fuse_a: int = 40
    meter_mfg: int = 3
    meter_model: str = "6841131BN243101040"
    meter_id: str = "5706567274389702"
    list_id: str = "Kamstrup_V0001"
    hostname: str = "ams-sim"
    username: str = ""
    password: str = ""
    """HTTP Basic auth protects every route when a password is set."""
    thresholds_kwh: tuple[int, ...] = DEFAULT_THRESHOLDS_KWH
    currency: str = "NOK"
    price_rows: tuple[dict[str, Any], ...] = ()
    """``/priceconfig.json`` rows (``{"t", "n", "d", "a", "h", "v", "s", "e"}``) the user set up."""
    price_area: str = "10YNO-1--------2"
    temperature_sensor: bool = False
    """One 1-Wire sensor fitted, reading the household's temperature."""
    temperature_sensors: tuple[tuple[str, float], ...] = ()
    """1-Wire sensors fitted instead, each its address (16 hex digits) and a fixed reading in °C
    (-127 for a sensor that does not answer); data.json's ``t`` is then their valid average."""
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_topic: str = "amsreader"
    mqtt_interval_s: float = 5.0

    @property
    def nested_layout(self) -> bool:
        """Say whether data.json has ``l1..l3`` (v2.3.0 on) rather than the flat layout."""
        match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", self.firmware_version)
        if match is None:
            return True  # a development build of current sources
        major, minor, patch = (int(part) for part in match.groups())
        return (major, minor, patch) >= NESTED_LAYOUT_SINCE

    def site(self, seed: int) -> SiteConfig:
        """Return the physics configuration of the metered household."""
        return SiteConfig(
            seed=seed,
            phases=self.phases,
            latitude=self.latitude,
            longitude=self.longitude,
            tz=self.tz,
            base_load_w=self.base_load_w,
            pv_peak_w=self.pv_peak_w,
            replay_trace=self.replay_trace,
            offline=self.offline,
            resets=self.resets,
            replacements=self.replacements,
            initial_import_kwh=self.initial_import_kwh,
            initial_export_kwh=self.initial_export_kwh,
        )


@dataclass(frozen=True, slots=True)
class PhaseSnapshot:
    """One phase as the HAN port reports it: power split into import and export parts."""

    voltage_v: float
    current_a: float
    import_w: int
    export_w: int
    power_factor: float
    energy_import_kwh: float
    energy_export_kwh: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the reader knows at one instant."""

    ts: datetime
    uptime_s: int
    import_w: int
    export_w: int
    reactive_import_var: int
    reactive_export_var: int
    energy_import_kwh: float
    energy_export_kwh: float
    reactive_import_kvarh: float
    reactive_export_kvarh: float
    power_factor: float
    phases: tuple[PhaseSnapshot, PhaseSnapshot, PhaseSnapshot]
    temperature_c: float
    sensors: tuple[tuple[str, float], ...]
    """The 1-Wire sensors' addresses and readings (°C, one decimal), as ``temperature.json`` lists them."""
    rssi_dbm: int
    vcc_v: float
    price: float
    hour: Totals
    day: Totals
    month: Totals
    capacity: CapacityState


def _phase(state: PhaseState) -> PhaseSnapshot:
    return PhaseSnapshot(
        voltage_v=round(float(state.voltage_v), 2),
        current_a=round(float(state.current_a), 2),
        import_w=round(max(float(state.power_w), 0.0)),
        export_w=round(max(-float(state.power_w), 0.0)),
        power_factor=round(float(state.power_factor), 2),
        energy_import_kwh=round(float(state.energy_import_kwh), 3),
        energy_export_kwh=round(float(state.energy_export_kwh), 3),
    )


class ReaderDevice:
    """A reader on one household's meter, running on a simulated clock."""

    def __init__(self, config: AmsReaderConfig, seed: int = 1, speed: float = 1.0) -> None:
        self._config = config
        self.variant: Callable[[str], bool] = lambda _name: False
        """Whether a variant of :data:`VARIANTS` is on (the simulator hands in its kit's)."""
        self.seed = seed
        self.zone = ZoneInfo(config.tz)
        self.clock = SimClock(config.start, speed)
        self.booted_at = self.clock.now()
        self.household = Household(config.site(seed))
        self.prices = PriceCurve(seed, self.zone)
        self.ledger = EnergyLedger(self.household, self.prices, self.zone, config.thresholds_kwh)
        digest = hashlib.sha256(f"amsreader:{seed}".encode()).digest()
        self.mac = ":".join(f"{byte:02X}" for byte in (0x48, 0x27, 0xE2, *digest[:3]))

    @property
    def config(self) -> AmsReaderConfig:
        """Return the reader's settings with the variants that are on applied."""
        settings: dict[str, Any] = {}
        for name, changes in _VARIANT_SETTINGS.items():
            if self.variant(name):
                settings.update(changes)
        return replace(self._config, **settings) if settings else self._config

    @config.setter
    def config(self, config: AmsReaderConfig) -> None:
        self._config = config

    def is_offline(self, now: datetime) -> bool:
        """Say whether the reader answers nothing at ``now`` (read-only)."""
        return self.household.is_offline(now)

    def _phases(self, state: MeterState) -> tuple[PhaseSnapshot, PhaseSnapshot, PhaseSnapshot]:
        found = [_phase(phase) for phase in state.phases]
        padded = [*found, *[_phase(_NO_PHASE)] * (3 - len(found))]
        if not self.config.l2_current_present and len(found) == 3:
            padded[1] = replace(padded[1], current_a=0.0)
        return padded[0], padded[1], padded[2]

    def _sensors(self, temperature_c: float) -> tuple[tuple[str, float], ...]:
        config = self.config
        if config.temperature_sensors:
            return tuple((address, round(value, 1)) for address, value in config.temperature_sensors)
        if config.temperature_sensor:
            return (("28FF" + self.mac.replace(":", "")[-12:], round(temperature_c, 1)),)
        return ()

    def snapshot(self, now: datetime) -> Snapshot:
        """Return what the reader knows at ``now`` (read-only)."""
        state = self.household.state_at(now)
        total = state.total
        power_w, reactive_var = float(total.power_w), float(total.reactive_power_var)
        ledger = self.ledger
        import_kwh = round(float(total.energy_import_kwh), 3)
        export_kwh = round(float(total.energy_export_kwh), 3)
        digest = hashlib.sha256(f"rssi:{self.seed}:{int(now.timestamp()) // 10}".encode()).digest()
        return Snapshot(
            ts=now.astimezone(UTC),
            uptime_s=max(int((now - self.booted_at).total_seconds()), 0),
            import_w=round(max(power_w, 0.0)),
            export_w=round(max(-power_w, 0.0)),
            reactive_import_var=round(max(reactive_var, 0.0)),
            reactive_export_var=round(max(-reactive_var, 0.0)),
            energy_import_kwh=import_kwh,
            energy_export_kwh=export_kwh,
            reactive_import_kvarh=round(import_kwh * REACTIVE_REGISTER_RATIO, 3),
            reactive_export_kvarh=round(export_kwh * REACTIVE_REGISTER_RATIO, 3),
            power_factor=round(float(total.power_factor), 2),
            phases=self._phases(state),
            temperature_c=round(float(state.temperature_c), 2),
            sensors=self._sensors(float(state.temperature_c)),
            rssi_dbm=-55 - digest[0] % 15,
            vcc_v=round(3.28 + digest[1] % 5 / 100, 3),
            price=self.prices.price_at(now),
            hour=ledger.totals(floor_hour(now), now),
            day=ledger.totals(local_midnight(now, self.zone), now),
            month=ledger.totals(_month_start(now, self.zone), now),
            capacity=ledger.capacity(now),
        )


def _month_start(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    return datetime(local.year, local.month, 1, tzinfo=zone).astimezone(UTC)
