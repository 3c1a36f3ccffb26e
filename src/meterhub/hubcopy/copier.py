"""Copy a whole hub from one database to another, in resumable batches.

What is copied, and how:

* **Meters** through the Store (``add_meter``/``update_meter``), every setting kept: zone,
  interval, phases, name and vendor options; their creation times are carried over with SQL.
* **Readings, intervals and extras** through the Store's writes, in time order and in batches of
  ``batch_rows``: the target builds its own rollups, latest values and gap events from them, as
  it does for data that arrives live, so it answers as the source does.
* **Small tables** (users with their password hashes, API keys with their hashes, shares, places
  with their meters and tariffs, prices, meter health, tokens - vendor tokens, backfill
  progress, hub settings, signing key - and the quota ledger) as rows: the columns both sides
  share, all of a table in one transaction, so the target mirrors the source.

Every batch commits on its own and then records its position in ``hubcopy_state``; a copy that
stops anywhere continues where it stopped when run again, and the stores' writes are idempotent
on their keys, so nothing is ever stored twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meterhub.errors import ConfigError, ConflictError
from meterhub.hubcopy.sqlconn import SqlConn, connect, source_label
from meterhub.hubcopy.state import SOURCE_PART, CopyState, check_target
from meterhub.hubcopy.verify import Report, verify
from meterhub.model import Extra, IntervalEnergy, Meter, Reading
from meterhub.store import Store, open_store
from meterhub.timeutil import from_ms, to_ms

__all__ = ["DEFAULT_BATCH_ROWS", "MIRRORED_TABLES", "CopyOutcome", "HubCopy"]

DEFAULT_BATCH_ROWS = 20_000
"""Rows per committed batch unless told otherwise."""

MIRRORED_TABLES: tuple[str, ...] = (
    "users",
    "api_keys",
    "shares",
    "places",
    "place_meters",
    "prices",
    "meter_health",
    "tokens",
    "quota_ledger",
)
"""Tables keyed by names rather than meter numbers, copied as rows (columns both sides have)."""

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class CopyOutcome:
    """How a run ended: complete and verified (``report``), or paused after ``batches`` batches."""

    complete: bool
    batches: int
    rows: int
    """Rows written by this run (readings, intervals and extras; a re-sent batch counts again)."""
    report: Report | None
    left: str = ""
    """What is left to copy, when paused."""


class _Paused(Exception):
    """The run has committed as many batches as it was allowed."""


@dataclass(slots=True)
class _Budget:
    limit: int | None
    spent: int = 0
    rows: int = 0

    def take(self) -> None:
        if self.limit is not None and self.spent >= self.limit:
            raise _Paused
        self.spent += 1


class HubCopy:
    """One run of a copy from ``source_url`` to ``target_url``."""

    def __init__(
        self,
        source_url: str,
        target_url: str,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        max_batches: int | None = None,
        progress: Progress = lambda text: None,
    ) -> None:
        if batch_rows < 1:
            raise ConfigError(f"--batch-rows must be at least 1, not {batch_rows}")
        if max_batches is not None and max_batches < 1:
            raise ConfigError(f"--max-batches must be at least 1, not {max_batches}")
        self.source_url = source_url
        self.target_url = target_url
        self.batch_rows = batch_rows
        self._budget = _Budget(max_batches)
        self._say = progress

    def run(self) -> CopyOutcome:
        """Copy what is left, then verify; or stop after ``max_batches`` batches."""
        label = source_label(self.source_url)
        if label == source_label(self.target_url):
            raise ConfigError("the source and the target are the same database; name another with --to")
        target_sql = connect(self.target_url)
        try:
            _lock(target_sql)
            resumed = check_target(target_sql, label)
            source_sql = connect(self.source_url)
            try:
                with _opened(self.source_url) as source, _opened(self.target_url) as target:
                    state = CopyState(target_sql)
                    if state.get(SOURCE_PART) is None:
                        state.set(SOURCE_PART, label)
                    self._say(
                        f"{'resuming the copy' if resumed else 'copying'} {label} to {target_sql.label}"
                    )
                    run = _Run(self, source, target, source_sql, target_sql, state)
                    try:
                        run.copy_all()
                    except _Paused:
                        return CopyOutcome(False, self._budget.spent, self._budget.rows, None, run.left())
                    self._say("verifying")
                    report = verify(source, target, source_sql, target_sql, MIRRORED_TABLES)
                    outcome = "verified" if report.ok else "mismatch"
                    state.set("checked", f"{outcome} {datetime.now(UTC).isoformat()}")
                    # A meter whose data differs (the source changed during the copy, a backfill
                    # wrote older rows) is sent whole again by the next run; its rows already
                    # there are skipped as duplicates and the missing ones fill in.
                    for meter_id in sorted(report.meters_to_copy_again):
                        state.forget(meter_parts(meter_id))
                    return CopyOutcome(True, self._budget.spent, self._budget.rows, report)
            finally:
                source_sql.close()
        finally:
            target_sql.close()


class _opened:
    """Open a store for the length of a ``with`` block."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._store: Store | None = None

    def __enter__(self) -> Store:
        self._store = open_store(self._url)
        return self._store

    def __exit__(self, *exc: object) -> None:
        if self._store is not None:
            self._store.close()


def _lock(conn: SqlConn) -> None:
    """Hold a session lock on a PostgreSQL target, so two copies never run into it at once."""
    if conn.kind != "postgresql":
        return  # a SQLite target's writes are serialised by the file's own lock
    got = conn.rows("SELECT pg_try_advisory_lock(hashtext('meterhub hub copy'), 0)")
    if not got[0][0]:
        raise ConflictError(f"another copy into {conn.label} is running; wait for it to end")


class _Run:
    """The state of one run: both stores, both plain connections, the progress table."""

    def __init__(
        self,
        copy: HubCopy,
        source: Store,
        target: Store,
        source_sql: SqlConn,
        target_sql: SqlConn,
        state: CopyState,
    ) -> None:
        self.copy = copy
        self.source = source
        self.target = target
        self.source_sql = source_sql
        self.target_sql = target_sql
        self.state = state
        self.meters: list[Meter] = []
        self._current = ""

    def left(self) -> str:
        return self._current

    def copy_all(self) -> None:
        self.meters = self.source.list_meters()
        self._sync_meters()
        for meter in self.meters:
            self._readings(meter.id)
        for meter in self.meters:
            self._intervals(meter.id)
            self._extras(meter.id)
        self._current = "the users, keys, shares, places, prices, tokens and quota ledger"
        self.copy._budget.take()
        self._mirror()

    # --- meters -------------------------------------------------------------------------
    def _sync_meters(self) -> None:
        """Make the target's meters the source's, settings and creation times included."""
        wanted = {meter.id: meter for meter in self.meters}
        have = {meter.id: meter for meter in self.target.list_meters()}
        for meter_id in sorted(set(have) - set(wanted)):
            # Removed from the source since the last run: its copied data goes too.
            self.target.remove_meter(meter_id)
            self.state.forget(meter_parts(meter_id))
            self.copy._say(f"meter {meter_id}: removed (no longer in the source)")
        for meter in self.meters:
            if meter.id not in have:
                self.target.add_meter(meter)
                self.copy._say(
                    f"meter {meter.id}: added ({meter.vendor}, {meter.tz}, every {meter.interval_s} s)"
                )
            elif have[meter.id] != meter:
                self.target.update_meter(meter)
                self.copy._say(f"meter {meter.id}: settings updated")
        created = self.source_sql.rows("SELECT id, created_ms FROM meters")
        with self.target_sql.transaction():
            self.target_sql.executemany(
                "UPDATE meters SET created_ms = ? WHERE id = ?",
                [(created_ms, meter_id) for meter_id, created_ms in created],
            )

    def _pk(self, meter_id: str) -> int:
        return int(self.source_sql.rows("SELECT pk FROM meters WHERE id = ?", (meter_id,))[0][0])

    # --- readings -----------------------------------------------------------------------
    def _readings(self, meter_id: str) -> None:
        pk = self._pk(meter_id)
        first_ms, last_ms, total = self.source_sql.rows(
            "SELECT min(ts), max(ts), count(*) FROM readings WHERE meter = ?", (pk,)
        )[0]
        if not total:
            return
        part = f"readings:{meter_id}"
        position = self.state.get(part)
        start_ms = int(first_ms) if position is None else int(position) + 1
        end_ms = int(last_ms) + 1
        self._current = (
            f"readings of meter {meter_id}"
            if position is None
            else f"readings of meter {meter_id} after {from_ms(start_ms - 1).isoformat()}"
        )
        copied = 0
        while start_ms < end_ms:
            self.copy._budget.take()
            stream = self.source.iter_readings([meter_id], from_ms(start_ms), from_ms(end_ms), None)
            try:
                batch = _whole_instants(stream, self.copy.batch_rows)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            if not batch:
                break
            self.target.write_readings(batch)
            last = to_ms(batch[-1].ts)
            self.state.set(part, str(last))
            self.copy._budget.rows += len(batch)
            start_ms = last + 1
            self._current = f"readings of meter {meter_id} after {from_ms(start_ms - 1).isoformat()}"
            copied += len(batch)
            self.copy._say(
                f"readings {meter_id}: {copied} more of {total}, up to {batch[-1].ts.isoformat()} "
                f"(last {from_ms(end_ms - 1).isoformat()})"
            )

    # --- intervals and extras -----------------------------------------------------------
    def _intervals(self, meter_id: str) -> None:
        pk = self._pk(meter_id)
        (total,) = self.source_sql.rows("SELECT count(*) FROM intervals WHERE meter = ?", (pk,))[0]
        if not total:
            return
        part = f"intervals:{meter_id}"
        start_ms, source = _position(self.state.get(part), -(2**62), "")
        copied = 0
        while True:
            self._current = f"intervals of meter {meter_id}"
            self.copy._budget.take()
            rows = self.source_sql.rows(
                "SELECT start_ms, source, end_ms, import_kwh, export_kwh FROM intervals "
                "WHERE meter = ? AND (start_ms > ? OR (start_ms = ? AND source > ?)) "
                "ORDER BY start_ms, source LIMIT ?",
                (pk, start_ms, start_ms, source, self.copy.batch_rows),
            )
            if not rows:
                return
            self.target.write_intervals(
                [
                    IntervalEnergy(
                        meter_id, from_ms(int(start)), from_ms(int(end)), _num(imp), _num(exp), str(src)
                    )
                    for start, src, end, imp, exp in rows
                ]
            )
            start_ms, source = int(rows[-1][0]), str(rows[-1][1])
            self.state.set(part, json.dumps([start_ms, source]))
            self.copy._budget.rows += len(rows)
            copied += len(rows)
            self.copy._say(f"intervals {meter_id}: {copied} more of {total}")

    def _extras(self, meter_id: str) -> None:
        pk = self._pk(meter_id)
        (total,) = self.source_sql.rows("SELECT count(*) FROM extras WHERE meter = ?", (pk,))[0]
        if not total:
            return
        part = f"extras:{meter_id}"
        name, ts_ms = _position(self.state.get(part), "", -(2**62))
        copied = 0
        while True:
            self._current = f"extras of meter {meter_id}"
            self.copy._budget.take()
            rows = self.source_sql.rows(
                "SELECT name, ts, value FROM extras WHERE meter = ? AND (name > ? OR (name = ? AND ts > ?)) "
                "ORDER BY name, ts LIMIT ?",
                (pk, name, name, ts_ms, self.copy.batch_rows),
            )
            if not rows:
                return
            self.target.write_extras(
                [Extra(meter_id, from_ms(int(ts)), str(series), float(value)) for series, ts, value in rows]
            )
            name, ts_ms = str(rows[-1][0]), int(rows[-1][1])
            self.state.set(part, json.dumps([name, ts_ms]))
            self.copy._budget.rows += len(rows)
            copied += len(rows)
            self.copy._say(f"extras {meter_id}: {copied} more of {total}")

    # --- small tables -------------------------------------------------------------------
    def _mirror(self) -> None:
        """Make each small table of the target hold exactly the source's rows, all in one transaction."""
        plans: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
        for table in MIRRORED_TABLES:
            if not (self.source_sql.has_table(table) and self.target_sql.has_table(table)):
                continue
            theirs = set(self.source_sql.columns(table))
            columns = [column for column in self.target_sql.columns(table) if column in theirs]
            listed = ", ".join(columns)
            plans.append((table, columns, self.source_sql.rows(f"SELECT {listed} FROM {table}")))
        with self.target_sql.transaction():
            for table, columns, rows in plans:
                self.target_sql.execute(f"DELETE FROM {table}")
                marks = ", ".join("?" * len(columns))
                self.target_sql.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
                )
        self.copy._say("copied " + ", ".join(f"{len(rows)} {table}" for table, _, rows in plans))


def meter_parts(meter_id: str) -> list[str]:
    """Return the names of the positions of one meter's data in ``hubcopy_state``."""
    return [f"{part}:{meter_id}" for part in ("readings", "intervals", "extras")]


def _whole_instants(stream: Iterator[Reading], size: int) -> list[Reading]:
    """Take at least ``size`` readings, and then the rest of the last instant's phases."""
    batch: list[Reading] = []
    for reading in stream:
        if len(batch) >= size and reading.ts != batch[-1].ts:
            break
        batch.append(reading)
    return batch


def _position(text: str | None, first: Any, second: Any) -> tuple[Any, Any]:
    if text is None:
        return first, second
    one, two = json.loads(text)
    return one, two


def _num(value: Any) -> float | None:
    return None if value is None else float(value)
