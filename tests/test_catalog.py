"""The catalog: adding, changing and removing meters with one set of checks, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from meterhub import catalog
from meterhub.catalog import FieldError
from meterhub.errors import ConflictError, UnknownMeterError
from meterhub.store import Store, open_store
from meterhub.vendors.base import Discovered
from tests.simservers import simulator


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"meter_id": "has space"}, "id", "'has space'"),
        ({"vendor": "acme"}, "vendor", "unknown vendor 'acme'; choose one of iammeter"),
        (
            {"tz": "Mars/Olympus"},
            "tz",
            "unknown time zone 'Mars/Olympus' (use an IANA name like Europe/Oslo)",
        ),
        ({"tz": "America"}, "tz", "unknown time zone 'America'"),
        ({"phases": 4}, "phases", "phases must be 1, 2 or 3"),
        ({"interval_s": 0}, "interval_s", "the interval must be 1 to 86400 seconds"),
        ({"name": "a\nb"}, "name", "control character"),
        ({"options": {"Bad-Key": "1"}}, "options.Bad-Key", "must be lower-case letters"),
        ({"options": {"password": "hunter2"}}, "options.password", "must be a reference like env:"),
        ({"options": {"token": "env:1BAD"}}, "options.token", "a reference must look like env:VARIABLE_NAME"),
    ],
)
def test_add_refuses_a_bad_value_naming_its_field(
    store: Store, fields: dict[str, object], field: str, message: str
) -> None:
    given: dict[str, object] = {"meter_id": "m1", "vendor": "file", **fields}
    with pytest.raises(FieldError) as refused:
        catalog.add_meter(store, **given)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert message in str(refused.value)
    assert "hunter2" not in str(refused.value)
    assert store.list_meters() == []


def test_add_defaults_to_the_devices_own_interval_and_refuses_a_taken_id(store: Store) -> None:
    options = {"devid": "17", "devpass": "env:SM_PIN", "rate_class": "extended"}
    meter = catalog.add_meter(store, "sm", "SmartMAC", phases=3, tz="Europe/Oslo", options=options)
    assert (meter.vendor, meter.interval_s) == ("smartmac", 6)
    assert catalog.add_meter(store, "f", "file").interval_s == 60
    umeter = {"ean": "8716", "username": "u", "password": "env:U_PASSWORD"}
    assert catalog.add_meter(store, "u", "umeter", interval_s=1800, options=umeter).interval_s == 1800
    with pytest.raises(ConflictError):
        catalog.add_meter(store, "sm", "file")
    assert store.get_meter("sm").options["devpass"] == "env:SM_PIN"


def test_update_merges_options_removes_those_set_to_none_and_checks_as_add(store: Store) -> None:
    catalog.add_meter(store, "ams", "amsreader", options={"host": "a", "base_url": "b"})
    updated = catalog.update_meter(
        store, "ams", name="Reader", interval_s=10, options={"host": "c", "base_url": None}
    )
    assert dict(updated.options) == {"host": "c"} and (updated.name, updated.interval_s) == ("Reader", 10)
    assert store.get_meter("ams") == updated
    with pytest.raises(FieldError) as refused:
        catalog.update_meter(store, "ams", tz="Nowhere/Land")
    assert refused.value.field == "tz"
    with pytest.raises(FieldError):
        catalog.update_meter(store, "ams", options={"key": "plain-secret"})
    assert store.get_meter("ams").tz == "UTC"
    with pytest.raises(UnknownMeterError):
        catalog.update_meter(store, "nope", name="x")


def test_remove_deletes_the_meter(store: Store) -> None:
    catalog.add_meter(store, "f", "file")
    assert catalog.remove_meter(store, "f") == 0
    with pytest.raises(UnknownMeterError):
        store.get_meter("f")


def test_discovery_asks_the_vendor_and_adding_keeps_existing_ids(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator("umeter") as sim:
        info = sim.info()
        monkeypatch.setenv("T_UM_USER", info["credentials"]["username"])
        monkeypatch.setenv("T_UM_PASSWORD", info["credentials"]["password"])
        options = {"base_url": sim.base_url, "username": "env:T_UM_USER", "password": "env:T_UM_PASSWORD"}
        found = anyio.run(catalog.discover_meters, store, "umeter", options)
    assert [d.suggested_id for d in found] == [f"umeter-{ean}" for ean in info["eans"]]
    assert all(d.options["password"] == "env:T_UM_PASSWORD" for d in found)
    catalog.add_meter(store, found[0].suggested_id, "file")
    outcomes = [o for o in catalog.add_discovered(store, found) if o.about == "meter"]
    assert [o.added for o in outcomes] == [False] + [True] * (len(found) - 1)
    assert store.get_meter(found[0].suggested_id).vendor == "file"  # kept as it was


def test_discovery_refuses_file_and_a_found_meter_with_a_secret_in_the_clear(store: Store) -> None:
    with pytest.raises(FieldError) as refused:
        anyio.run(catalog.discover_meters, store, "file", {})
    assert refused.value.field == "vendor"
    clear = Discovered("x1", "umeter", 1, "X", {"password": "plain"})
    with pytest.raises(FieldError):
        catalog.add_discovered(store, [clear])
    assert store.list_meters() == []
