"""The Store protocol every backend implements, and the records it returns.

Writes are idempotent on (meter, phase, ts): the first reading stored under a key wins and a
re-sent one is counted as a duplicate. Rollups, the latest-value table and gap events are kept
in the same transaction as the raw rows, so they never disagree with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from meterhub.model import (
    ApiKey,
    Extra,
    Gap,
    IntervalEnergy,
    Meter,
    MeterHealth,
    Place,
    PricePoint,
    Reading,
    Role,
    User,
    UserRole,
)

__all__ = [
    "ROLLUP_WIDTHS_S",
    "Bucket",
    "PowerColumns",
    "ReadingColumns",
    "Store",
    "SumField",
    "WriteResult",
    "chunked",
    "write_columns",
]

T = TypeVar("T")

ROLLUP_WIDTHS_S: tuple[int, ...] = (900, 3600)
"""Rollup bucket widths kept at ingest: 15 minutes and one hour, UTC-aligned."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one write did: rows newly stored and rows already present under their key."""

    stored: int
    duplicates: int


class Bucket(NamedTuple):
    """Aggregates of one meter phase over [start, end): power stats, registers and energy.

    ``energy_*_kwh`` is the energy metered within the bucket: register increments between
    consecutive readings, pro-rated by time where an interval crosses the bucket's edges, with
    counter resets and meter replacements handled. ``covered_s`` counts the seconds spanned by
    intervals no longer than twice the meter's interval; the rest of the bucket is estimated.
    """

    meter: str
    phase: int
    start: datetime
    end: datetime
    count: int
    power_avg_w: float | None
    power_min_w: float | None
    power_max_w: float | None
    voltage_avg_v: float | None
    voltage_min_v: float | None
    voltage_max_v: float | None
    current_avg_a: float | None
    first_ts: datetime | None
    first_import_kwh: float | None
    first_export_kwh: float | None
    last_ts: datetime | None
    last_import_kwh: float | None
    last_export_kwh: float | None
    energy_import_kwh: float
    energy_export_kwh: float
    covered_s: float

    @property
    def width_s(self) -> float:
        """Return the bucket's length in seconds."""
        return (self.end - self.start).total_seconds()


SumField = Literal["energy_import_kwh", "energy_export_kwh", "covered_s", "count"]
"""Bucket figures that add up over periods, named as in ``Bucket``."""


class PowerColumns(NamedTuple):
    """Power statistics of consecutive periods as arrays; NaN where a period has no power."""

    count: npt.NDArray[np.int64]
    power_avg_w: npt.NDArray[np.float64]
    power_min_w: npt.NDArray[np.float64]
    power_max_w: npt.NDArray[np.float64]


@runtime_checkable
class Store(Protocol):
    """A time-series store of meters, readings, rollups, gaps, tokens and a quota ledger."""

    url: str

    # --- schema -------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""
        ...

    def migrate_to(self, name: str) -> list[str]:
        """Apply migrations up to and including ``name``; raise MigrationError for an unknown name."""
        ...

    def migrations_applied(self) -> list[str]:
        """Return the names of applied migrations, oldest first (read-only)."""
        ...

    def close(self) -> None:
        """Finish pending writes and release every connection."""
        ...

    def refresh_statistics(self) -> None:
        """Refresh the query planner's statistics (after a big import; cheap, sampled)."""
        ...

    # --- meters -------------------------------------------------------------------------
    def add_meter(self, meter: Meter) -> None:
        """Add a meter; raise ConflictError if its id exists."""
        ...

    def update_meter(self, meter: Meter) -> None:
        """Replace a meter's settings; raise UnknownMeterError if it does not exist."""
        ...

    def get_meter(self, meter_id: str) -> Meter:
        """Return one meter or raise UnknownMeterError (read-only)."""
        ...

    def list_meters(self) -> list[Meter]:
        """Return all meters ordered by id (read-only)."""
        ...

    def remove_meter(self, meter_id: str) -> int:
        """Remove a meter and all its data; return the number of raw rows removed."""
        ...

    # --- writes -------------------------------------------------------------------------
    def write_readings(self, readings: Sequence[Reading]) -> WriteResult:
        """Store validated readings of known meters in one transaction, idempotently."""
        ...

    def write_intervals(self, records: Sequence[IntervalEnergy]) -> WriteResult:
        """Store interval-energy records keyed (meter, source, start), idempotently."""
        ...

    def write_extras(self, extras: Sequence[Extra]) -> WriteResult:
        """Store device extras keyed (meter, name, ts), idempotently."""
        ...

    def change_count(self) -> int:
        """Return a number that changes whenever anything is written, by this process or another.

        Cheap enough to ask on every request: answers built from the store may be kept until
        it changes. Read it before reading what it guards, so a write in between is never missed.
        """
        ...

    # --- reads --------------------------------------------------------------------------
    def iter_readings(
        self,
        meter_ids: Sequence[str] | None,
        start: datetime,
        end: datetime,
        phase: int | None = None,
    ) -> Iterator[Reading]:
        """Stream raw readings in [start, end) ordered by meter, ts, phase (read-only)."""
        ...

    def count_readings(self, meter_id: str | None = None) -> int:
        """Return the number of raw rows, of one meter or of all (read-only)."""
        ...

    def latest(self, meter_ids: Sequence[str] | None = None, phase: int | None = 0) -> list[Reading]:
        """Return the newest reading per meter and phase (read-only)."""
        ...

    def rollups(
        self, meter_id: str, phase: int, start: datetime, end: datetime, width_s: int
    ) -> list[Bucket]:
        """Return stored rollup buckets of width 900 or 3600 s overlapping [start, end)."""
        ...

    def aggregate(
        self, meter_id: str, phase: int, boundaries: Sequence[datetime], with_registers: bool = True
    ) -> list[Bucket]:
        """Merge rollups into the periods between consecutive boundaries (read-only).

        Every boundary must fall on a 15-minute edge; periods are returned even when empty.
        With ``with_registers`` False the first/last register values are left out (None),
        which is faster where only power and energy are wanted.
        """
        ...

    def period_sums(
        self,
        meter_id: str,
        phase: int,
        boundaries_ms: npt.NDArray[np.int64],
        fields: Sequence[SumField],
    ) -> dict[SumField, npt.NDArray[np.float64]]:
        """Return the asked sums per period between consecutive boundaries (read-only).

        The figures equal ``aggregate``'s; boundaries are epoch milliseconds on 15-minute edges.
        Periods that are the meter's local days (or UTC-aligned multiples of six hours) are
        read from the coarse rollups, so a year of days is one short scan.
        """
        ...

    def period_power(
        self, meter_id: str, phase: int, boundaries_ms: npt.NDArray[np.int64]
    ) -> PowerColumns:
        """Return count and average, minimum and maximum power per period (read-only).

        The figures equal ``aggregate``'s, with NaN for None; boundaries as in ``period_sums``.
        """
        ...

    def downsample_raw(
        self, meter_id: str, phase: int, start: datetime, end: datetime, width_s: int
    ) -> list[Bucket]:
        """Aggregate raw rows into UTC-aligned buckets of ``width_s`` (read-only)."""
        ...

    def gaps(self, meter_id: str, start: datetime, end: datetime) -> list[Gap]:
        """Return gap events that overlap [start, end), oldest first (read-only)."""
        ...

    def intervals(
        self, meter_id: str, start: datetime, end: datetime, source: str | None = None
    ) -> list[IntervalEnergy]:
        """Return interval-energy records that start in [start, end) (read-only)."""
        ...

    def extras(self, meter_id: str, name: str, start: datetime, end: datetime) -> list[Extra]:
        """Return one extra's values in [start, end) (read-only)."""
        ...

    def extra_series(self, meter_id: str) -> list[tuple[str, int, datetime, datetime, float]]:
        """Return (name, count, first ts, last ts, last value) per extra of a meter, by name (read-only)."""
        ...

    def extra_points(
        self, meter_id: str, name: str, start: datetime, end: datetime, limit: int
    ) -> list[Extra]:
        """Return at most ``limit`` of one extra's values in [start, end), oldest first (read-only)."""
        ...

    def extra_buckets(
        self, meter_id: str, name: str, start: datetime, end: datetime, width_s: int
    ) -> list[tuple[datetime, int, float, float, float]]:
        """Return (bucket start, count, min, mean, max) of one extra per UTC-aligned bucket (read-only).

        Buckets of ``width_s`` seconds that overlap [start, end) and hold values are returned
        whole, oldest first; widths that are multiples of 15 minutes read a rollup, so a year
        of a series is a short scan.
        """
        ...

    # --- places -------------------------------------------------------------------------
    def add_place(self, place: Place) -> None:
        """Add a place (with its meters and tariff); raise ConflictError if its id exists."""
        ...

    def update_place(self, place: Place) -> None:
        """Replace a place's zone, name, tariff and meters; raise UnknownPlaceError if absent."""
        ...

    def get_place(self, place_id: str) -> Place:
        """Return one place with its meters or raise UnknownPlaceError (read-only)."""
        ...

    def list_places(self) -> list[Place]:
        """Return all places ordered by id (read-only)."""
        ...

    def remove_place(self, place_id: str) -> None:
        """Remove a place (its meters and their data stay)."""
        ...

    def attach_meter(self, place_id: str, meter_id: str, role: Role) -> None:
        """Put a meter in a place with a role (replacing its role there, if any)."""
        ...

    def detach_meter(self, place_id: str, meter_id: str) -> None:
        """Take a meter out of a place."""
        ...

    # --- prices -------------------------------------------------------------------------
    def write_prices(self, points: Sequence[PricePoint]) -> WriteResult:
        """Store prices keyed (series, direction, start); a re-imported slot takes the new price.

        ``stored`` counts new or changed slots, ``duplicates`` slots that were already equal.
        """
        ...

    def prices(
        self, start: datetime, end: datetime, direction: str = "import", series: str | None = None
    ) -> list[PricePoint]:
        """Return price slots overlapping [start, end), ordered by series and start (read-only)."""
        ...

    def price_series(self) -> list[tuple[str, str, str, int, datetime, datetime]]:
        """Return (series, direction, currency, slots, first start, last end) per series (read-only)."""
        ...

    def delete_prices(self, series: str, start: datetime | None = None, end: datetime | None = None) -> int:
        """Delete a series' slots starting in [start, end) (all when unbounded); return how many."""
        ...

    # --- meter health -------------------------------------------------------------------
    def record_health(self, meter_id: str, ok: bool, at: datetime, error: str | None = None) -> MeterHealth:
        """Record a poll's outcome and return the meter's health after it."""
        ...

    def health(self, meter_ids: Sequence[str] | None = None) -> dict[str, MeterHealth]:
        """Return the recorded health of meters that have been polled (read-only)."""
        ...

    # --- users, API keys and shares -----------------------------------------------------
    def add_user(self, name: str, role: UserRole, password_hash: str) -> None:
        """Add a user; raise ConflictError if the name is taken."""
        ...

    def get_user(self, name: str) -> User:
        """Return one user or raise NotFoundError (read-only)."""
        ...

    def list_users(self) -> list[User]:
        """Return all users ordered by name (read-only)."""
        ...

    def remove_user(self, name: str) -> None:
        """Remove a user with their API keys and shares; raise NotFoundError if absent."""
        ...

    def set_user_password(self, name: str, password_hash: str) -> None:
        """Replace a user's password hash; raise NotFoundError if absent."""
        ...

    def set_user_role(self, name: str, role: UserRole) -> None:
        """Change a user's role; raise NotFoundError if absent."""
        ...

    def user_password_hash(self, name: str) -> str | None:
        """Return a user's password hash, or None for an unknown user (read-only)."""
        ...

    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        """Store a new key's record and hash; raise ConflictError for a taken id."""
        ...

    def api_key_by_id(self, key_id: str) -> tuple[ApiKey, str] | None:
        """Return a key's record and stored hash, or None (read-only)."""
        ...

    def list_api_keys(self, user: str | None = None) -> list[ApiKey]:
        """Return the keys of one user or of all, revoked ones included, oldest first (read-only)."""
        ...

    def revoke_api_key(self, key_id: str) -> None:
        """Mark a key revoked (it stays listed); raise NotFoundError for an unknown id."""
        ...

    def touch_api_key(self, key_id: str, at: datetime) -> None:
        """Record when a key was last used."""
        ...

    def share(self, user: str, kind: str, object_id: str) -> None:
        """Let a user see a meter or a place (and its meters); sharing twice is harmless."""
        ...

    def unshare(self, user: str, kind: str, object_id: str) -> None:
        """Stop sharing a meter or place with a user; raise NotFoundError if it was not shared."""
        ...

    def shares_of(self, user: str) -> list[tuple[str, str]]:
        """Return (kind, object id) of what is shared with a user and still exists (read-only)."""
        ...

    # --- key-value: vendor tokens and the quota ledger -----------------------------------
    def token_get(self, scope: str, key: str) -> tuple[str, datetime | None] | None:
        """Return a stored token and its expiry, or None (read-only)."""
        ...

    def token_set(self, scope: str, key: str, value: str, expires: datetime | None) -> None:
        """Store or replace a token."""
        ...

    def token_delete(self, scope: str, key: str) -> None:
        """Forget a token."""
        ...

    def token_swap(
        self, scope: str, key: str, expected: str, value: str, expires: datetime | None
    ) -> bool:
        """Replace a token only if it still holds ``expected`` (atomically); return whether it did."""
        ...

    def token_purge(self, scope: str, now: datetime) -> int:
        """Delete the tokens of ``scope`` that expired by ``now``; return how many."""
        ...

    def quota_acquire(self, key: str, limit: int, window_s: int, now: datetime) -> bool:
        """Record one call under ``key`` if fewer than ``limit`` fall in the window; else False."""
        ...

    def quota_used(self, key: str, window_s: int, now: datetime) -> int:
        """Return the calls recorded under ``key`` within the window ending ``now`` (read-only)."""
        ...

    def quota_next_free(self, key: str, limit: int, window_s: int, now: datetime) -> datetime:
        """Return the earliest time a call under ``key`` fits the limit (read-only)."""
        ...


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of at most ``size`` items."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class ReadingColumns(NamedTuple):
    """Validated readings as columns: row ``k`` is meter ``meters[meter_index[k]]`` at ``ts_us[k]``.

    ``values`` holds one row of :data:`~meterhub.model.READING_FIELDS` per reading, NaN where a
    value is missing. Rows keep their order: the first of two under one key is the one stored.
    """

    meters: Sequence[str]
    meter_index: npt.NDArray[np.int64]
    ts_us: npt.NDArray[np.int64]
    """Epoch microseconds, so the readings built from the columns keep the file's instants."""
    phase: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    @property
    def rows(self) -> int:
        """Return the number of readings."""
        return len(self.ts_us)

    def reading(self, row: int) -> Reading:
        """Return row ``row`` as a reading."""
        values = self.values[row].tolist()
        return Reading(
            self.meters[int(self.meter_index[row])],
            _EPOCH + timedelta(microseconds=int(self.ts_us[row])),
            int(self.phase[row]),
            *(None if value != value else value for value in values),  # NaN: missing
        )

    def readings(self) -> list[Reading]:
        """Return every row as a reading, in order."""
        return [self.reading(row) for row in range(self.rows)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def write_columns(store: Store, columns: ReadingColumns) -> WriteResult:
    """Store validated readings given as columns, as ``store.write_readings`` would store them.

    A backend with its own ``write_columns`` takes the columns as they are; any other gets the
    readings built from them.
    """
    if not columns.rows:
        return WriteResult(0, 0)
    own = getattr(store, "write_columns", None)
    if own is not None:
        result: WriteResult = own(columns)
        return result
    return store.write_readings(columns.readings())
