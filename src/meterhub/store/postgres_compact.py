"""The compact PostgreSQL layout of raw readings and rollups (migration ``0009_compact_pg_readings``).

Raw readings live in ``samples``, keyed ``(series, ts)``: ``series`` is the meter's pk times four
plus the phase (0 to 3), one 4-byte integer instead of a meter and a phase column, so the key
has no alignment padding. Values are whole numbers at the resolution SQLite keeps (and the store
quantises to on both backends), so every value reads back exactly as before:

======================  ===========  ==============================================
value                   scale        narrow column (``integer``) holds
======================  ===========  ==============================================
voltage, current        mV, mA       the scaled value
power, reactive power   mW, mvar     the scaled value when it fits (under 2,147 kW)
power factor            millionths   the scaled value
frequency               mHz          the scaled value
kWh and kvarh registers millionths   whole Wh (varh) when the register is whole Wh
======================  ===========  ==============================================

The vendors' payloads (see the fixtures of real ones) carry volts, amperes and watts with one to
three decimals and kWh registers with three (whole Wh), so the narrow 4-byte column holds nearly
every value they send. A value that does not fit it (a register above 2,147,483 kWh or with more
than three decimals, a power above 2,147 kW) goes, at the same full resolution, to the ``bigint``
column ``<name>_wide`` instead; an empty column costs one bit of the row's null bitmap. Nothing is
rounded beyond what SQLite keeps. Reads decode with ``COALESCE(narrow * multiplier, wide) /
scale``, in SQL, into the doubles of before.

Column order puts the 8-byte ``ts`` first and the 4-byte columns after it, so no row carries
padding; the key's index is built full (fillfactor 100), as readings arrive in time order.

The rollup tables keep their names and buckets, in the same spirit: sums as exact integers (mW,
mV, mA, and in-bucket energy in millionths of a Wh), power and voltage extremes in 4 bytes when
they fit, first and last reading times as offsets from the bucket's start, registers narrow or
wide, and the per-quantity counts empty when they equal the bucket's reading count (the usual
case). Hourly rows have no table: reads merge them from the four 15-minute rows of each hour, as
the 6-hour and local-day tables are merged from them when written.

For SQL readers, the view ``readings`` shows the rows as before: ``meter``, ``phase``, ``ts`` and
every value in its canonical unit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from psycopg import sql

from meterhub.errors import InputError
from meterhub.model import READING_FIELDS, Reading
from meterhub.store.postgres_schema import Conn, PartitionCache, month_bounds_ms
from meterhub.store.rollup import Agg
from meterhub.timeutil import from_ms

__all__ = [
    "HOUR_TABLE",
    "PHASES",
    "QUARTER_TABLE",
    "ROLLUP_COLUMNS",
    "ROLLUP_TYPES",
    "SAMPLE_COLUMNS",
    "SAMPLE_COPY_TYPES",
    "compact_rollup_row",
    "decoded",
    "decoded_rollup",
    "delete_series_sql",
    "encode_reading",
    "ensure_sample_partitions",
    "is_compact",
    "merge_sets",
    "merged_select",
    "migrate_0009_compact",
    "present",
    "rollup_rows",
    "rollup_table_sql",
    "sample_partition_name",
    "series_of",
    "series_range",
    "split_sql",
]

PHASES = 4
"""Phases per meter (0 for the total, 1 to 3): a meter's series are pk * 4 to pk * 4 + 3."""
_INT4 = 1 << 31
_INT8 = 1 << 63


class ValueColumn(NamedTuple):
    """Where one reading field is kept: narrow ``integer`` and wide ``bigint`` column."""

    field: str
    narrow: str
    scale: int
    """Canonical unit to the wide column's whole number."""
    multiplier: int
    """Narrow column's unit in wide units (1000 for registers kept in Wh)."""

    @property
    def wide(self) -> str:
        """The wide column's name."""
        return f"{self.narrow}_wide"


VALUE_COLUMNS: tuple[ValueColumn, ...] = (
    ValueColumn("voltage_v", "v", 1000, 1),
    ValueColumn("current_a", "i", 1000, 1),
    ValueColumn("power_w", "p", 1000, 1),
    ValueColumn("reactive_power_var", "q", 1000, 1),
    ValueColumn("power_factor", "pf", 1_000_000, 1),
    ValueColumn("frequency_hz", "f", 1000, 1),
    ValueColumn("energy_import_kwh", "ei", 1_000_000, 1000),
    ValueColumn("energy_export_kwh", "ee", 1_000_000, 1000),
    ValueColumn("reactive_import_kvarh", "qi", 1_000_000, 1000),
    ValueColumn("reactive_export_kvarh", "qe", 1_000_000, 1000),
)
"""In READING_FIELDS order."""
assert tuple(c.field for c in VALUE_COLUMNS) == READING_FIELDS
_BY_FIELD = {column.field: column for column in VALUE_COLUMNS}

SAMPLE_COLUMNS: tuple[str, ...] = (
    "ts",
    "series",
    *(c.narrow for c in VALUE_COLUMNS),
    *(c.wide for c in VALUE_COLUMNS),
)
"""Columns of ``samples`` in table order (8-byte, then 4-byte, then the usually empty wide ones)."""
SAMPLE_COPY_TYPES: list[str] = [
    "int8",
    "int4",
    *["int4"] * len(VALUE_COLUMNS),
    *["int8"] * len(VALUE_COLUMNS),
]


def series_of(pk: int, phase: int) -> int:
    """Return the series key of a meter's phase."""
    return pk * PHASES + phase


def series_range(pk: int) -> tuple[int, int]:
    """Return the series keys [lo, hi) of every phase of a meter."""
    return pk * PHASES, pk * PHASES + PHASES


def decoded(field: str, alias: str = "") -> str:
    """Return the SQL expression giving a reading field as a double in its canonical unit."""
    c = _BY_FIELD[field]
    narrow, wide = f"{alias}{c.narrow}", f"{alias}{c.wide}"
    if c.multiplier == 1:
        return f"COALESCE({narrow}::int8, {wide})::float8 / {c.scale}"
    return f"COALESCE({narrow}::int8 * {c.multiplier}, {wide})::float8 / {c.scale}"


def present(field: str, alias: str = "") -> str:
    """Return the SQL condition that a row carries ``field``."""
    c = _BY_FIELD[field]
    return f"({alias}{c.narrow} IS NOT NULL OR {alias}{c.wide} IS NOT NULL)"


def encode_reading(reading: Reading) -> tuple[tuple[float | None, ...], list[int | None]]:
    """Return a reading's values quantised (as both backends store them) and its value columns
    (narrow then wide, in SAMPLE_COLUMNS order); raise InputError for a value too large to keep."""
    floats: list[float | None] = []
    narrow: list[int | None] = []
    wide: list[int | None] = []
    for value, column in zip(reading.values(), VALUE_COLUMNS, strict=True):
        if value is None:
            floats.append(None)
            narrow.append(None)
            wide.append(None)
            continue
        scaled = value * column.scale
        if not abs(scaled) < _INT8:
            raise InputError(
                f"reading of meter {reading.meter!r} at {reading.ts.isoformat()} holds a value too "
                "large to store (ingest rejects such values with their reason)"
            )
        whole = round(scaled)
        floats.append(whole / column.scale)
        small, rest = divmod(whole, column.multiplier)
        if rest == 0 and -_INT4 <= small < _INT4:
            narrow.append(small)
            wide.append(None)
        else:
            narrow.append(None)
            wide.append(whole)
    return tuple(floats), narrow + wide


def sample_partition_name(month_start_ms: int) -> str:
    """Return the name of the samples partition of the month starting at ``month_start_ms``."""
    start = from_ms(month_start_ms)
    return f"samples_{start.year:04d}{start.month:02d}"


def _create_partitions(conn: Conn, bounds: Iterable[tuple[int, int]]) -> None:
    for start, end in bounds:
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF samples FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(sample_partition_name(start)), sql.Literal(start), sql.Literal(end)
            )
        )


def ensure_sample_partitions(
    conn: Conn, ts_values: Iterable[int], cache: PartitionCache | None = None, lock_key: int = 0
) -> None:
    """Create the monthly samples partitions ``ts_values`` fall in; run outside a transaction."""
    cache = cache if cache is not None else PartitionCache()
    missing = cache.missing(ts_values)
    if not missing:
        return
    # One short transaction of its own: CREATE ... PARTITION OF locks the parent table.
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 1)", (lock_key,))
        _create_partitions(conn, missing)
    cache.months.update(start for start, _ in missing)


_SAMPLES_DDL = (
    "CREATE TABLE samples (ts bigint NOT NULL, series integer NOT NULL, "
    + ", ".join(f"{c.narrow} integer" for c in VALUE_COLUMNS)
    + ", "
    + ", ".join(f"{c.wide} bigint" for c in VALUE_COLUMNS)
    + ", PRIMARY KEY (series, ts) WITH (fillfactor = 100)) PARTITION BY RANGE (ts)"
)

_READINGS_VIEW = (
    "CREATE VIEW readings AS SELECT m.pk AS meter, ph.phase::smallint AS phase, s.ts, "
    + ", ".join(f"{decoded(field, 's.')} AS {field}" for field in READING_FIELDS)
    + f" FROM meters m CROSS JOIN generate_series(0, {PHASES - 1}) AS ph(phase) "
    f"JOIN samples s ON s.series = m.pk * {PHASES} + ph.phase"
)
"""Raw readings as before, for SQL readers: a meter's rows come from its four series' index ranges."""

# --- rollups ------------------------------------------------------------------------------

QUARTER_TABLE = "rollup_15m"
HOUR_TABLE = "rollup_1h"
"""Hourly rollups are merged from the 15-minute rows when read: no table of their own."""
HOUR_MS = 3_600_000
_EXTREMES = ("power_min", "power_max", "voltage_min", "voltage_max")
_COUNTED = ("power_n", "voltage_n", "current_n")
_REGISTERS = ("first_import", "first_export", "last_import", "last_export")
_SUMS = ("power_sum", "voltage_sum", "current_sum", "energy_import", "energy_export", "n", "covered_ms")

_ROLLUP_LAYOUT: tuple[tuple[str, str], ...] = (
    ("bucket", "bigint NOT NULL"),
    ("power_sum", "bigint NOT NULL"),
    ("voltage_sum", "bigint NOT NULL"),
    ("current_sum", "bigint NOT NULL"),
    ("energy_import", "bigint NOT NULL"),
    ("energy_export", "bigint NOT NULL"),
    *((f"{name}_wide", "bigint") for name in (*_EXTREMES, *_REGISTERS)),
    ("series", "integer NOT NULL"),
    ("n", "integer NOT NULL"),
    *((name, "integer") for name in _COUNTED),
    *((name, "integer") for name in _EXTREMES),
    ("first_off", "integer"),
    ("last_off", "integer"),
    *((name, "integer") for name in _REGISTERS),
    ("covered_ms", "integer NOT NULL"),
)
ROLLUP_COLUMNS: tuple[str, ...] = tuple(name for name, _ in _ROLLUP_LAYOUT)
"""Compact rollup-table columns in table order: sums in mW, mV, mA; in-bucket energy in millionths
of a Wh; power and voltage extremes in mW and mV (wide when beyond 4 bytes); first and last
reading times as ms after the bucket start; registers narrow (Wh) or wide (millionths of a kWh);
counts of power, voltage and current readings empty when they equal ``n``."""
ROLLUP_TYPES: tuple[str, ...] = tuple(kind.split()[0] for _, kind in _ROLLUP_LAYOUT)


def rollup_table_sql(name: str) -> str:
    """Return the DDL of one compact rollup table."""
    columns = ", ".join(f"{column} {kind}" for column, kind in _ROLLUP_LAYOUT)
    return f"CREATE TABLE {name} ({columns}, PRIMARY KEY (series, bucket) WITH (fillfactor = 100))"


def _whole(name: str, alias: str) -> str:
    """Return the SQL value (bigint) of a narrow-or-wide column."""
    return f"COALESCE({alias}{name}::int8, {alias}{name}_wide)"


def _fits(expr: str) -> str:
    return f"({expr}) BETWEEN {-_INT4} AND {_INT4 - 1}"


def split_sql(name: str, expr: str) -> dict[str, str]:
    """Return the narrow and wide columns' SQL for a bigint expression (NULL stays NULL)."""
    return {
        name: f"CASE WHEN {_fits(expr)} THEN ({expr})::int END",
        f"{name}_wide": f"CASE WHEN NOT {_fits(expr)} THEN {expr} END",
    }


_ROLLUP_DECODED: dict[str, str] = {
    "bucket": "{a}bucket",
    "n": "{a}n",
    **{name: f"COALESCE({{a}}{name}, {{a}}n)" for name in _COUNTED},
    "power_sum_w": "{a}power_sum::float8 / 1000",
    "voltage_sum_v": "{a}voltage_sum::float8 / 1000",
    "current_sum_a": "{a}current_sum::float8 / 1000",
    "power_min_w": _whole("power_min", "{a}") + "::float8 / 1000",
    "power_max_w": _whole("power_max", "{a}") + "::float8 / 1000",
    "voltage_min_v": _whole("voltage_min", "{a}") + "::float8 / 1000",
    "voltage_max_v": _whole("voltage_max", "{a}") + "::float8 / 1000",
    "first_ts": "{a}bucket + {a}first_off",
    "last_ts": "{a}bucket + {a}last_off",
    **{
        f"{name}_kwh": f"COALESCE({{a}}{name}::int8 * 1000, {{a}}{name}_wide)::float8 / 1000000"
        for name in _REGISTERS
    },
    "energy_import_kwh": "{a}energy_import::float8 / 1000000000",
    "energy_export_kwh": "{a}energy_export::float8 / 1000000000",
    "covered_ms": "{a}covered_ms",
}


def decoded_rollup(name: str, alias: str = "") -> str:
    """Return the SQL expression giving a rollup figure (old column name) in its canonical unit."""
    return _ROLLUP_DECODED[name].format(a=alias)


def merge_sets() -> list[str]:
    """Return the ``SET`` list merging an incoming row (EXCLUDED) into a stored one (r)."""
    first_wins = (
        "EXCLUDED.first_off IS NOT NULL AND (r.first_off IS NULL OR EXCLUDED.first_off < r.first_off)"
    )
    last_wins = "EXCLUDED.last_off IS NOT NULL AND (r.last_off IS NULL OR EXCLUDED.last_off >= r.last_off)"
    sets = [f"{c} = r.{c} + EXCLUDED.{c}" for c in _SUMS]
    # A count equal to n is kept empty: it stays so only while both sides' are.
    sets += [
        f"{c} = NULLIF(COALESCE(r.{c}, r.n) + COALESCE(EXCLUDED.{c}, EXCLUDED.n), r.n + EXCLUDED.n)"
        for c in _COUNTED
    ]
    for c in _EXTREMES:
        pick = "LEAST" if c.endswith("_min") else "GREATEST"
        merged = f"{pick}({_whole(c, 'r.')}, {_whole(c, 'EXCLUDED.')})"
        sets += [f"{column} = {expr}" for column, expr in split_sql(c, merged).items()]
    # Every right-hand side sees the row as it was, so the order of these does not matter.
    for c in ("first_off", *_REGISTERS[:2], *(f"{r}_wide" for r in _REGISTERS[:2])):
        sets.append(f"{c} = CASE WHEN {first_wins} THEN EXCLUDED.{c} ELSE r.{c} END")
    for c in ("last_off", *_REGISTERS[2:], *(f"{r}_wide" for r in _REGISTERS[2:])):
        sets.append(f"{c} = CASE WHEN {last_wins} THEN EXCLUDED.{c} ELSE r.{c} END")
    return sets


def _fine_edge(column: str, marker: str, descending: bool) -> str:
    order = " DESC" if descending else ""
    return f"(array_agg(r.{column} ORDER BY r.bucket{order}) FILTER (WHERE r.{marker} IS NOT NULL))[1]"


def merged_select(lo: str, series: str) -> str:
    """Return the select list (ROLLUP_COLUMNS order) merging 15-minute rows ``r`` grouped into
    buckets starting at ``lo``, of series ``series``."""
    merged = {
        "bucket": lo,
        "series": series,
        **{c: f"sum(r.{c})" for c in _SUMS},
        **{c: f"NULLIF(sum(COALESCE(r.{c}, r.n)), sum(r.n))" for c in _COUNTED},
        "first_off": f"min(r.bucket + r.first_off) - {lo}",
        "last_off": f"max(r.bucket + r.last_off) - {lo}",
    }
    for c in _EXTREMES:
        merged.update(split_sql(c, f"{'min' if c.endswith('_min') else 'max'}({_whole(c, 'r.')})"))
    for c in _REGISTERS:
        marker, descending = ("first_off", False) if c.startswith("first") else ("last_off", True)
        merged[c] = _fine_edge(c, marker, descending)
        merged[f"{c}_wide"] = _fine_edge(f"{c}_wide", marker, descending)
    return ", ".join(f"{merged[c]} AS {c}" for c in ROLLUP_COLUMNS)


_HOUR_OF = f"(r.bucket - mod(r.bucket, {HOUR_MS}))"


def rollup_rows(table: str, series: str, lo: str, hi: str) -> str:
    """Return a FROM item: ``table``'s compact rows of one series whose buckets start in [lo, hi).

    The hourly rows are merged here from the 15-minute rows of those hours (``lo`` and ``hi``
    must then be whole hours).
    """
    where = f"r.series = {series} AND r.bucket >= {lo} AND r.bucket < {hi}"
    if table != HOUR_TABLE:
        return f"(SELECT * FROM {table} r WHERE {where})"
    return (
        f"(SELECT {merged_select(_HOUR_OF, 'r.series')} FROM {QUARTER_TABLE} r WHERE {where} "
        f"GROUP BY r.series, {_HOUR_OF})"
    )


def _scaled(value: float | None, scale: float) -> int | None:
    return None if value is None else round(value * scale)


def _split(whole: int | None) -> tuple[int | None, int | None]:
    """Return the (narrow, wide) columns of a whole number."""
    if whole is None:
        return None, None
    return (whole, None) if -_INT4 <= whole < _INT4 else (None, whole)


def _register(value: float | None) -> tuple[int | None, int | None]:
    """Return a register's (narrow Wh, wide millionths of a kWh) columns."""
    if value is None:
        return None, None
    whole = round(value * 1e6)
    small, rest = divmod(whole, 1000)
    return (small, None) if rest == 0 and -_INT4 <= small < _INT4 else (None, whole)


def compact_rollup_row(series: int, agg: Agg) -> tuple[int | None, ...]:
    """Return the compact rollup-table row of an accumulator, in ROLLUP_COLUMNS order."""
    b, n = agg.bucket_ms, agg.n
    extremes = [_split(_scaled(v, 1e3)) for v in (agg.p_min, agg.p_max, agg.v_min, agg.v_max)]
    registers = [_register(v) for v in (agg.first_imp, agg.first_exp, agg.last_imp, agg.last_exp)]
    return (
        b, round(agg.p_sum * 1e3), round(agg.v_sum * 1e3), round(agg.i_sum * 1e3),
        round(agg.e_imp * 1e9), round(agg.e_exp * 1e9),
        *(wide for _, wide in extremes), *(wide for _, wide in registers),
        series, n,
        None if agg.p_n == n else agg.p_n, None if agg.v_n == n else agg.v_n,
        None if agg.i_n == n else agg.i_n,
        *(narrow for narrow, _ in extremes),
        None if agg.first_ms is None else agg.first_ms - b,
        None if agg.last_ms is None else agg.last_ms - b,
        *(narrow for narrow, _ in registers), agg.covered_ms,
    )  # fmt: skip


def is_compact(conn: Conn) -> bool:
    """Return whether this schema has the compact layout (migration 0009 applied)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = 'samples' "
        "AND relnamespace = to_regnamespace(current_schema())::oid)"
    ).fetchone()
    return bool(row and row[0])


# --- migration ------------------------------------------------------------------------------

_OLD_ROLLUP_TABLES = ("rollup_15m", "rollup_6h", "rollup_day")


def _encoded_sql(column: ValueColumn, narrow: bool) -> str:
    """Return the SQL turning an old double column into the narrow or wide column."""
    whole = f"round({column.field} * {column.scale})::bigint"
    m = column.multiplier
    fits = f"mod({whole}, {m}) = 0 AND {_fits(f'{whole} / {m}')}"
    if narrow:
        return f"CASE WHEN {fits} THEN ({whole} / {m})::int END"
    return f"CASE WHEN NOT ({fits}) THEN {whole} END"


def _old_rollup_select() -> str:
    """Return the select list turning an old rollup row into a compact one (ROLLUP_COLUMNS order)."""
    exprs = {
        "bucket": "bucket",
        "power_sum": "round(power_sum_w * 1000)::bigint",
        "voltage_sum": "round(voltage_sum_v * 1000)::bigint",
        "current_sum": "round(current_sum_a * 1000)::bigint",
        "energy_import": "round(energy_import_kwh * 1000000000)::bigint",
        "energy_export": "round(energy_export_kwh * 1000000000)::bigint",
        "series": f"meter * {PHASES} + phase",
        "n": "n",
        **{name: f"NULLIF({name}, n)" for name in _COUNTED},
        "first_off": "(first_ts - bucket)::int",
        "last_off": "(last_ts - bucket)::int",
        "covered_ms": "covered_ms::int",
    }
    for name in _EXTREMES:
        unit = "w" if name.startswith("power") else "v"
        exprs.update(split_sql(name, f"round({name}_{unit} * 1000)::bigint"))
    for name in _REGISTERS:
        register = ValueColumn(f"{name}_kwh", name, 1_000_000, 1000)
        exprs[name] = _encoded_sql(register, True)
        exprs[f"{name}_wide"] = _encoded_sql(register, False)
    return ", ".join(exprs[column] for column in ROLLUP_COLUMNS)


def migrate_0009_compact(conn: Conn) -> None:
    """Convert raw readings and rollups to the compact layout in place, without losing a value.

    Old rows hold values already quantised to the store's resolution, so rounding them to whole
    numbers at that resolution is exact. A database whose earlier migrations left the rollups to
    this one (it came from before ``0002``) gets them computed from the raw rows here.
    """
    from meterhub.store.postgres_rollups import rebuild_all, rebuild_coarse

    conn.execute("ALTER TABLE readings RENAME TO readings_0008")
    conn.execute(_SAMPLES_DDL)
    # One partition per month the old partitions hold rows of (each held exactly one month).
    months: set[tuple[int, int]] = set()
    for (name,) in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'readings_0008'::regclass"
    ).fetchall():
        row = conn.execute(sql.SQL("SELECT min(ts) FROM {}").format(sql.Identifier(str(name)))).fetchone()
        if row is not None and row[0] is not None:
            months.add(month_bounds_ms(int(row[0])))
    _create_partitions(conn, sorted(months))
    values = [_encoded_sql(c, True) for c in VALUE_COLUMNS] + [_encoded_sql(c, False) for c in VALUE_COLUMNS]
    conn.execute(
        f"INSERT INTO samples ({', '.join(SAMPLE_COLUMNS)}) "
        f"SELECT ts, meter * {PHASES} + phase, {', '.join(values)} "
        "FROM readings_0008 ORDER BY meter, phase, ts"
    )
    conn.execute("DROP TABLE readings_0008")
    had_fine = had_coarse = False
    for table in _OLD_ROLLUP_TABLES:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_0008")
        conn.execute(f"ALTER INDEX {table}_pkey RENAME TO {table}_0008_pkey")
        conn.execute(rollup_table_sql(table))
        inserted = conn.execute(
            f"INSERT INTO {table} ({', '.join(ROLLUP_COLUMNS)}) SELECT {_old_rollup_select()} "
            f"FROM {table}_0008 ORDER BY meter, phase, bucket"
        ).rowcount
        if table == QUARTER_TABLE:
            had_fine = inserted > 0
        else:
            had_coarse = had_coarse or inserted > 0
        conn.execute(f"DROP TABLE {table}_0008")
    conn.execute(f"DROP TABLE {HOUR_TABLE}")  # merged from the 15-minute rows when read
    conn.execute(_READINGS_VIEW)
    if not had_fine:
        rebuild_all(conn)
    if not had_coarse:
        for pk, tz in conn.execute("SELECT pk, tz FROM meters ORDER BY pk").fetchall():
            rebuild_coarse(conn, int(pk), str(tz))
    # Fresh tables have no planner statistics until autovacuum comes by: take them now (sampled).
    conn.execute(f"ANALYZE samples, {QUARTER_TABLE}, rollup_6h, rollup_day")


def delete_series_sql(table: str) -> str:
    """Return the statement removing one meter's rows (every phase) from a series-keyed table."""
    return f"DELETE FROM {table} WHERE series >= %s AND series < %s"
