"""The meter power chart draws a silent meter as a gap and sparse readings as a line or markers.

A meter read every 5 minutes for six hours, silent for three, then read for three more hours:
the drawn columns are checked exactly, and the PNG served over HTTP is decoded to check that the
line covers the data and that no line pixel lies in the silence.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.image import imread

from meterhub.api.routes.charts import (
    LINE_COLOUR,
    MAX_CHART_POINTS,
    bucket_choice,
    power_drawing,
    power_figure,
)
from meterhub.errors import InputError
from meterhub.history import PowerSeries, power_series
from meterhub.model import Meter, Reading
from meterhub.store import Store
from meterhub.timeutil import to_ms
from tests.api.conftest import ApiServer
from tests.api.formats import png_size, problem

OSLO = "Europe/Oslo"
START = datetime(2026, 3, 2, tzinfo=UTC)
SILENCE_START = START + timedelta(hours=6)
SILENCE_END = SILENCE_START + timedelta(hours=3)
END = SILENCE_END + timedelta(hours=3)
STEP = timedelta(minutes=5)
RANGE = {"start": START.isoformat(), "end": END.isoformat()}
WIDTH_PX, HEIGHT_PX = 800, 400
TITLE = "Heat pump: power (W)"


def _times(start: datetime, end: datetime) -> list[datetime]:
    count = int((end - start) / STEP)
    return [start + k * STEP for k in range(count)]


def _power_w(ts: datetime) -> float:
    return 1500 + 700 * math.sin((ts - START).total_seconds() / 3600)


def seed_heat_pump(store: Store) -> None:
    """Write a meter read every 5 minutes, silent from 06:00 to 09:00 UTC."""
    store.add_meter(Meter("heat", "file", tz=OSLO, interval_s=300, name="Heat pump"))
    times = _times(START, SILENCE_START) + _times(SILENCE_END, END)
    store.write_readings([Reading("heat", ts, 0, 230.0, _power_w(ts) / 230, _power_w(ts)) for ts in times])


@pytest.fixture
def hub(api: ApiServer) -> ApiServer:
    """Return the running hub holding the heat pump's readings."""
    seed_heat_pump(api.store)
    return api


def _ms(ts: datetime) -> int:
    return to_ms(ts)


def test_the_line_joins_5_minute_readings_and_breaks_across_the_silence(hub: ApiServer) -> None:
    series = power_series(hub.store, "heat", START, END, points=WIDTH_PX, tz=OSLO)
    drawing = power_drawing(series)
    breaks = [i for i, avg in enumerate(drawing.avg_w) if math.isnan(avg)]
    assert len(breaks) == 1
    cut = breaks[0]
    before, after = drawing.times_ms[:cut], drawing.times_ms[cut + 1 :]
    assert before == [_ms(ts) for ts in _times(START, SILENCE_START)]
    assert after == [_ms(ts) for ts in _times(SILENCE_END, END)]
    assert before[-1] < drawing.times_ms[cut] < after[0]
    assert math.isnan(drawing.min_w[cut]) and math.isnan(drawing.max_w[cut])
    assert drawing.avg_w[0] == pytest.approx(_power_w(START))
    drawn = [i for i, avg in enumerate(drawing.avg_w) if not math.isnan(avg)]
    assert all(drawing.min_w[i] <= drawing.avg_w[i] <= drawing.max_w[i] for i in drawn)
    assert drawing.lone_times_ms == []


def _series(avg_w: list[float | None], connected: list[bool], count: list[int] | None = None) -> PowerSeries:
    width_s = 900
    starts_ms = [_ms(START) + k * width_s * 1000 for k in range(len(avg_w))]
    return PowerSeries(
        "heat",
        0,
        START,
        START + timedelta(seconds=width_s * len(avg_w)),
        width_s,
        starts_ms,
        count if count is not None else [0 if v is None else 3 for v in avg_w],
        avg_w,
        [None if v is None else v - 10 for v in avg_w],
        [None if v is None else v + 10 for v in avg_w],
        connected,
    )


def test_a_bucket_joined_to_neither_neighbour_is_a_marker() -> None:
    series = _series(
        [100.0, 110.0, None, 300.0, None, None, 500.0, 510.0],
        [False, True, False, False, False, False, False, True],
    )
    drawing = power_drawing(series)
    starts = series.starts_ms
    assert drawing.lone_times_ms == [starts[3]]
    assert (drawing.lone_avg_w, drawing.lone_min_w, drawing.lone_max_w) == ([300.0], [290.0], [310.0])
    nan = [math.isnan(v) for v in drawing.avg_w]
    assert nan == [False, False, True, False, True, False, False]
    assert [t for t, gap in zip(drawing.times_ms, nan, strict=True) if not gap] == [
        starts[0],
        starts[1],
        starts[3],
        starts[6],
        starts[7],
    ]


def test_a_bucket_with_readings_but_no_power_breaks_the_line() -> None:
    series = _series([100.0, None, 120.0], [False, True, True], count=[3, 2, 3])
    drawing = power_drawing(series)
    assert [math.isnan(v) for v in drawing.avg_w] == [False, True, False]
    assert drawing.lone_times_ms == [series.starts_ms[0], series.starts_ms[2]]


def test_a_single_reading_is_drawn_as_a_marker(api: ApiServer) -> None:
    api.store.add_meter(Meter("once", "file", tz=OSLO, interval_s=300))
    api.store.write_readings([Reading("once", SILENCE_START, 0, power_w=750.0)])
    series = power_series(api.store, "once", START, END, points=WIDTH_PX, tz=OSLO)
    drawing = power_drawing(series)
    assert drawing.lone_times_ms == [_ms(SILENCE_START)] and drawing.lone_avg_w == [750.0]
    answer = api.client(api.admin_key).get("/api/v1/meters/once/chart.png", params=RANGE)
    figure = power_figure(series, OSLO, WIDTH_PX, HEIGHT_PX, "once: power (W)")
    columns = _line_columns(answer, figure)
    x = _column(figure, SILENCE_START)
    assert columns[x - 2 : x + 3].any() and columns.sum() <= 8


def _rendered(figure: Figure) -> Figure:
    FigureCanvasAgg(figure).draw()  # type: ignore[no-untyped-call]
    return figure


def _column(figure: Figure, ts: datetime) -> int:
    axes = _rendered(figure).axes[0]
    x_px, _ = axes.transData.transform((float(date2num(ts)), 0.0))  # type: ignore[no-untyped-call]
    return round(float(x_px))


def _line_columns(answer: httpx.Response, figure: Figure) -> npt.NDArray[np.bool_]:
    """Return, per pixel column, whether the plot area of the PNG holds a pixel of the line's colour."""
    assert png_size(answer) == (WIDTH_PX, HEIGHT_PX)
    pixels: npt.NDArray[np.float32] = imread(io.BytesIO(answer.content))
    box = _rendered(figure).axes[0].get_window_extent()
    top_row, bottom_row = HEIGHT_PX - round(box.y1), HEIGHT_PX - round(box.y0)
    area = pixels[top_row + 2 : bottom_row - 2, :, :3]
    close = np.abs(area - np.array(to_rgb(LINE_COLOUR), dtype=np.float32)).max(axis=2) < 0.15
    inside = np.zeros(WIDTH_PX, dtype=bool)
    inside[round(box.x0) + 2 : round(box.x1) - 2] = True
    result: npt.NDArray[np.bool_] = close.any(axis=0) & inside
    return result


@pytest.mark.parametrize(
    "params",
    [{}, {"points": 100}, {"bucket": "15m"}, {"bucket": "1h"}],
    ids=["default", "points", "15m", "1h"],
)
def test_the_png_shows_the_data_and_leaves_the_silence_empty(
    hub: ApiServer, admin: httpx.Client, params: dict[str, Any]
) -> None:
    answer = admin.get("/api/v1/meters/heat/chart.png", params={**RANGE, **params})
    points = params.get("points", WIDTH_PX if "bucket" not in params else None)
    series = power_series(hub.store, "heat", START, END, points=points, bucket=params.get("bucket"), tz=OSLO)
    figure = power_figure(series, OSLO, WIDTH_PX, HEIGHT_PX, TITLE)
    columns = _line_columns(answer, figure)

    def covered(start: datetime, end: datetime) -> float:
        return float(columns[_column(figure, start) : _column(figure, end)].mean())

    assert covered(START, START + timedelta(hours=5)) > 0.9
    assert covered(SILENCE_END, SILENCE_END + timedelta(hours=2)) > 0.9
    margin = timedelta(minutes=15)
    quiet = columns[_column(figure, SILENCE_START + margin) : _column(figure, SILENCE_END - margin)]
    assert len(quiet) > 100 and not quiet.any()


def test_the_time_axis_names_the_zone_and_reads_local_time(hub: ApiServer) -> None:
    series = power_series(hub.store, "heat", START, END, points=WIDTH_PX, tz=OSLO)
    noon_utc = [START + timedelta(hours=12), START + timedelta(hours=13)]
    for zone, labels in ((OSLO, ["13:00", "14:00"]), ("UTC", ["12:00", "13:00"])):
        axes = _rendered(power_figure(series, zone, WIDTH_PX, HEIGHT_PX, TITLE)).axes[0]
        assert axes.get_xlabel() == f"time ({zone})"
        formatter = axes.xaxis.get_major_formatter()
        assert formatter.format_ticks([float(date2num(ts)) for ts in noon_utc]) == labels  # type: ignore[no-untyped-call]


def test_points_default_to_the_width_and_exclude_a_bucket() -> None:
    assert bucket_choice(None, None, 640) == (640, None)
    assert bucket_choice(None, None, 3000) == (MAX_CHART_POINTS, None)
    assert bucket_choice(50, None, 640) == (50, None)
    assert bucket_choice(None, "1h", 640) == (None, "1h")
    with pytest.raises(InputError, match="points or bucket"):
        bucket_choice(50, "1h", 640)


def test_points_and_bucket_are_checked_over_http(hub: ApiServer, admin: httpx.Client) -> None:
    url = "/api/v1/meters/heat/chart.png"
    both = problem(admin.get(url, params={**RANGE, "points": 50, "bucket": "1h"}), 422)
    assert "points" in both["detail"] and "bucket" in both["detail"]
    for bad in ({"points": 0}, {"points": MAX_CHART_POINTS + 1}, {"bucket": "2h"}):
        named = problem(admin.get(url, params={**RANGE, **bad}), 422)
        assert next(iter(bad)) in named["detail"]
    for kind in ("line", "bar", "pie"):
        daily = admin.get(url, params={**RANGE, "type": kind, "bucket": "1d"})
        assert png_size(daily) == (WIDTH_PX, HEIGHT_PX)
    small = admin.get(url, params={**RANGE, "bucket": "15m", "width": 300, "height": 200})
    assert png_size(small) == (300, 200)
