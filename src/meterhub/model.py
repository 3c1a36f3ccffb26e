"""The canonical model: the contract between vendors, ingest, store, analytics and interfaces.

Time is UTC inside: every ``datetime`` here is timezone-aware. A meter's or place's IANA zone is
used only at the edges (calendar buckets, daytime, display).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

__all__ = [
    "CANONICAL_COLUMNS",
    "PHASE_TOTAL",
    "READING_FIELDS",
    "REGISTER_FIELDS",
    "VENDOR_FILE",
    "ApiKey",
    "Direction",
    "Extra",
    "Gap",
    "IntervalEnergy",
    "Meter",
    "MeterHealth",
    "Place",
    "PricePoint",
    "Reading",
    "Role",
    "User",
    "UserRole",
]

PHASE_TOTAL = 0
"""Phase 0 is the whole meter (the sum of phases, or the vendor's own total)."""

VENDOR_FILE = "file"
"""The vendor of a meter fed by imports only."""

READING_FIELDS: tuple[str, ...] = (
    "voltage_v",
    "current_a",
    "power_w",
    "reactive_power_var",
    "power_factor",
    "frequency_hz",
    "energy_import_kwh",
    "energy_export_kwh",
    "reactive_import_kvarh",
    "reactive_export_kvarh",
)
"""The measured quantities of a reading, in canonical order, units in the name."""

REGISTER_FIELDS: tuple[str, ...] = (
    "energy_import_kwh",
    "energy_export_kwh",
    "reactive_import_kvarh",
    "reactive_export_kvarh",
)
"""The cumulative registers among :data:`READING_FIELDS`."""

CANONICAL_COLUMNS: tuple[str, ...] = ("meter", "ts", "phase", *READING_FIELDS)
"""The columns of import and export files."""


def _require_aware(ts: datetime, what: str) -> None:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {ts.isoformat()}")


@dataclass(frozen=True, slots=True)
class Meter:
    """A meter meterhub knows: where its data comes from and how often it should arrive."""

    id: str
    vendor: str
    phases: int = 1
    tz: str = "UTC"
    interval_s: int = 60
    name: str = ""
    options: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Vendor connection options; secrets only as references (``env:NAME``), never values."""


class Reading(NamedTuple):
    """One meter, one instant, one phase; ``power_w`` > 0 is import, < 0 export.

    ``energy_*`` and ``reactive_*_kvarh`` are cumulative registers as the meter reports them.
    A reading is an immutable named tuple: cheap to build by the million, compared by value.
    """

    meter: str
    ts: datetime
    phase: int = PHASE_TOTAL
    voltage_v: float | None = None
    current_a: float | None = None
    power_w: float | None = None
    reactive_power_var: float | None = None
    power_factor: float | None = None
    frequency_hz: float | None = None
    energy_import_kwh: float | None = None
    energy_export_kwh: float | None = None
    reactive_import_kvarh: float | None = None
    reactive_export_kvarh: float | None = None

    def values(self) -> tuple[float | None, ...]:
        """Return the measured quantities in :data:`READING_FIELDS` order."""
        return self[3:]


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy a source reports for the closed interval [start, end)."""

    meter: str
    start: datetime
    end: datetime
    import_kwh: float | None
    export_kwh: float | None
    source: str

    def __post_init__(self) -> None:
        _require_aware(self.start, "start")
        _require_aware(self.end, "end")
        if self.end <= self.start:
            raise ValueError(f"interval end {self.end} is not after its start {self.start}")


class Extra(NamedTuple):
    """A device-level scalar beside readings, such as ``temperature_c``, ``rssi_dbm``, ``relay_on``.

    An immutable named tuple, as a reading is: built on every poll of a device.
    """

    meter: str
    ts: datetime
    name: str
    value: float


@dataclass(frozen=True, slots=True)
class Gap:
    """No reading of a meter between ``start`` and ``end`` for longer than twice its interval."""

    meter: str
    start: datetime
    end: datetime

    @property
    def duration_s(self) -> float:
        """Return the length of the gap in seconds."""
        return (self.end - self.start).total_seconds()


class Role(StrEnum):
    """What a meter measures within a place."""

    GRID = "grid"
    SOLAR = "solar"
    SPECIAL = "special"
    CONSUMPTION = "consumption"


@dataclass(frozen=True, slots=True)
class Place:
    """Meters grouped by role in one time zone, with the tariff that prices its energy."""

    id: str
    tz: str
    name: str = ""
    meters: tuple[tuple[str, Role], ...] = ()
    """(meter id, role) pairs, ordered by meter id."""
    tariff: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Tariff settings as plain data (interpreted by ``meterhub.analytics.tariffs``)."""


class Direction(StrEnum):
    """Which way energy flows through the grid meter."""

    IMPORT = "import"
    EXPORT = "export"


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A price per kWh for [start, end) in one series and direction, such as day-ahead prices."""

    start: datetime
    end: datetime
    price_per_kwh: float
    currency: str
    direction: Direction = Direction.IMPORT
    series: str = "default"


@dataclass(frozen=True, slots=True)
class MeterHealth:
    """How polling a meter goes: online, last success, last error, consecutive failures."""

    meter: str
    online: bool
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int


class UserRole(StrEnum):
    """What a user of the hub may do: admins manage everything, viewers only read."""

    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class User:
    """A person or program that signs in to the hub's API."""

    name: str
    role: UserRole
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's public record; its secret is shown once at creation and stored only hashed."""

    key_id: str
    user: str
    name: str
    prefix: str
    """What identifies the key to people, such as ``mh_1a2b3c4d5e6f``; never part of the secret."""
    created_at: datetime
    last_used_at: datetime | None = None
    revoked: bool = False


def utc_now() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)
