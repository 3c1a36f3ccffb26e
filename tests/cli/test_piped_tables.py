"""A table written to a pipe or a file is never cut to 80 columns."""

from __future__ import annotations

from tests.cli.conftest import Run

LONG_NAME = "Heat pump in the north barn behind the grain dryer, fed from sub-panel B"


def test_a_piped_table_keeps_every_cell_whole(run: Run) -> None:
    run("meters", "add", "barn-heat-pump", "--vendor", "file", "--tz", "Europe/Oslo", "--name", LONG_NAME)
    out = run("meters", "list").stdout
    assert LONG_NAME in out
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) > 80


def test_table_numbers_keep_their_digits_without_binary_noise(run: Run, db_url: str) -> None:
    from datetime import UTC, datetime

    from meterhub.model import Meter, Reading
    from meterhub.store import open_store

    store = open_store(db_url)
    store.add_meter(Meter("reg", "file"))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    store.write_readings([Reading("reg", at, power_w=0.1 + 11.75, energy_import_kwh=109552.248)])
    store.close()
    out = run("latest").stdout
    assert "109552.248" in out  # a 9-digit register is not cut to 6 significant digits
    assert "11.85" in out and "11.849999" not in out


def test_tables_show_times_in_the_meters_zone_and_csv_keeps_utc(run: Run, db_url: str) -> None:
    from datetime import UTC, datetime

    from meterhub.model import Meter, Reading
    from meterhub.store import open_store

    store = open_store(db_url)
    store.add_meter(Meter("oslo", "file", tz="Europe/Oslo"))
    at = datetime(2026, 3, 29, 1, 30, 15, 274000, tzinfo=UTC)  # 03:30:15.274 summer time in Oslo
    store.write_readings([Reading("oslo", at, power_w=5.0)])
    store.close()
    assert "2026-03-29 03:30:15+02:00 Europe/Oslo" in run("latest").stdout
    assert "2026-03-29 03:30:15+02:00 Europe/Oslo" in run("meters", "list").stdout
    assert "2026-03-29T01:30:15.274000+00:00" in run("latest", "--format", "csv").stdout


def test_a_readings_table_labels_a_local_day_by_its_local_midnight(run: Run, db_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from meterhub.model import Meter, Reading
    from meterhub.store import open_store

    store = open_store(db_url)
    store.add_meter(Meter("paris", "file", tz="Europe/Paris"))
    first = datetime(2007, 1, 31, 23, 0, tzinfo=UTC)  # 1 February, 00:00 in Paris
    store.write_readings([Reading("paris", first + timedelta(hours=h), power_w=50.0) for h in range(24)])
    store.close()
    args = ("readings", "paris", "--start", "2007-02-01", "--end", "2007-02-02", "--bucket", "1d")
    assert "2007-02-01 00:00:00+01:00 Europe/Paris" in run(*args).stdout
    assert "2007-01-31T23:00:00+00:00,24," in run(*args, "--format", "csv").stdout
