"""--end defaults to now in the CLI, as it does in the API."""

from __future__ import annotations

from datetime import timedelta

from meterhub.model import Meter, Reading, utc_now
from meterhub.store import open_store
from tests.cli.conftest import Run


def test_commands_run_without_end(run: Run, db_url: str) -> None:
    store = open_store(db_url)
    store.add_meter(Meter("m", "file", tz="Europe/Oslo"))
    recent = utc_now().replace(microsecond=0) - timedelta(minutes=30)
    store.write_readings([Reading("m", recent, power_w=321.0, energy_import_kwh=10.0)])
    store.close()
    exported = run("export", "--start", "now-2h", "--format", "csv").stdout.splitlines()
    assert len(exported) == 2 and exported[1].startswith(f"m,{recent.isoformat()},0,")
    assert "321" in run("readings", "m", "--start", "now-2h", "--format", "csv").stdout
    power = run("analyze", "power", "m", "--start", "now-2h", "--format", "json").stdout
    assert '"max_w": 321.0' in power or '"max_power_w": 321.0' in power, power
