"""A meter's settings holding a NUL are refused on every backend, never stored."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from meterhub.errors import InputError
from meterhub.model import Meter
from meterhub.store.base import Store

BAD_SETTINGS = [
    {"name": "Main\x00fuse"},
    {"tz": "Europe/Oslo\x00"},
    {"vendor": "file\x00"},
    {"options": {"host": "10.0.0.5\x00"}},
    {"options": {"ho\x00st": "10.0.0.5"}},
]


@pytest.mark.parametrize("change", BAD_SETTINGS)
def test_adding_a_meter_with_a_nul_in_its_settings_is_refused(store: Store, change: dict[str, Any]) -> None:
    meter = dataclasses.replace(Meter("m", "file", name="Main fuse"), **change)
    with pytest.raises(InputError, match="NUL"):
        store.add_meter(meter)
    assert store.list_meters() == []


@pytest.mark.parametrize("change", BAD_SETTINGS)
def test_updating_a_meter_with_a_nul_in_its_settings_is_refused(store: Store, change: dict[str, Any]) -> None:
    meter = Meter("m", "file", name="Main fuse", options={"host": "10.0.0.5"})
    store.add_meter(meter)
    with pytest.raises(InputError, match="NUL"):
        store.update_meter(dataclasses.replace(meter, **change))
    assert store.list_meters() == [meter]
