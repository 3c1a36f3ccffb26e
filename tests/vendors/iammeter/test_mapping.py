"""IAMMETER payloads map to the model: the seed's examples, captured local answers, fuzz."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import strategies as st
from tests.vendors.mapping_checks import (
    JSON,
    STRUCTURED_VALUES,
    assert_accepted,
    check_items,
    decode_fuzz_test,
    fuzz_test,
    maps_or_refuses,
    replaced,
    wrong_leaves,
)

from meterhub.errors import PayloadError
from meterhub.model import IntervalEnergy, Reading
from meterhub.vendors.iammeter import mapping

from . import seed_examples as seed

# Captured IAMMETER local API answers (GET /monitorjson), copied from /work/shared/fixtures/iammeter/
# with their provenance (see the fixtures' README.md):
MONITORJSON_3P_WEM3080T = json.loads(
    # lewei50/iammeter, Tools/Local API-IAMMETER/wem.py (docstring), commit 94585def; licence not stated
    '{"method":"uploadsn","mac":"B0F8933C4F7E","version":"1.72.7","server":"em","SN":"E395281A",'
    '"Datas":[[236.0,4.4,-1044,0.92,0.04,49.99,1.00],[220.0,10.0,-1100,6971.88,1789550.92,49.99,0.50],'
    "[220.0,10.0,-1213,8.60,8.44,49.99,0.55]]}"
)
MONITORJSON_1P_LEGACY = json.loads(
    # lewei50/iammeter, Tools/Local API-IAMMETER/demo-pvoutput.py (docstring), commit 94585def
    '{"status":"succeed","data":[235.00,1.214,189,1265.17,0.00]}'
)
MONITORJSON_1P_FW_I91 = json.loads(
    # IAMMETER/appstore, docs/IAMMETER_Data_Integration_Guide.md, commit a5814f34; licence not stated
    '{"method":"1-272","mac":"B0F8932A295C","version":"i.91.063T2","server":"em","SN":"DA2BED94",'
    '"Data":[226.85,1.31,152.0,22920.38,0.00,49.97,0.51]}'
)
MONITORJSON_3P_REACTIVE = json.loads(
    # IAMMETER/appstore, docs/IAMMETER_Data_Integration_Guide.md (Datas + EA.Reactive fragments)
    '{"Datas":[[226.2,1.420,197.0,423.676,0.000,50.03,0.61],[226.6,1.420,197.0,423.527,0.000,50.03,0.61],'
    '[226.1,1.420,199.0,427.346,0.000,50.03,0.62]],'
    '"EA":{"Reactive":[[-119.0,0.000,258.703],[-120.0,0.000,260.278],[-118.0,0.007,256.485]]}}'
)

METER = "iam-1"
OSLO = ZoneInfo("Europe/Oslo")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def by_phase(readings: list[Reading]) -> dict[int, Reading]:
    phases = {r.phase: r for r in readings}
    assert len(phases) == len(readings), "one reading per phase"
    return phases


def test_single_phase_meterdata_is_phase_0_at_gmt_time() -> None:
    (reading,) = mapping.map_meterdata(seed.METERDATA_1P, METER)
    assert reading == Reading(METER, utc(2020, 8, 28, 5, 27, 33), 0, voltage_v=230.22, current_a=1.3,
                              power_w=119.0, energy_import_kwh=1766.59, energy_export_kwh=0.0)


def test_meterdata2_puts_the_power_factor_after_the_power() -> None:
    (reading,) = mapping.map_meterdata(seed.METERDATA2_1P, METER)
    assert reading.ts == utc(2023, 11, 21, 6, 30, 22)
    assert (reading.power_w, reading.power_factor, reading.energy_import_kwh) == (111.0, 0.66, 5724.85)


def test_three_phase_meterdata_sums_phases_into_phase_0() -> None:
    phases = by_phase(mapping.map_meterdata(seed.METERDATA_3P, METER))
    assert sorted(phases) == [0, 1, 2, 3]
    assert phases[2].energy_export_kwh == 17704.72
    total = phases[0]
    assert total.power_w == pytest.approx(216.0 + 1986.0)
    assert total.current_a == pytest.approx(2.0)
    assert total.energy_import_kwh == pytest.approx(32354.6 + 30536.41)
    assert total.voltage_v == pytest.approx(242.6)  # the dead phase C (0 V) stays out of the mean
    assert total.power_factor is None


def test_open_phases_do_not_drag_the_voltage_mean() -> None:
    phases = by_phase(mapping.map_meterdata(seed.METERDATA2_3P, METER))
    assert phases[0].voltage_v == pytest.approx(233.8)  # 5 V and 3.1 V are induction, not supply
    assert phases[2].voltage_v == 5.0
    assert phases[1].power_factor == 0.57


def test_metersdata_flat_nested_seven_columns_and_nem_rows() -> None:
    meters = {m.sn: m for m in mapping.metersdata_meters(seed.METERSDATA)}
    assert {sn: m.phases for sn, m in meters.items()} == {
        "DA2BED94": 1, "B384789C": 3, "674B1E5D": 3, "59C9AB8D": 3, "3FE34ABE": 3,
    }
    ids = {"DA2BED94": "flat", "B384789C": "nem", "3FE34ABE": "seven"}
    readings = mapping.map_metersdata(seed.METERSDATA, ids)
    flat = [r for r in readings if r.meter == "flat"]
    assert flat == [Reading("flat", utc(2024, 2, 22, 3, 46, 20), 0, voltage_v=223.71, current_a=1.74,
                            power_w=225.0, energy_import_kwh=14761.03, energy_export_kwh=0.0)]
    nem = by_phase([r for r in readings if r.meter == "nem"])
    assert sorted(nem) == [0, 1, 2]  # the null row of phase C is no reading
    assert nem[0].power_w == -2747.0  # the NEM net row is phase 0, not the sum of phases
    assert nem[0].energy_export_kwh == 18489.44
    assert nem[1].frequency_hz is None and nem[1].power_factor is None  # null padding
    seven = by_phase([r for r in readings if r.meter == "seven"])
    assert (seven[2].frequency_hz, seven[2].power_factor, seven[2].power_w) == (49.99, 0.94, -2650.1)
    assert seven[0].power_w == pytest.approx(3650.1 - 2650.1 + 1000)
    assert seven[0].frequency_hz == 49.99


def test_meterdatalist_takes_the_last_time_as_gmt_as_the_examples_do() -> None:
    readings = mapping.map_meterdatalist(seed.METERDATALIST_1P, METER)
    assert [r.ts for r in readings] == [utc(2023, 9, 11, 14, 0, 34), utc(2023, 9, 11, 14, 1, 33)]
    assert {r.phase for r in readings} == {0}


def test_meterdatalist_follows_the_meter_zone_when_the_order_is_the_seed_text() -> None:
    # The seed's text says "utc time, local time": in a UTC-8 zone the first time is GMT.
    readings = mapping.map_meterdatalist(seed.METERDATALIST_3P, METER, ZoneInfo("Etc/GMT+8"))
    assert readings[0].ts == utc(2023, 9, 12, 0, 0, 15)
    shanghai = mapping.map_meterdatalist(seed.METERDATALIST_3P, METER, ZoneInfo("Asia/Shanghai"))
    assert shanghai[0].ts == utc(2023, 9, 11, 16, 0, 15)
    phases = by_phase(shanghai[:4])
    assert phases[2].energy_export_kwh == 290.77
    assert phases[0].energy_import_kwh == pytest.approx(468.41 + 236.58 + 258.62)


def test_meterdatalist2_items_read_gmt_time() -> None:
    readings = mapping.map_meterdatalist2(seed.METERDATALIST2_3P, METER)
    assert sorted({r.ts for r in readings}) == [
        utc(2023, 8, 31, 16, 0, 22), utc(2023, 9, 1, 0, 0, 49), utc(2023, 9, 1, 8, 0, 24),
    ]
    assert len(readings) == 12


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2023/9/1 0:00:22", utc(2023, 9, 1, 0, 0, 22)), ("2024/12/31 23:59:59", utc(2024, 12, 31, 23, 59, 59)),
     (" 2020/8/28 5:27:33 ", utc(2020, 8, 28, 5, 27, 33))],
)
def test_vendor_times_without_zero_padding(text: str, expected: datetime) -> None:
    assert mapping.parse_vendor_time(text) == expected


@pytest.mark.parametrize("text", ["2023-09-01 00:00:22", "2023/2/30 1:00:00", "2023/9/1", "", None, 17])
def test_malformed_vendor_times_are_payload_errors(text: object) -> None:
    with pytest.raises(PayloadError):
        mapping.parse_vendor_time(text)


def test_energyhistory_days_are_local_days_of_grid_energy() -> None:
    intervals = mapping.map_energyhistory(seed.ENERGYHISTORY_1P_DAY, "place", OSLO, "day")
    source = "iammeter:energyhistory:day"
    assert intervals == [
        IntervalEnergy("place", utc(2024, 5, 4, 22), utc(2024, 5, 5, 22), 9.62, 0.0, source),
        IntervalEnergy("place", utc(2024, 5, 5, 22), utc(2024, 5, 6, 22), 9.16, 0.0, source),
    ]
    three = mapping.map_energyhistory(seed.ENERGYHISTORY_3P_DAY, "place", OSLO, "day")
    assert (three[1].import_kwh, three[1].export_kwh) == (0.22, 7.15)
    hours = mapping.map_energyhistory(seed.ENERGYHISTORY_3P_HOUR, "place", OSLO, "hour")
    assert len(hours) == len(seed.ENERGYHISTORY_3P_HOUR["data"])
    assert all(b.start == a.end for a, b in itertools.pairwise(hours))


def test_energyhistory_repeated_autumn_hour_follows_the_order() -> None:
    times = ["2024/10/27 1:00:00", "2024/10/27 2:00:00", "2024/10/27 2:00:00", "2024/10/27 3:00:00"]
    payload = {"data": [{"time": t, "fromGrid": 1.0, "toGrid": 0.0} for t in times],
               "successful": True, "message": None}
    starts = [i.start for i in mapping.map_energyhistory(payload, "place", OSLO, "hour")]
    assert starts == [utc(2024, 10, 26, 23), utc(2024, 10, 27, 0), utc(2024, 10, 27, 1), utc(2024, 10, 27, 2)]


@pytest.mark.parametrize("field", ["fromGrid", "toGrid"])
def test_negative_energyhistory_energy_is_a_payload_error(field: str) -> None:
    payload = copy.deepcopy(seed.ENERGYHISTORY_1P_DAY)
    payload["data"][0][field] = -1.0
    with pytest.raises(PayloadError, match=f"{field}.*negative"):
        mapping.map_energyhistory(payload, "place", OSLO, "day")


def test_monitorjson_three_phase_with_signed_power() -> None:
    at = utc(2026, 1, 1)
    phases = by_phase(mapping.map_monitorjson(MONITORJSON_3P_WEM3080T, METER, at))
    assert phases[1] == Reading(METER, at, 1, voltage_v=236.0, current_a=4.4, power_w=-1044.0,
                                power_factor=1.0, frequency_hz=49.99, energy_import_kwh=0.92,
                                energy_export_kwh=0.04)
    assert phases[0].power_w == pytest.approx(-1044 - 1100 - 1213)
    assert phases[0].energy_export_kwh == pytest.approx(0.04 + 1789550.92 + 8.44)


def test_monitorjson_single_phase_legacy_and_current_firmware() -> None:
    at = utc(2026, 1, 1)
    (legacy,) = mapping.map_monitorjson(MONITORJSON_1P_LEGACY, METER, at)
    assert (legacy.phase, legacy.power_w, legacy.frequency_hz) == (0, 189.0, None)
    (current,) = mapping.map_monitorjson(MONITORJSON_1P_FW_I91, METER, at)
    assert (current.phase, current.frequency_hz, current.power_factor) == (0, 49.97, 0.51)


def test_monitorjson_reactive_rows_fill_reactive_fields() -> None:
    phases = by_phase(mapping.map_monitorjson(MONITORJSON_3P_REACTIVE, METER, utc(2026, 1, 1)))
    phase_c = phases[3]
    reactive = (phase_c.reactive_power_var, phase_c.reactive_import_kvarh, phase_c.reactive_export_kvarh)
    assert reactive == (-118.0, 0.007, 256.485)
    assert phases[0].reactive_power_var == pytest.approx(-357.0)


def test_monitorjson_nem_row_is_phase_0() -> None:
    rows = [[225.8, 1.42, 198.0, 423.678, 0.0, 50.0, 0.61], [226.2, 1.42, 197.0, 423.528, 0.0, 50.0, 0.61],
            [225.8, 1.43, 199.0, 427.348, 0.0, 50.0, 0.62], [226.0, 0.0, 594.0, 1275.075, 0.0, 50.0, 0.62]]
    phases = by_phase(mapping.map_monitorjson({"Datas": rows}, METER, utc(2026, 1, 1)))
    assert phases[0].energy_import_kwh == 1275.075
    assert phases[0].power_factor == 0.62


def test_failure_envelopes_are_payload_errors() -> None:
    with pytest.raises(PayloadError, match="token is invalid"):
        mapping.map_meterdata({"data": None, "successful": False, "message": "token is invalid"}, METER)


@pytest.mark.parametrize(
    "values",
    [[], [[1, 2, 3]], [[1, 2, 3, 4, 5]] * 5, [1, 2, "x", 4, 5], [1, 2, float("nan"), 4, 5],
     [1, 2, 10**400, 4, 5], "230", [[1, 2, 3, 4, 5], 7]],
)
def test_malformed_values_are_payload_errors(values: object) -> None:
    payload = {"data": {"values": values, "gmtTime": "2024/1/1 0:00:00"}, "successful": True}
    with pytest.raises(PayloadError):
        mapping.map_meterdata(payload, METER)


def test_non_json_bodies_are_payload_errors() -> None:
    with pytest.raises(PayloadError):
        mapping.decode(b'{"data": {"values": [[230.1, ')


# --- fuzz -------------------------------------------------------------------------------------------

SEEDS = [seed.METERDATA_1P, seed.METERDATA2_3P, seed.METERSDATA, seed.METERDATALIST_3P,
         seed.METERDATALIST2_3P, seed.ENERGYHISTORY_3P_DAY, MONITORJSON_3P_REACTIVE]
AT = utc(2026, 1, 1)


def mutated() -> st.SearchStrategy[Any]:
    """A seed payload with up to three parts replaced by hostile values or random JSON."""
    return replaced(SEEDS, STRUCTURED_VALUES)


def _maps_or_refuses(payload: Any) -> None:
    mappers: list[Callable[[], Sequence[Reading | IntervalEnergy]]] = [
        lambda: mapping.map_meterdata(payload, METER),
        lambda: mapping.map_meterdatalist(payload, METER, OSLO),
        lambda: mapping.map_meterdatalist(payload, METER),
        lambda: mapping.map_meterdatalist2(payload, METER),
        lambda: mapping.map_metersdata(payload, {"DA2BED94": "a", "B384789C": "b", "3FE34ABE": "c"}),
        lambda: mapping.map_energyhistory(payload, METER, OSLO, "hour"),
        lambda: mapping.map_energyhistory(payload, METER, OSLO, "day"),
        lambda: mapping.map_monitorjson(payload, METER, AT),
    ]
    for mapper in mappers:
        check_items(maps_or_refuses(mapper) or [], AT)
    meters = maps_or_refuses(lambda: mapping.metersdata_meters(payload))
    assert meters is None or all(isinstance(m, mapping.MetersdataMeter) for m in meters)
    maps_or_refuses(lambda: mapping.unwrap(payload))


test_mutated_payloads_map_or_raise_payload_error = fuzz_test(mutated(), _maps_or_refuses)


test_random_json_maps_or_raises_payload_error = fuzz_test(JSON, _maps_or_refuses, max_examples=200)


test_garbled_bodies_decode_or_raise_payload_error = decode_fuzz_test(
    st.binary(max_size=200), mapping.decode, _maps_or_refuses, max_examples=200
)


test_wrong_values_under_the_right_keys_map_or_raise_payload_error = fuzz_test(
    wrong_leaves(SEEDS), _maps_or_refuses
)


def test_documented_examples_map_to_what_ingest_accepts() -> None:
    for payload in (seed.METERDATA_1P, seed.METERDATA2_1P, seed.METERDATA_3P, seed.METERDATA2_3P):
        assert_accepted(mapping.map_meterdata(payload, METER), AT)
    for payload in (seed.METERDATALIST_1P, seed.METERDATALIST_3P):
        assert_accepted(mapping.map_meterdatalist(payload, METER), AT)
    assert_accepted(mapping.map_meterdatalist2(seed.METERDATALIST2_3P, METER), AT)
    assert_accepted(mapping.map_metersdata(seed.METERSDATA, {"DA2BED94": "a", "B384789C": "b"}), AT)
    for payload, group_by in (
        (seed.ENERGYHISTORY_1P_DAY, "day"),
        (seed.ENERGYHISTORY_3P_DAY, "day"),
        (seed.ENERGYHISTORY_3P_HOUR, "hour"),
    ):
        assert_accepted(mapping.map_energyhistory(payload, METER, OSLO, group_by), AT)
    local = (MONITORJSON_3P_WEM3080T, MONITORJSON_1P_LEGACY, MONITORJSON_1P_FW_I91, MONITORJSON_3P_REACTIVE)
    for payload in local:
        assert_accepted(mapping.map_monitorjson(payload, METER, AT), AT)
