"""The hub's default zone: the setting, the environment, the machine; never silently UTC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meterhub import catalog
from meterhub.errors import FieldError
from meterhub.hubzone import default_zone, machine_zone, set_default_zone
from meterhub.model import Meter, Role
from meterhub.poller.config import parse_config
from meterhub.poller.hub import apply_declared_meters
from meterhub.store import Store, open_store
from meterhub.vendors.base import Discovered, DiscoveredPlace
from tests.cli.conftest import Run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'zone.db'}")
    try:
        yield opened
    finally:
        opened.close()


def test_the_setting_wins_then_the_environment_then_the_machine(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/Chicago")
    monkeypatch.delenv("METERHUB_DEFAULT_TZ", raising=False)
    assert default_zone(store).tz == "America/Chicago"
    assert "machine" in default_zone(store).source
    monkeypatch.setenv("METERHUB_DEFAULT_TZ", "Europe/Paris")
    assert default_zone(store).tz == "Europe/Paris"
    assert "METERHUB_DEFAULT_TZ" in default_zone(store).source
    assert set_default_zone(store, "Europe/Oslo").tz == "Europe/Oslo"
    assert catalog.add_meter(store, "m1", "file").tz == "Europe/Oslo"
    assert catalog.add_meter(store, "m2", "file", tz="Asia/Tokyo").tz == "Asia/Tokyo"
    assert set_default_zone(store, None).tz == "Europe/Paris"
    with pytest.raises(FieldError) as refused:
        set_default_zone(store, "Mars/Olympus")
    assert refused.value.field == "tz"


def test_the_machine_zone_is_read_from_its_link_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TZ", raising=False)
    (tmp_path / "localtime").symlink_to("/usr/share/zoneinfo/Europe/Helsinki")
    assert machine_zone(tmp_path) == "Europe/Helsinki"
    other = tmp_path / "other"
    other.mkdir()
    (other / "timezone").write_text("Australia/Perth\n", encoding="utf-8")
    assert machine_zone(other) == "Australia/Perth"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert machine_zone(empty) is None


def test_the_cli_sets_shows_and_names_the_zone_a_meter_took(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("METERHUB_DEFAULT_TZ", raising=False)
    assert "Europe/Vienna" in run("settings", "set", "default-tz", "Europe/Vienna").stdout
    shown = run("settings", "show", "--format", "csv").stdout.splitlines()
    assert shown[1] == "default-tz,Europe/Vienna,the hub's default zone"
    added = run("meters", "add", "k1", "--vendor", "file").stdout
    assert "Europe/Vienna" in added and "the hub's default zone" in added
    bad = run("settings", "set", "default-tz", "Nowhere/Land", ok=False)
    assert bad.exit_code == 1 and "unknown time zone 'Nowhere/Land'" in bad.stderr


def test_a_discovered_place_is_made_with_its_tariff_once_and_the_meter_gets_its_role(store: Store) -> None:
    tariff = {"currency": "EUR", "peak_per_kwh": 0.3, "offpeak_per_kwh": 0.2}
    place = DiscoveredPlace("home", "grid", name="Home", tz="Europe/Amsterdam", tariff=tariff)
    found = [
        Discovered("g1", "file", 1, "Europe/Amsterdam", {}, place=place),
        Discovered("s1", "file", 1, "Europe/Amsterdam", {}, place=DiscoveredPlace("home", "solar")),
    ]
    lines = [o.line for o in catalog.add_discovered(store, found)]
    assert (
        "added place home (Europe/Amsterdam, with the vendor's tariff): meter g1 is its grid meter" in lines
    )
    kept = store.get_place("home")
    assert dict(kept.meters) == {"g1": Role.GRID, "s1": Role.SOLAR}
    assert kept.tariff["peak_per_kwh"] == 0.3 and kept.name == "Home"
    chosen = {"currency": "EUR", "import_per_kwh": 0.25}
    store.update_place(type(kept)(kept.id, kept.tz, kept.name, kept.meters, chosen))
    again = catalog.add_discovered(store, found[:1])
    assert store.get_place("home").tariff == chosen  # the user's stays
    assert next(o.line for o in again) == "kept meter g1 (it exists already)"


def test_an_imported_or_declared_meter_without_a_zone_takes_the_default_and_says_so(
    run: Run, tmp_path: Path, store: Store
) -> None:
    run("settings", "set", "default-tz", "Europe/Lisbon")
    rows = tmp_path / "rows.csv"
    rows.write_text("meter,ts,power_w\nshed,2026-06-01T10:00:00Z,120\n", encoding="utf-8")
    out = run("import", str(rows)).stdout
    assert "added meter shed (file, Europe/Lisbon: the hub's default zone)" in out
    assert "shed,file,1,Europe/Lisbon" in run("meters", "list", "--format", "csv").stdout

    set_default_zone(store, "America/Denver")
    config = parse_config({"meters": [{"id": "m9", "vendor": "file"}, {"id": "m8", "vendor": "file"}]})
    store.add_meter(Meter("m8", "file", tz="Asia/Tokyo"))
    changes = apply_declared_meters(store, config.meters)
    assert "added meter m9 (file, America/Denver: the hub's default zone)" in changes
    assert store.get_meter("m9").tz == "America/Denver"
    assert store.get_meter("m8").tz == "Asia/Tokyo"  # a declared meter without tz keeps its own
