"""Intellimeter answers, JSON and XML, map to registers and 5-minute energies; garbage to PayloadError."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.vendors.mapping_checks import (
    HOSTILE_SCALARS,
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
from meterhub.vendors.intellimeter import mapping

from .seed_examples import EXAMPLES

TORONTO = ZoneInfo("America/Toronto")
SEED = {(path, method): (json_text, xml_text) for path, method, json_text, xml_text in EXAMPLES}
DATA_JSON, DATA_XML = SEED[("/data", "GET")]
INTERVAL_JSON, INTERVAL_XML = SEED[("/interval", "GET")]
SEED_DATA_UTC = datetime(2019, 10, 30, 17, 15, tzinfo=UTC)
"""13:15 in Toronto on 2019-10-30 (EDT, UTC-4)."""


def rows(body: str, now: datetime | None = None) -> list[mapping.PointValue]:
    return mapping.point_rows(mapping.decode_document(body.encode()), TORONTO, now)


def test_seed_data_json_and_xml_give_the_same_registers() -> None:
    from_json = mapping.register_readings(rows(DATA_JSON), "m1", "meter1")
    from_xml = mapping.register_readings(rows(DATA_XML), "m1", "meter1")
    assert from_json == from_xml == [Reading(meter="m1", ts=SEED_DATA_UTC, energy_import_kwh=28540.24)]
    assert mapping.point_names(rows(DATA_XML)) == ["meter1", "meter2"]


def test_seed_interval_is_the_five_minutes_ending_at_its_stamp() -> None:
    end = datetime(2019, 10, 30, 18, 10, tzinfo=UTC)
    for body in (INTERVAL_JSON, INTERVAL_XML):
        assert mapping.interval_records(rows(body), "m2", "meter2") == [
            IntervalEnergy("m2", end - timedelta(minutes=5), end, 0.08, None, "intellimeter.interval")
        ]


def test_xml_scalars_keep_their_declared_types() -> None:
    for _path, _method, json_text, xml_text in EXAMPLES:
        if json_text == "{}":
            continue
        decoded = mapping.decode_document(xml_text.encode())
        expected = json.loads(json_text)
        assert type(decoded) is type(expected)
        first = decoded[0] if isinstance(decoded, list) else decoded
        reference = expected[0] if isinstance(expected, list) else expected
        assert isinstance(first, dict) and isinstance(reference, dict)
        for key, value in reference.items():
            assert type(first[key]) is type(value), (key, xml_text)


def test_empty_xml_answer_is_no_rows() -> None:
    assert rows('<?xml version="1.0" encoding="UTF-8" ?><Response></Response>') == []


def test_repeated_wall_clock_hour_in_november_is_told_apart() -> None:
    stamps = ["2026-11-01 01:50:00", "2026-11-01 01:55:00", "2026-11-01 01:00:00", "2026-11-01 01:05:00"]
    body = json.dumps(
        [{"MeterParam": "p", "TimeStamping": s, "value": float(i)} for i, s in enumerate(stamps)]
    )
    times = [row.ts for row in rows(body)]
    assert times == [
        datetime(2026, 11, 1, 5, 50, tzinfo=UTC),
        datetime(2026, 11, 1, 5, 55, tzinfo=UTC),
        datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 6, 5, tzinfo=UTC),
    ]


def test_lone_ambiguous_latest_row_takes_the_instant_already_past() -> None:
    body = '[{"MeterParam": "p", "TimeStamping": "2026-11-01 01:25:00", "value": 1.0}]'
    first_pass = rows(body, now=datetime(2026, 11, 1, 5, 31, tzinfo=UTC))
    second_pass = rows(body, now=datetime(2026, 11, 1, 6, 31, tzinfo=UTC))
    assert first_pass[0].ts == datetime(2026, 11, 1, 5, 25, tzinfo=UTC)
    assert second_pass[0].ts == datetime(2026, 11, 1, 6, 25, tzinfo=UTC)


def test_point_phases_reads_the_string_field() -> None:
    json_text, xml_text = SEED[("/point", "GET")]
    assert mapping.point_phases(mapping.decode_document(json_text.encode())) == 3
    assert mapping.point_phases(mapping.decode_document(xml_text.encode())) == 3
    with pytest.raises(PayloadError):
        mapping.point_phases({"NoPhases": "three"})


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"\xff\xfe",
        b'[{"MeterParam": "meter1", "TimeStamping": "2019-10-30 13:15:00", "val',
        b"<html><body>Bad gateway</body></html",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><Response>&a;</Response>',
        b'<Response><item type="dict"><value type="float">1.5.5</value></item></Response>',
        b'<Response><item type="dict"><value type="complex">1</value></item></Response>',
    ],
)
def test_unreadable_bodies_are_payload_errors(body: bytes) -> None:
    with pytest.raises(PayloadError):
        mapping.decode_document(body)


@pytest.mark.parametrize(
    "document",
    [
        {"error": "oops"},
        "text",
        [1, 2],
        [{"MeterParam": "m", "TimeStamping": "yesterday", "value": 1.0}],
        [{"MeterParam": "m", "TimeStamping": "2019-10-30 13:15:00", "value": "1.0"}],
        [{"MeterParam": "m", "TimeStamping": "2019-10-30 13:15:00", "value": True}],
        [{"MeterParam": "m", "TimeStamping": "2019-10-30 13:15:00", "value": float("nan")}],
        [{"MeterParam": "", "TimeStamping": "2019-10-30 13:15:00", "value": 1.0}],
        [{"MeterParam": "m", "TimeStamping": "0001-01-01 00:00:00", "value": 1.0}],
        [{"MeterParam": "m", "TimeStamping": "9999-12-31 23:00:00-05:00", "value": 1.0}],
        [{"MeterParam": "m", "TimeStamping": "2019-10-30 13:15:00"}],
    ],
)
def test_misshapen_documents_are_payload_errors(document: object) -> None:
    with pytest.raises(PayloadError):
        mapping.point_rows(document, TORONTO)


def test_negative_interval_energy_is_a_payload_error() -> None:
    body = '[{"MeterParam": "p", "TimeStamping": "2019-10-30 13:15:00", "value": -0.5}]'
    with pytest.raises(PayloadError):
        mapping.interval_records(rows(body), "m", "p")


# --- fuzz ---------------------------------------------------------------------------------------
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROW_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "MeterParam": st.sampled_from(["meter1", "meter2", ""]) | HOSTILE_SCALARS,
        "TimeStamping": st.sampled_from(["2019-10-30 13:15:00", "2019-10-30T13:15:00", "x"])
        | HOSTILE_SCALARS,
        "value": HOSTILE_SCALARS,
    },
)
SEED_DOCUMENTS = [json.loads(DATA_JSON), json.loads(INTERVAL_JSON)]


def map_all(document: object) -> None:
    """Map a document every way the connector does; each maps to ingestable items or refuses."""
    values = maps_or_refuses(lambda: mapping.point_rows(document, TORONTO, NOW))
    assert maps_or_refuses(lambda: mapping.point_phases(document)) in {None, 1, 2, 3}
    if values is None:
        return
    for point in {*mapping.point_names(values), "meter1"}:
        check_items(maps_or_refuses(mapping.register_readings, values, "m", point) or [], NOW)
        check_items(maps_or_refuses(mapping.interval_records, values, "m", point) or [], NOW)


test_fuzz_any_bytes_decode_or_raise_payload_error = decode_fuzz_test(
    st.binary(max_size=200) | st.text(max_size=200).map(str.encode), mapping.decode_document, map_all
)


test_fuzz_any_document_maps_or_raises_payload_error = fuzz_test(
    JSON | st.lists(ROW_LIKE, max_size=5), map_all
)


test_fuzz_hostile_values_in_seed_documents_map_or_raise_payload_error = fuzz_test(
    replaced(SEED_DOCUMENTS, STRUCTURED_VALUES), map_all
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([DATA_JSON, DATA_XML, INTERVAL_JSON, INTERVAL_XML]),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=30),
    st.text(max_size=8),
)
def test_fuzz_garbled_seed_answers_map_or_raise_payload_error(
    body: str, at: int, cut: int, insert: str
) -> None:
    garbled = body[:at] + insert + body[at + cut :]
    document = maps_or_refuses(lambda: mapping.decode_document(garbled.encode()))
    if document is not None:
        map_all(document)


test_fuzz_wrong_values_under_the_right_keys_map_or_raise_payload_error = fuzz_test(
    wrong_leaves(SEED_DOCUMENTS), map_all
)


def test_documented_examples_map_to_what_ingest_accepts() -> None:
    for body in (DATA_JSON, DATA_XML):
        assert_accepted(mapping.register_readings(rows(body), "m1", "meter1"), NOW)
    for body in (INTERVAL_JSON, INTERVAL_XML):
        assert_accepted(mapping.interval_records(rows(body), "m2", "meter2"), NOW)
