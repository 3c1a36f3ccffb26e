"""meterhub.placebook: place and tariff changes on a real SQLite store, with errors naming settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meterhub import placebook
from meterhub.errors import ConflictError, InputError, UnknownPlaceError
from meterhub.model import Meter, Role
from meterhub.placebook import FieldError
from meterhub.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    for meter_id in ("grid", "pv"):
        opened.add_meter(Meter(meter_id, "file", 1, "Europe/Oslo", 60))
    yield opened
    opened.close()


def test_a_place_is_added_with_meters_and_tariff_and_changed_in_parts(store: Store) -> None:
    placebook.add_place(
        store, "home", "Europe/Oslo", "Home", [("pv", Role.SOLAR), ("grid", Role.GRID)], {"currency": "eur"}
    )
    place = store.get_place("home")
    assert place.meters == (("grid", Role.GRID), ("pv", Role.SOLAR)) and place.tariff == {"currency": "EUR"}
    placebook.change_place(store, "home", name="Our home")
    assert (
        store.get_place("home").tariff == {"currency": "EUR"} and store.get_place("home").name == "Our home"
    )
    placebook.change_place(store, "home", tariff=None)
    assert store.get_place("home").tariff == {}
    assert placebook.detach_meter(store, "home", "pv").meters == (("grid", Role.GRID),)
    assert placebook.attach_meter(store, "home", "pv", Role.SPECIAL).meters[1] == ("pv", Role.SPECIAL)
    with pytest.raises(ConflictError):
        placebook.add_place(store, "home", "UTC")
    placebook.remove_place(store, "home")
    with pytest.raises(UnknownPlaceError):
        store.get_place("home")


@pytest.mark.parametrize(
    ("call", "setting", "words"),
    [
        (lambda s: placebook.add_place(s, "x", "Mars/Base"), "tz", "unknown time zone 'Mars/Base'"),
        (lambda s: placebook.add_place(s, "bad id", "UTC"), "id", "place id"),
        (
            lambda s: placebook.add_place(s, "x", "UTC", meters=[("nope", Role.GRID)]),
            "meters",
            "'nope' does not exist",
        ),
        (
            lambda s: placebook.add_place(s, "x", "UTC", meters=[("pv", Role.GRID), ("pv", Role.SOLAR)]),
            "meters",
            "twice",
        ),
    ],
)
def test_a_wrong_place_names_its_setting_and_stores_nothing(
    store: Store, call: object, setting: str, words: str
) -> None:
    with pytest.raises(FieldError) as raised:
        call(store)  # type: ignore[operator]
    assert raised.value.field == setting and words in str(raised.value)
    assert store.list_places() == []


@pytest.mark.parametrize(
    ("settings", "setting", "words"),
    [
        ({"currency": "EUR", "import_per_kwh": -0.1}, "import_per_kwh", "cannot be negative, got -0.1"),
        (
            {"currency": "EUR", "offpeak_per_kwh": -1, "peak_per_kwh": 1},
            "offpeak_per_kwh",
            "cannot be negative",
        ),
        ({"currency": "EUR", "fee_per_day": -1}, "fee_per_day", "cannot be negative"),
        ({"currency": "EUR", "export_per_kwh": 2e6}, "export_per_kwh", "within 1,000,000"),
        ({"currency": "EUR", "import_per_kwh": float("nan")}, "import_per_kwh", "must be a number"),
        ({"currency": "EURO"}, "currency", "three-letter"),
        ({"import_per_kwh": 1}, "currency", "needs a currency"),
        ({"currency": "EUR", "peak_per_kwh": 1}, "offpeak_per_kwh", "both a peak and an off-peak"),
        ({"currency": "EUR", "import_per_kwh": 1, "import_series": "spot"}, "import_series", "one way"),
        ({"currency": "EUR", "export_per_kwh": 1, "export_series": "spot"}, "export_series", "not both"),
        ({"peak_start_hour": 24}, "peak_start_hour", "0 to 23"),
        ({"peak_start_hour": 9, "peak_end_hour": 8}, "peak_start_hour", "0 <= start < end <= 24"),
        ({"import_series": "no spaces"}, "import_series", "price series"),
        ({"capacity_thresholds_kwh": [5, 5]}, "capacity_thresholds_kwh", "increasing"),
        ({"capacity_peak_days": 32}, "capacity_peak_days", "1 to 31"),
        ({"import_per_kwh": "x"}, "import_per_kwh", "malformed"),
        ({"colour": "red"}, "colour", "unknown tariff setting"),
    ],
)
def test_a_wrong_tariff_names_its_setting_and_keeps_the_old_one(
    store: Store, settings: dict[str, object], setting: str, words: str
) -> None:
    placebook.add_place(store, "home", "UTC", tariff={"currency": "NOK", "import_per_kwh": 1})
    with pytest.raises(FieldError) as raised:
        placebook.set_tariff(store, "home", settings)
    assert raised.value.field == setting and words in str(raised.value), str(raised.value)
    assert isinstance(raised.value, InputError)
    assert store.get_place("home").tariff == {"currency": "NOK", "import_per_kwh": 1.0}


def test_adders_and_series_prices_may_be_negative(store: Store) -> None:
    placebook.add_place(store, "home", "UTC")
    kept = placebook.set_tariff(
        store, "home", {"currency": "EUR", "import_series": "spot", "import_adder_per_kwh": -0.02}
    )
    assert kept == {"currency": "EUR", "import_series": "spot", "import_adder_per_kwh": -0.02}
    assert store.get_place("home").tariff == kept


def test_tariff_from_text_reads_a_form(store: Store) -> None:
    typed = {
        "currency": " nok ",
        "peak_per_kwh": "1.5",
        "offpeak_per_kwh": "0.5",
        "peak_start_hour": "6",
        "peak_end_hour": "",
        "peak_weekdays_only": "all",
        "capacity_thresholds_kwh": "2, 5,10",
        "capacity_peak_days": "3",
        "page": "ignored",
    }
    assert placebook.tariff_from_text(typed) == {
        "currency": "nok",
        "peak_per_kwh": 1.5,
        "offpeak_per_kwh": 0.5,
        "peak_start_hour": 6,
        "peak_weekdays_only": False,
        "capacity_thresholds_kwh": [2.0, 5.0, 10.0],
        "capacity_peak_days": 3,
    }
    for name, text, words in (
        ("fee_per_day", "ten", "must be a number, got 'ten'"),
        ("peak_end_hour", "7.5", "must be a whole number"),
        ("capacity_thresholds_kwh", "5;10", "numbers like 5,10,15"),
    ):
        with pytest.raises(FieldError) as raised:
            placebook.tariff_from_text({name: text})
        assert raised.value.field == name and words in str(raised.value)
