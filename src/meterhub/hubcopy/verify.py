"""Check a finished copy against its source: counts per table, settings, latest values, energy.

Counts are compared table by table and, for the tables of meter data, meter by meter. Energy is
compared per local day of each meter (the meter's own zone) over the whole span of its data,
as the ``energy`` route computes it; two figures count as equal within
:data:`ENERGY_TOLERANCE_KWH`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from meterhub.analytics.energy import meter_energy
from meterhub.hubcopy.sqlconn import SqlConn
from meterhub.store import Store
from meterhub.timeutil import from_ms

__all__ = ["ENERGY_TOLERANCE_KWH", "METER_TABLES", "Report", "verify"]

ENERGY_TOLERANCE_KWH = 1e-6
"""The largest difference of one day's energy still counted as equal (a milliwatt-hour)."""

METER_TABLES: tuple[str, ...] = ("readings", "intervals", "extras", "gaps")
"""Tables of meter data, counted per meter."""

_MAX_PROBLEMS_SHOWN = 20


@dataclass(slots=True)
class Report:
    """What the verification found; ``ok`` when nothing differs."""

    source: str
    target: str
    counts: list[tuple[str, int, int]] = field(default_factory=list)
    meters: int = 0
    days: int = 0
    largest_difference_kwh: float = 0.0
    latest_rows: int = 0
    problems: list[str] = field(default_factory=list)
    meters_to_copy_again: set[str] = field(default_factory=set)
    """Meters whose data differs: the next run sends all of it again."""

    @property
    def ok(self) -> bool:
        """Return whether the copy equals its source in everything checked."""
        return not self.problems

    def lines(self) -> list[str]:
        """Return the report as lines of text."""
        width = max([len(name) for name, _, _ in self.counts] + [5])
        out = [
            f"source {self.source}",
            f"copy   {self.target}",
            f"{'table':<{width}}  {'source':>10}  {'copy':>10}",
        ]
        for name, theirs, ours in self.counts:
            mark = "" if theirs == ours else "  MISMATCH"
            out.append(f"{name:<{width}}  {theirs:>10}  {ours:>10}{mark}")
        out.append(
            f"energy per local day: {self.meters} meters, {self.days} days, "
            f"largest difference {self.largest_difference_kwh:.6f} kWh"
        )
        out.append(f"meter settings and {self.latest_rows} latest values compared")
        shown = self.problems[:_MAX_PROBLEMS_SHOWN]
        out.extend(f"MISMATCH {problem}" for problem in shown)
        if len(self.problems) > len(shown):
            out.append(f"... and {len(self.problems) - len(shown)} more mismatches")
        out.append("verified: the copy equals the source" if self.ok else "verification FAILED")
        return out


def verify(
    source: Store, target: Store, source_sql: SqlConn, target_sql: SqlConn, tables: Sequence[str]
) -> Report:
    """Compare the copy with its source and return what was found."""
    report = Report(source_sql.label, target_sql.label)
    _count(report, "meters", source_sql, target_sql)
    for table in METER_TABLES:
        theirs, ours = _per_meter(source_sql, table), _per_meter(target_sql, table)
        report.counts.append((table, sum(theirs.values()), sum(ours.values())))
        for meter_id in sorted(set(theirs) | set(ours)):
            if theirs.get(meter_id, 0) != ours.get(meter_id, 0):
                report.meters_to_copy_again.add(meter_id)
                report.problems.append(
                    f"{table} of meter {meter_id}: {theirs.get(meter_id, 0)} in the source, "
                    f"{ours.get(meter_id, 0)} in the copy"
                )
    for table in tables:
        if source_sql.has_table(table) and target_sql.has_table(table):
            _count(report, table, source_sql, target_sql)
    meters = source.list_meters()
    copied = {meter.id: meter for meter in target.list_meters()}
    for meter in meters:
        if copied.get(meter.id) != meter:
            # Vendor options may hold secrets: name the meter, never its settings.
            report.problems.append(
                f"settings of meter {meter.id} differ (zone, interval, name or vendor options)"
            )
    _latest(report, source, target)
    for meter in meters:
        if meter.id in copied:
            _energy(report, source, target, source_sql, meter.id)
    return report


def _count(report: Report, table: str, source_sql: SqlConn, target_sql: SqlConn) -> None:
    theirs = int(source_sql.rows(f"SELECT count(*) FROM {table}")[0][0])
    ours = int(target_sql.rows(f"SELECT count(*) FROM {table}")[0][0])
    report.counts.append((table, theirs, ours))
    if theirs != ours:
        report.problems.append(f"{table}: {theirs} rows in the source, {ours} in the copy")


def _per_meter(conn: SqlConn, table: str) -> dict[str, int]:
    if not conn.has_table(table):
        return {}
    rows = conn.rows(f"SELECT m.id, count(*) FROM {table} x JOIN meters m ON m.pk = x.meter GROUP BY m.id")
    return {str(meter_id): int(count) for meter_id, count in rows}


def _latest(report: Report, source: Store, target: Store) -> None:
    theirs = {(r.meter, r.phase): r for r in source.latest(None, phase=None)}
    ours = {(r.meter, r.phase): r for r in target.latest(None, phase=None)}
    report.latest_rows = len(theirs)
    for key in sorted(set(theirs) | set(ours)):
        if theirs.get(key) != ours.get(key):
            report.meters_to_copy_again.add(key[0])
            report.problems.append(f"latest value of meter {key[0]} phase {key[1]} differs")


def _span(conn: SqlConn, meter_id: str) -> tuple[datetime, datetime] | None:
    (pk,) = conn.rows("SELECT pk FROM meters WHERE id = ?", (meter_id,))[0]
    first, last = conn.rows("SELECT min(ts), max(ts) FROM readings WHERE meter = ?", (pk,))[0]
    start, end = conn.rows("SELECT min(start_ms), max(end_ms) FROM intervals WHERE meter = ?", (pk,))[0]
    edges = [int(v) for v in (first, start) if v is not None]
    ends = [int(v) for v in (last, end) if v is not None]
    if not edges:
        return None
    return from_ms(min(edges)), from_ms(max(ends) + 1)


def _energy(report: Report, source: Store, target: Store, source_sql: SqlConn, meter_id: str) -> None:
    span = _span(source_sql, meter_id)
    if span is None:
        return
    theirs = meter_energy(source, meter_id, span[0], span[1], "day")
    ours = meter_energy(target, meter_id, span[0], span[1], "day")
    report.meters += 1
    report.days += len(theirs)
    for a, b in zip(theirs, ours, strict=True):
        difference = max(
            abs(a.energy_import_kwh - b.energy_import_kwh), abs(a.energy_export_kwh - b.energy_export_kwh)
        )
        report.largest_difference_kwh = max(report.largest_difference_kwh, difference)
        if difference > ENERGY_TOLERANCE_KWH:
            report.meters_to_copy_again.add(meter_id)
            report.problems.append(
                f"energy of meter {meter_id} on the day from {a.start.isoformat()}: "
                f"{a.energy_import_kwh:.6f}/{a.energy_export_kwh:.6f} kWh (import/export) in the source, "
                f"{b.energy_import_kwh:.6f}/{b.energy_export_kwh:.6f} in the copy"
            )
