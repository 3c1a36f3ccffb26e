"""The column mapping of meterdatalist2 answers gives what the item-by-item mapping gives.

Every answer goes through both: :func:`mapping.map_meterdatalist2` (columns when the answer is
usual, else item by item) and :func:`mapping.map_meterdatalist2_items`. Readings are compared by
``repr``, so an int where a float belongs, or -0.0 where 0.0 belongs, counts as a difference;
errors are compared by their message.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterhub.errors import PayloadError
from meterhub.vendors.iammeter import mapping, payloads
from meterhub.vendors.iammeter.batch import window_readings
from meterhub.vendors.physics import Household, SiteConfig

from . import seed_examples as seed

METER = "iam-batch"
OSLO = ZoneInfo("Europe/Oslo")


def _outcome(call: Any, *args: Any) -> str:
    try:
        return repr(call(*args))
    except PayloadError as exc:
        return f"error: {exc}"


def _both(items: list[Any]) -> tuple[str, str]:
    payload = payloads.success(copy.deepcopy(items))
    return (_outcome(mapping.map_meterdatalist2, payload, METER),
            _outcome(mapping.map_meterdatalist2_items, copy.deepcopy(items), METER))


def _window(phases: int, count: int, start: datetime) -> list[dict[str, Any]]:
    household = Household(SiteConfig(seed=7 + phases, phases=phases, pv_peak_w=5000.0))
    return [payloads.meterdatalist2_item(household.state_at(start + timedelta(minutes=k)), OSLO)
            for k in range(count)]


def test_simulated_days_map_by_columns_exactly() -> None:
    # A whole day of one-minute uploads (1,440 items), one and three phases, a leap day included.
    for phases in (1, 3):
        for day in (datetime(2024, 2, 29, tzinfo=UTC), datetime(2025, 10, 26, tzinfo=UTC)):
            items = _window(phases, 1440, day)
            assert window_readings(copy.deepcopy(items), METER) is not None  # the column path
            fast, slow = _both(items)
            assert fast == slow
            assert fast.count("Reading(") == 1440 * (1 if phases == 1 else 4)


def test_the_seed_example_maps_the_same_both_ways() -> None:
    items = seed.METERDATALIST2_3P["data"]
    assert window_readings(copy.deepcopy(items), METER) is not None
    fast, slow = _both(items)
    assert fast == slow


def test_unusual_answers_go_item_by_item() -> None:
    items = _window(3, 5, datetime(2025, 6, 2, tzinfo=UTC))
    nulls = copy.deepcopy(items)
    nulls[2]["values"][1] = [None] * 6
    texts = copy.deepcopy(items)
    texts[0]["values"][0][0] = "231.0"
    nem = copy.deepcopy(items)
    for item in nem:
        item["values"].append([1.0, 2.0, 3.0, 4.0, 5.0, None, None])
    ragged = copy.deepcopy(items)
    ragged[4]["values"] = ragged[4]["values"][:1]
    no_day = copy.deepcopy(items)
    no_day[3]["gmtTime"] = "2025/2/29 0:00:00"
    piped = copy.deepcopy(items)
    piped[1]["gmtTime"] = "2025/6/2 0:00:00|2025/6/2 0:00:01"
    piped[2]["gmtTime"] = ""
    for answer in (nulls, nem, ragged, no_day, piped):
        assert window_readings(copy.deepcopy(answer), METER) is None
        fast, slow = _both(answer)
        assert fast == slow
    # A number given as text is read as float() reads it, by columns as item by item.
    assert window_readings(copy.deepcopy(texts), METER) is not None
    fast, slow = _both(texts)
    assert fast == slow and "voltage_v=231.0" in fast
    assert _both(no_day)[0].startswith("error: IAMMETER time '2025/2/29 0:00:00' does not exist")
    assert window_readings([], METER) == []


_numbers = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.integers(min_value=-10**6, max_value=10**6),
    st.sampled_from([0.0, -0.0, 49.99, 50.0, 230.1, True]),
)
_odd = st.one_of(st.none(), st.just("12.5"), st.just(float("inf")), st.just([1.0]), st.just(1e305))


@st.composite
def _time_text(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from([None, 5, "", "2023/13/1 0:00:00", "1969/12/31 23:59:59",
                                     "2023/9/1 24:00:00", "2024/2/30 1:02:03", "0/1/1 0:00:00",
                                     "2023-09-01 00:00:22", "2023/9/1 0:00:22|"]))
    at = draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30)))
    gap = draw(st.sampled_from([" ", "  "]))
    text = f"{at.year}/{at.month}/{at.day}{gap}{at.hour}:{at.minute:02d}:{at.second:02d}"
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "]))


@st.composite
def _answers(draw: st.DrawFn) -> list[Any]:
    width = draw(st.sampled_from([5, 6, 7, 6, 6, 4]))
    rows = draw(st.sampled_from([0, 1, 2, 3, 3, 4]))  # 0: one flat row (a single-phase meter)
    count = draw(st.integers(0, 6))
    odd_one = draw(st.integers(0, 40))  # one value made odd now and then
    items: list[Any] = []
    for index in range(count):
        def row() -> list[Any]:
            return [draw(_numbers) for _ in range(width)]
        values: Any = row() if rows == 0 else [row() for _ in range(rows)]
        if index == odd_one % max(count, 1) and odd_one < 8:
            target = values if rows == 0 else values[0]
            target[0] = draw(_odd)
        item: Any = {"rtcTime": "x", "gmtTime": draw(_time_text()), "values": values}
        if draw(st.integers(0, 60)) == 0:
            item = draw(st.sampled_from([None, [], {"gmtTime": item["gmtTime"]}]))
        items.append(item)
    return items


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_answers())
def test_any_answer_maps_the_same_both_ways(items: list[Any]) -> None:
    fast, slow = _both(items)
    assert fast == slow
