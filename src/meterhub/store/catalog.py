"""Places, prices and meter health: small tables with the same SQL on every backend.

Each backend mixes :class:`CatalogMixin` in and supplies two hooks: run a function in a write
transaction, and run one on a read connection. SQL is written with ``?`` placeholders and
translated for drivers that use ``%s``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from meterhub.errors import ConflictError, InputError, UnknownMeterError, UnknownPlaceError
from meterhub.ids import check_id
from meterhub.model import Direction, MeterHealth, Place, PricePoint, Role
from meterhub.store.base import WriteResult
from meterhub.store.sqlmixin import SqlMixin
from meterhub.store.text import reject_nul
from meterhub.timeutil import from_ms, to_ms

__all__ = ["CATALOG_DDL", "CatalogMixin"]


CATALOG_DDL: tuple[str, ...] = (
    "CREATE TABLE places (id TEXT PRIMARY KEY, tz TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', "
    "tariff TEXT NOT NULL DEFAULT '{}')",
    "CREATE TABLE place_meters (place TEXT NOT NULL, meter TEXT NOT NULL, role TEXT NOT NULL, "
    "PRIMARY KEY (place, meter))",
    "CREATE TABLE prices (series TEXT NOT NULL, direction TEXT NOT NULL, start_ms BIGINT NOT NULL, "
    "end_ms BIGINT NOT NULL, price DOUBLE PRECISION NOT NULL, currency TEXT NOT NULL, "
    "PRIMARY KEY (series, direction, start_ms))",
    "CREATE INDEX prices_direction_start ON prices (direction, start_ms)",
    "CREATE TABLE meter_health (meter TEXT PRIMARY KEY, online INTEGER NOT NULL, "
    "last_success_ms BIGINT, last_error TEXT, last_error_ms BIGINT, failures INTEGER NOT NULL)",
)
"""The tables of migration 0004, valid in SQLite and PostgreSQL alike."""

_HEALTH_COLUMNS = "meter, online, last_success_ms, last_error, last_error_ms, failures"
_ERROR_TEXT_MAX = 500
_HEALTH_INSERT = (
    f"INSERT INTO meter_health ({_HEALTH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (meter) "
)
_HEALTH_OK_UPSERT = (
    f"{_HEALTH_INSERT}DO UPDATE SET online = 1, last_success_ms = excluded.last_success_ms, "
    f"last_error = NULL, last_error_ms = NULL, failures = 0 RETURNING {_HEALTH_COLUMNS}"
)
_HEALTH_FAILED_UPSERT = (
    f"{_HEALTH_INSERT}DO UPDATE SET online = 0, last_error = excluded.last_error, "
    f"last_error_ms = excluded.last_error_ms, failures = meter_health.failures + 1 "
    f"RETURNING {_HEALTH_COLUMNS}"
)
_PRICE_UPSERT = (
    "INSERT INTO prices (series, direction, start_ms, end_ms, price, currency) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (series, direction, start_ms) DO UPDATE SET end_ms = excluded.end_ms, "
    "price = excluded.price, currency = excluded.currency WHERE prices.end_ms <> excluded.end_ms "
    "OR prices.price <> excluded.price OR prices.currency <> excluded.currency"
)


def _health(row: Sequence[Any]) -> MeterHealth:
    meter, online, success_ms, error, error_ms, failures = row
    return MeterHealth(
        meter,
        bool(online),
        None if success_ms is None else from_ms(int(success_ms)),
        error,
        None if error_ms is None else from_ms(int(error_ms)),
        int(failures),
    )


class CatalogMixin(SqlMixin):
    """Place, price and health methods of the Store protocol, shared by the backends."""

    # --- places -------------------------------------------------------------------------
    def _place_exists(self, conn: Any, place_id: str) -> bool:
        return bool(self._rows(conn, "SELECT 1 FROM places WHERE id = ?", (place_id,)))

    def _require_meter(self, conn: Any, meter_id: str) -> None:
        if not self._rows(conn, "SELECT 1 FROM meters WHERE id = ?", (meter_id,)):
            raise UnknownMeterError(meter_id)

    def _write_place(self, conn: Any, place: Place, *, new: bool) -> None:
        # Writing the place row first takes its row lock, so a concurrent writer of the same
        # place waits here and then sees this one's members, instead of colliding on a key.
        reject_nul(place.tariff, what="a tariff")  # JSON would escape it out of the check below
        values = (place.id, place.tz, place.name, json.dumps(dict(place.tariff), sort_keys=True))
        if new:
            sql = "INSERT INTO places (id, tz, name, tariff) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
            if self._exec(conn, sql, values).rowcount == 0:
                raise ConflictError(f"place {place.id!r} exists already")
        elif self._exec(
            conn, "UPDATE places SET tz = ?, name = ?, tariff = ? WHERE id = ?", (*values[1:], place.id)
        ).rowcount == 0:
            raise UnknownPlaceError(place.id)
        self._exec(conn, "DELETE FROM place_meters WHERE place = ?", (place.id,))
        for meter_id, role in place.meters:
            self._require_meter(conn, meter_id)
            self._exec(
                conn,
                "INSERT INTO place_meters (place, meter, role) VALUES (?, ?, ?) "
                "ON CONFLICT (place, meter) DO UPDATE SET role = excluded.role",
                (place.id, meter_id, Role(role).value),
            )

    def add_place(self, place: Place) -> None:
        """Add a place (with its meters and tariff); raise ConflictError if its id exists."""
        check_id(place.id, "place id")
        self._catalog_write(lambda conn: self._write_place(conn, place, new=True))

    def update_place(self, place: Place) -> None:
        """Replace a place's zone, name, tariff and meters; raise UnknownPlaceError if absent."""
        self._catalog_write(lambda conn: self._write_place(conn, place, new=False))

    def _load_place(self, conn: Any, row: Sequence[Any]) -> Place:
        place_id, tz, name, tariff = row
        meters = self._rows(
            conn, "SELECT meter, role FROM place_meters WHERE place = ? ORDER BY meter", (place_id,)
        )
        return Place(place_id, tz, name, tuple((m, Role(r)) for m, r in meters), json.loads(tariff))

    def get_place(self, place_id: str) -> Place:
        """Return one place with its meters or raise UnknownPlaceError (read-only)."""

        def get(conn: Any) -> Place:
            rows = self._rows(conn, "SELECT id, tz, name, tariff FROM places WHERE id = ?", (place_id,))
            if not rows:
                raise UnknownPlaceError(place_id)
            return self._load_place(conn, rows[0])

        return self._catalog_read(get)

    def list_places(self) -> list[Place]:
        """Return all places ordered by id (read-only)."""

        def list_all(conn: Any) -> list[Place]:
            rows = self._rows(conn, "SELECT id, tz, name, tariff FROM places ORDER BY id")
            return [self._load_place(conn, row) for row in rows]

        return self._catalog_read(list_all)

    def remove_place(self, place_id: str) -> None:
        """Remove a place (its meters and their data stay)."""

        def remove(conn: Any) -> None:
            if not self._place_exists(conn, place_id):
                raise UnknownPlaceError(place_id)
            self._exec(conn, "DELETE FROM place_meters WHERE place = ?", (place_id,))
            self._exec(conn, "DELETE FROM places WHERE id = ?", (place_id,))

        self._catalog_write(remove)

    def attach_meter(self, place_id: str, meter_id: str, role: Role) -> None:
        """Put a meter in a place with a role (replacing its role there, if any)."""

        def attach(conn: Any) -> None:
            if not self._place_exists(conn, place_id):
                raise UnknownPlaceError(place_id)
            self._require_meter(conn, meter_id)
            self._exec(
                conn,
                "INSERT INTO place_meters (place, meter, role) VALUES (?, ?, ?) "
                "ON CONFLICT (place, meter) DO UPDATE SET role = excluded.role",
                (place_id, meter_id, Role(role).value),
            )

        self._catalog_write(attach)

    def detach_meter(self, place_id: str, meter_id: str) -> None:
        """Take a meter out of a place."""

        def detach(conn: Any) -> None:
            if not self._place_exists(conn, place_id):
                raise UnknownPlaceError(place_id)
            cursor = self._exec(
                conn, "DELETE FROM place_meters WHERE place = ? AND meter = ?", (place_id, meter_id)
            )
            if cursor.rowcount == 0:
                raise InputError(f"meter {meter_id!r} is not in place {place_id!r}")

        self._catalog_write(detach)

    # --- prices -------------------------------------------------------------------------
    def write_prices(self, points: Sequence[PricePoint]) -> WriteResult:
        """Store prices keyed (series, direction, start); a re-imported slot takes the new price."""
        for series in {point.series for point in points}:
            check_id(series, "price series")

        def write(conn: Any) -> WriteResult:
            stored = 0
            for point in points:
                key = (point.series, Direction(point.direction).value, to_ms(point.start))
                # One upsert per slot: it changes the row only when the slot differs, and two
                # importers of the same slot never collide on its key.
                values = (*key, to_ms(point.end), point.price_per_kwh, point.currency)
                stored += self._exec(conn, _PRICE_UPSERT, values).rowcount
            return WriteResult(stored, len(points) - stored)

        return self._catalog_write(write)

    def prices(
        self, start: datetime, end: datetime, direction: str = "import", series: str | None = None
    ) -> list[PricePoint]:
        """Return price slots overlapping [start, end), ordered by series and start (read-only)."""
        sql = (
            "SELECT series, direction, start_ms, end_ms, price, currency FROM prices "
            "WHERE direction = ? AND start_ms < ? AND end_ms > ?"
        )
        args: list[Any] = [Direction(direction).value, to_ms(end), to_ms(start)]
        if series is not None:
            sql += " AND series = ?"
            args.append(series)
        rows = self._catalog_read(lambda conn: self._rows(conn, sql + " ORDER BY series, start_ms", args))
        return [
            PricePoint(from_ms(int(a)), from_ms(int(b)), float(price), currency, Direction(d), name)
            for name, d, a, b, price, currency in rows
        ]

    def price_series(self) -> list[tuple[str, str, str, int, datetime, datetime]]:
        """Return (series, direction, currency, slots, first start, last end) per series (read-only)."""
        rows = self._catalog_read(
            lambda conn: self._rows(
                conn,
                "SELECT series, direction, currency, count(*), min(start_ms), max(end_ms) FROM prices "
                "GROUP BY series, direction, currency ORDER BY series, direction, currency",
            )
        )
        return [(s, d, c, int(n), from_ms(int(a)), from_ms(int(b))) for s, d, c, n, a, b in rows]

    def delete_prices(self, series: str, start: datetime | None = None, end: datetime | None = None) -> int:
        """Delete a series' slots starting in [start, end) (all when unbounded); return how many."""
        lo = -(2**62) if start is None else to_ms(start)
        hi = 2**62 if end is None else to_ms(end)
        return int(
            self._catalog_write(
                lambda conn: (
                    self._exec(
                        conn,
                        "DELETE FROM prices WHERE series = ? AND start_ms >= ? AND start_ms < ?",
                        (series, lo, hi),
                    ).rowcount
                )
            )
        )

    # --- meter health -------------------------------------------------------------------
    def record_health(self, meter_id: str, ok: bool, at: datetime, error: str | None = None) -> MeterHealth:
        """Record a poll's outcome and return the meter's health after it.

        A success clears the last error (the poller logs each error and the recovery from it,
        so its history stays in the log): an online meter never shows an error of the past.
        """

        def record(conn: Any) -> MeterHealth:
            self._require_meter(conn, meter_id)
            # One upsert, failures counted by the database: concurrent writers of one meter's
            # health (workers sharing a database) never collide on its key, and none of their
            # outcomes is lost.
            if ok:
                args: tuple[Any, ...] = (meter_id, 1, to_ms(at), None, None, 0)
            else:
                # A device's error text is not the user's input: keep it, without NULs.
                text = (error or "failed").replace("\x00", "")[:_ERROR_TEXT_MAX]
                args = (meter_id, 0, None, text, to_ms(at), 1)
            rows = self._rows(conn, _HEALTH_OK_UPSERT if ok else _HEALTH_FAILED_UPSERT, args)
            return _health(rows[0])

        return self._catalog_write(record)

    def health(self, meter_ids: Sequence[str] | None = None) -> dict[str, MeterHealth]:
        """Return the recorded health of meters that have been polled (read-only)."""
        rows = self._catalog_read(
            lambda conn: self._rows(conn, f"SELECT {_HEALTH_COLUMNS} FROM meter_health ORDER BY meter")
        )
        wanted = None if meter_ids is None else set(meter_ids)
        return {row[0]: _health(row) for row in rows if wanted is None or row[0] in wanted}

    def _forget_meter(self, conn: Any, meter_id: str) -> None:
        """Drop a removed meter's place memberships and health."""
        self._exec(conn, "DELETE FROM place_meters WHERE meter = ?", (meter_id,))
        self._exec(conn, "DELETE FROM meter_health WHERE meter = ?", (meter_id,))
