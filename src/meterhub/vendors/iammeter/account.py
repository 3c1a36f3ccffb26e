"""The simulated IAMMETER account: its sites, meters, places, upload schedule and offline gaps.

Every meter uploads once a minute (a few seconds of deterministic jitter, as real meters do);
an upload is the physics state at that instant. A meter inside one of its site's offline windows
uploads nothing, so it has no history there and its latest data is the last upload before.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from meterhub.vendors.iammeter.payloads import (
    METERSDATA_FLAT,
    METERSDATA_NEM,
    METERSDATA_NESTED_5,
    METERSDATA_NESTED_7,
    EnergyBucket,
    MetersdataShape,
    OfflineGap,
)
from meterhub.vendors.physics import (
    REGISTER_EPOCH,
    Household,
    MeterState,
    PhaseState,
    SiteConfig,
)

__all__ = [
    "DEFAULT_METERS",
    "DEFAULT_PLACES",
    "DEFAULT_SITES",
    "SPECIAL_LOAD_SHARE",
    "UPLOAD_INTERVAL_S",
    "Account",
    "MeterKind",
    "MeterSpec",
    "PlaceSpec",
    "SimMeter",
    "SiteSpec",
    "build_account",
]

UPLOAD_INTERVAL_S = 60
"""IAMMETER meters upload one reading a minute."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PV_VOLTAGE_FALLBACK_V = 230.0
_PV_POWER_FACTOR = 0.99


class MeterKind(StrEnum):
    """What a meter measures: the grid connection, a PV inverter's output or a special load."""

    GRID = "grid"
    SOLAR = "solar"
    SPECIAL = "special"
    """A load behind the grid meter (a heat pump): :data:`SPECIAL_LOAD_SHARE` of the site's load."""


SPECIAL_LOAD_SHARE = 0.3
"""The share of its site's load a special-load meter measures."""


@dataclass(frozen=True, slots=True)
class SiteSpec:
    """One household of the account; the meters of a site share its physics."""

    name: str
    phases: int
    base_load_w: float
    pv_peak_w: float = 0.0
    initial_import_kwh: float = 1234.5
    offline_ago: tuple[tuple[timedelta, timedelta], ...] = ()
    """Offline windows as (how long before the clock start it began, how long it lasted)."""
    resets: tuple[datetime, ...] = ()
    """Instants (aware) at which the site's registers are reset to zero."""


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """One meter of the account: serial, site, role and how metersdata shows it."""

    serial: str
    site: str
    shape: MetersdataShape
    kind: MeterKind = MeterKind.GRID
    wired_phases: int | None = None
    """Phases connected to the meter (None: all of the site's); the others read zero."""


@dataclass(frozen=True, slots=True)
class PlaceSpec:
    """A place (IAMMETER "My Places"): a grid meter, optionally a solar and a special-load meter."""

    place_id: int
    grid_serial: str
    solar_serial: str | None = None
    special_serial: str | None = None


DEFAULT_SITES: tuple[SiteSpec, ...] = (
    SiteSpec(
        "flat",
        phases=1,
        base_load_w=300.0,
        initial_import_kwh=1766.59,
        offline_ago=((timedelta(days=3), timedelta(minutes=906)),),
    ),
    SiteSpec("farm", phases=3, base_load_w=900.0, pv_peak_w=6000.0, initial_import_kwh=2704.35),
    SiteSpec("workshop", phases=3, base_load_w=1500.0, initial_import_kwh=5345.985),
    SiteSpec("cabin", phases=3, base_load_w=500.0, pv_peak_w=4000.0, initial_import_kwh=21228.0),
    SiteSpec("barn", phases=3, base_load_w=700.0, pv_peak_w=3000.0, initial_import_kwh=46055.7),
)
DEFAULT_METERS: tuple[MeterSpec, ...] = (
    MeterSpec("DA2BED94", "flat", METERSDATA_FLAT),
    MeterSpec("3FE34ABE", "farm", METERSDATA_NESTED_7),
    MeterSpec("5E7A0C21", "farm", METERSDATA_FLAT, MeterKind.SOLAR),
    MeterSpec("674B1E5D", "workshop", METERSDATA_NESTED_5),
    MeterSpec("B384789C", "cabin", METERSDATA_NEM, wired_phases=2),
    MeterSpec("59C9AB8D", "barn", METERSDATA_NEM, wired_phases=2),
)
DEFAULT_PLACES: tuple[PlaceSpec, ...] = (
    PlaceSpec(1360, grid_serial="DA2BED94"),
    PlaceSpec(2393, grid_serial="3FE34ABE", solar_serial="5E7A0C21"),
)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class SimMeter:
    """A meter of the account: its uploads, registers and offline gaps on the simulated clock."""

    spec: MeterSpec
    household: Household
    offline: tuple[tuple[datetime, datetime], ...]
    phases: int

    @property
    def serial(self) -> str:
        """Return the meter's serial number (SN)."""
        return self.spec.serial

    def _upload_at(self, index: int) -> datetime:
        salt = _stable_int(self.serial)
        offset_s = 10 + salt % 40 + (index * 2654435761 + salt) % 3
        return _EPOCH + timedelta(seconds=index * UPLOAD_INTERVAL_S + offset_s)

    def _index_at_or_before(self, ts: datetime) -> int:
        index = int((ts - _EPOCH).total_seconds() // UPLOAD_INTERVAL_S)
        while self._upload_at(index) > ts:
            index -= 1
        return index

    def latest_upload(self, now: datetime) -> datetime | None:
        """Return the last upload at or before ``now``, skipping offline windows."""
        index = self._index_at_or_before(now)
        for window_start, window_end in sorted(self.offline, reverse=True):
            at = self._upload_at(index)
            if window_start <= at < window_end:
                index = self._index_at_or_before(window_start - timedelta(microseconds=1))
        at = self._upload_at(index)
        return None if self.household.is_offline(at) else at

    def uploads(self, start: datetime, end: datetime, interval_s: int) -> Iterator[datetime]:
        """Yield the first upload in each ``interval_s`` bucket of [start, end), online only."""
        index = self._index_at_or_before(start)
        if self._upload_at(index) < start:
            index += 1
        last_bucket: int | None = None
        while (at := self._upload_at(index)) < end:
            bucket = int((at - _EPOCH).total_seconds() // interval_s)
            if bucket != last_bucket and not self.household.is_offline(at):
                last_bucket = bucket
                yield at
            index += 1

    def offline_gaps(self, start: datetime, end: datetime) -> list[OfflineGap]:
        """Return the stretches without uploads that overlap [start, end), clipped to it."""
        gaps: list[OfflineGap] = []
        for window_start, window_end in sorted(self.offline):
            if window_end <= start or window_start >= end:
                continue
            before = self._upload_at(self._index_at_or_before(window_start))
            after_index = self._index_at_or_before(window_end) + 1
            while self.household.is_offline(self._upload_at(after_index)):
                after_index += 1
            gap = OfflineGap(max(before, start), min(self._upload_at(after_index), end))
            if gap.end > gap.start:
                gaps.append(gap)
        return gaps

    def reading_at(self, ts: datetime) -> MeterState:
        """Return what this meter measures at ``ts`` (a solar meter sees the PV output)."""
        state = self.household.state_at(ts)
        if self.spec.kind is MeterKind.SOLAR:
            return self._solar_view(state)
        if self.spec.kind is MeterKind.SPECIAL:
            return self._special_view(state)
        wired = self.spec.wired_phases
        if wired is None or wired >= len(state.phases):
            return state
        dead = PhaseState(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        phases = state.phases[:wired] + (dead,) * (len(state.phases) - wired)
        return replace(state, phases=phases, total=_sum_of(state.phases[:wired]))

    def _solar_view(self, state: MeterState) -> MeterState:
        voltage_v = state.phases[0].voltage_v if state.phases else _PV_VOLTAGE_FALLBACK_V
        pv_w = max(0.0, state.pv_w)
        phase = PhaseState(
            voltage_v=voltage_v,
            current_a=pv_w / voltage_v if voltage_v else 0.0,
            power_w=pv_w,
            reactive_power_var=0.0,
            power_factor=_PV_POWER_FACTOR if pv_w > 0 else 0.0,
            energy_import_kwh=self.pv_register_kwh(state.ts),
            energy_export_kwh=0.0,
        )
        return replace(state, total=phase, phases=(phase,), load_w=0.0)

    def _special_view(self, state: MeterState) -> MeterState:
        voltage_v = state.phases[0].voltage_v if state.phases else _PV_VOLTAGE_FALLBACK_V
        load_w = SPECIAL_LOAD_SHARE * max(0.0, state.load_w)
        since_epoch_kwh = (
            self.household.load_energy_between(REGISTER_EPOCH, state.ts)
            if state.ts >= REGISTER_EPOCH
            else -self.household.load_energy_between(state.ts, REGISTER_EPOCH)
        )
        phase = PhaseState(
            voltage_v=voltage_v,
            current_a=load_w / voltage_v if voltage_v else 0.0,
            power_w=load_w,
            reactive_power_var=0.0,
            power_factor=_PV_POWER_FACTOR if load_w > 0 else 0.0,
            energy_import_kwh=SPECIAL_LOAD_SHARE * since_epoch_kwh,
            energy_export_kwh=0.0,
        )
        return replace(state, total=phase, phases=(phase,), pv_w=0.0)

    def pv_register_kwh(self, ts: datetime) -> float:
        """Return the solar meter's import register: PV energy since the physics' register epoch."""
        if ts >= REGISTER_EPOCH:
            return self.household.pv_energy_between(REGISTER_EPOCH, ts)
        return -self.household.pv_energy_between(ts, REGISTER_EPOCH)

    def register_kwh(self, ts: datetime) -> tuple[float, float]:
        """Return (import, export) registers at the last upload at or before ``ts``."""
        at = self.latest_upload(ts)
        if at is None:
            return (0.0, 0.0)
        total = self.reading_at(at).total
        return (total.energy_import_kwh, total.energy_export_kwh)


def _sum_of(phases: Sequence[PhaseState]) -> PhaseState:
    """Return the total of some phases: mean voltage, summed current, power and registers."""
    power_w = sum(p.power_w for p in phases)
    reactive_var = sum(p.reactive_power_var for p in phases)
    apparent_va = math.hypot(power_w, reactive_var)
    return PhaseState(
        voltage_v=sum(p.voltage_v for p in phases) / len(phases),
        current_a=sum(p.current_a for p in phases),
        power_w=power_w,
        reactive_power_var=reactive_var,
        power_factor=abs(power_w) / apparent_va if apparent_va > 0 else 1.0,
        energy_import_kwh=sum(p.energy_import_kwh for p in phases),
        energy_export_kwh=sum(p.energy_export_kwh for p in phases),
    )


@dataclass(frozen=True)
class Place:
    """A place of the account, resolved to its meters."""

    spec: PlaceSpec
    grid: SimMeter
    solar: SimMeter | None
    special: SimMeter | None = None

    def energy_buckets(self, edges: Sequence[datetime], now: datetime) -> list[EnergyBucket]:
        """Return the energy between consecutive ``edges`` from register deltas of uploads so far.

        Buckets that start at or after ``now`` are left out; the last one ends at ``now``.
        """
        clipped = [min(edge, now) for edge in edges if edge < now]
        if len(clipped) < len(edges):
            clipped.append(now)
        grid = [self.grid.register_kwh(edge) for edge in clipped]
        solar = [self.solar.register_kwh(edge)[0] for edge in clipped] if self.solar else None
        special = [self.special.register_kwh(edge)[0] for edge in clipped] if self.special else None
        buckets = []
        for index in range(len(clipped) - 1):
            yield_kwh = solar[index + 1] - solar[index] if solar else 0.0
            special_kwh = special[index + 1] - special[index] if special else 0.0
            buckets.append(
                EnergyBucket(
                    start=clipped[index],
                    yield_kwh=max(0.0, yield_kwh),
                    from_grid_kwh=max(0.0, grid[index + 1][0] - grid[index][0]),
                    to_grid_kwh=max(0.0, grid[index + 1][1] - grid[index][1]),
                    special_load_kwh=max(0.0, special_kwh),
                )
            )
        return buckets


@dataclass(frozen=True)
class Account:
    """The one simulated account: credentials, token, meters by serial, places by id."""

    user_name: str
    password: str
    user_id: int
    token: str
    refresh_token: str
    zone: ZoneInfo
    meters: Mapping[str, SimMeter]
    places: Mapping[int, Place]


def build_account(
    seed: int,
    start: datetime,
    tz: str,
    sites: tuple[SiteSpec, ...] = DEFAULT_SITES,
    meters: tuple[MeterSpec, ...] = DEFAULT_METERS,
    places: tuple[PlaceSpec, ...] = DEFAULT_PLACES,
    credentials: tuple[str, str] = ("test", "123456"),
) -> Account:
    """Build the account from declarative specs; offline windows are placed before ``start``."""
    households: dict[str, tuple[Household, tuple[tuple[datetime, datetime], ...], int]] = {}
    for number, site in enumerate(sites):
        windows = tuple((start - ago, start - ago + length) for ago, length in site.offline_ago)
        config = SiteConfig(
            seed=seed * 100 + number,
            phases=site.phases,
            tz=tz,
            base_load_w=site.base_load_w,
            pv_peak_w=site.pv_peak_w,
            offline=windows,
            resets=site.resets,
            initial_import_kwh=site.initial_import_kwh,
        )
        households[site.name] = (Household(config), windows, site.phases)
    sim_meters = {}
    for spec in meters:
        household, windows, phases = households[spec.site]
        if spec.kind in (MeterKind.SOLAR, MeterKind.SPECIAL):
            phases = 1
        elif spec.wired_phases is not None:
            phases = min(phases, spec.wired_phases)
        sim_meters[spec.serial] = SimMeter(spec, household, windows, phases)
    sim_places = {
        place.place_id: Place(
            place,
            sim_meters[place.grid_serial],
            sim_meters[place.solar_serial] if place.solar_serial else None,
            sim_meters[place.special_serial] if place.special_serial else None,
        )
        for place in places
    }
    digest = hashlib.sha256(f"iammeter-sim-{seed}".encode()).hexdigest()
    return Account(
        user_name=credentials[0],
        password=credentials[1],
        user_id=2025,
        token=digest[:32],
        refresh_token=digest[32:],
        zone=ZoneInfo(tz),
        meters=sim_meters,
        places=sim_places,
    )
