"""``/api/v1/meters/{id}/chart.png`` and ``/api/v1/places/{id}/chart.png``: PNG charts, no display needed.

Charts are drawn with matplotlib's Agg canvas on a figure per request (pyplot and its global
state are never touched) at exactly ``width`` x ``height`` pixels, within bounds:

- meter ``line``: average power per bucket with the min-max band, joined only where the meter's
  readings allow (an offline stretch is a gap, a lone bucket a marker); ``bar``: import (up) and
  export (down) energy per local period; ``pie``: import against export over the range.
- place ``line``: consumption, yield and from grid per period; ``bar``: consumption stacked as
  self use and from grid, to grid downwards; ``pie``: where consumption came from.

Periods are hours up to two days, days up to two months, months up to three years, else years.
The time axis of line and bar charts is read in the chart's zone and names it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from meterhub.analytics.calendar import CalendarUnit, to_zone
from meterhub.analytics.energy import meter_energy
from meterhub.analytics.places import place_energy
from meterhub.api.deps import PrincipalDep, StoreDep
from meterhub.api.problems import PROBLEM_RESPONSES
from meterhub.api.routes._params import (
    EndQuery,
    StartQuery,
    TzQuery,
    time_range,
    visible_meter,
    visible_place,
    zone_name,
)
from meterhub.errors import InputError
from meterhub.history import BUCKET_WIDTHS_S, PowerSeries, power_series
from meterhub.timeutil import from_ms

__all__ = [
    "LINE_COLOUR",
    "MAX_CHART_POINTS",
    "MAX_HEIGHT_PX",
    "MAX_WIDTH_PX",
    "PowerDrawing",
    "bucket_choice",
    "period_for",
    "power_drawing",
    "power_figure",
    "router",
]

router = APIRouter(prefix="/api/v1", tags=["charts"], responses=PROBLEM_RESPONSES)

MIN_WIDTH_PX, MAX_WIDTH_PX = 200, 3000
MIN_HEIGHT_PX, MAX_HEIGHT_PX = 150, 2000
DPI = 100
DEFAULT_SPAN = timedelta(days=1)
MAX_CHART_POINTS = 2000
LINE_COLOUR = "#1f77b4"
"""The colour of the average-power line, its markers and (lighter) its min-max band."""
BAND_ALPHA = 0.25
_DRAWING = threading.Lock()
"""matplotlib's font and text caches are shared; one figure is drawn at a time."""
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}, "description": "PNG"}
}

ChartQuery = Annotated[Literal["line", "bar", "pie"], Query(alias="type", description="Kind of chart.")]
WidthQuery = Annotated[int, Query(ge=MIN_WIDTH_PX, le=MAX_WIDTH_PX, description="Width in pixels.")]
HeightQuery = Annotated[int, Query(ge=MIN_HEIGHT_PX, le=MAX_HEIGHT_PX, description="Height in pixels.")]
PointsQuery = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_CHART_POINTS,
        description=f"Buckets across the range (default: the width, at most {MAX_CHART_POINTS}); "
        "not with bucket.",
    ),
]
BucketQuery = Annotated[
    str | None,
    Query(
        pattern=f"^({'|'.join(BUCKET_WIDTHS_S)})$",
        description=f"Bucket width: {', '.join(BUCKET_WIDTHS_S)} (1d: local days); not with points.",
    ),
]


def bucket_choice(points: int | None, bucket: str | None, width_px: int) -> tuple[int | None, str | None]:
    """Return the (points, bucket) a power line is drawn with; raise InputError if both are asked."""
    if points is not None and bucket is not None:
        raise InputError("give either points or bucket, not both")
    if bucket is not None:
        return None, bucket
    return (points if points is not None else min(width_px, MAX_CHART_POINTS)), None


@dataclass(frozen=True)
class PowerDrawing:
    """What a power line chart draws: columns with NaN where a line breaks, and the lone points.

    ``times_ms`` are bucket starts (epoch ms); a break is an extra entry midway between the two
    buckets it separates, with NaN power, so neither the line nor the band crosses it. ``lone_*``
    are buckets joined to neither neighbour, which a line alone would not show.
    """

    times_ms: list[int]
    avg_w: list[float]
    min_w: list[float]
    max_w: list[float]
    lone_times_ms: list[int]
    lone_avg_w: list[float]
    lone_min_w: list[float]
    lone_max_w: list[float]


def _drawn_buckets(series: PowerSeries) -> list[tuple[int, bool]]:
    """Return (index, joined to the previous drawn bucket) for each bucket with an average power."""
    drawn: list[tuple[int, bool]] = []
    last_counted = last_drawn = -1
    for i, avg in enumerate(series.avg_w):
        if avg is not None:
            drawn.append((i, series.connected[i] and last_drawn >= 0 and last_counted == last_drawn))
            last_drawn = i
        if avg is not None or series.count[i] > 0:
            last_counted = i
    return drawn


def power_drawing(series: PowerSeries) -> PowerDrawing:
    """Return the line, band and lone points of ``series``, joined exactly where it allows."""
    drawn = _drawn_buckets(series)
    columns: tuple[list[int], list[float], list[float], list[float]] = ([], [], [], [])
    lone: tuple[list[int], list[float], list[float], list[float]] = ([], [], [], [])
    for k, (i, joined) in enumerate(drawn):
        start_ms = series.starts_ms[i]
        if k > 0 and not joined:
            _append(columns, (series.starts_ms[drawn[k - 1][0]] + start_ms) // 2, None, None, None)
        values = (series.avg_w[i], series.min_w[i], series.max_w[i])
        _append(columns, start_ms, *values)
        joined_next = k + 1 < len(drawn) and drawn[k + 1][1]
        if not joined and not joined_next:
            _append(lone, start_ms, *values)
    return PowerDrawing(*columns, *lone)


def _append(
    columns: tuple[list[int], list[float], list[float], list[float]],
    time_ms: int,
    avg_w: float | None,
    min_w: float | None,
    max_w: float | None,
) -> None:
    columns[0].append(time_ms)
    columns[1].append(_nan(avg_w))
    columns[2].append(_nan(min_w if min_w is not None else avg_w))
    columns[3].append(_nan(max_w if max_w is not None else avg_w))


def period_for(start: datetime, end: datetime) -> CalendarUnit:
    """Return the calendar period bars of [start, end) are drawn per."""
    span = end - start
    if span <= timedelta(days=2):
        return "hour"
    if span <= timedelta(days=62):
        return "day"
    if span <= timedelta(days=3 * 366):
        return "month"
    return "year"


def _figure(width_px: int, height_px: int, title: str) -> Figure:
    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    figure.suptitle(title, fontsize="medium")
    return figure


def _png(figure: Figure) -> Response:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return Response(buffer.getvalue(), media_type="image/png")


def _dates(times: Sequence[datetime]) -> list[float]:
    """Return matplotlib's date numbers of aware datetimes."""
    return [float(x) for x in date2num(list(times))]  # type: ignore[no-untyped-call]


def _dates_ms(times_ms: Sequence[int]) -> list[float]:
    """Return matplotlib's date numbers of epoch milliseconds."""
    return _dates([from_ms(t) for t in times_ms])


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _time_axis(axes: Axes, zone: str) -> None:
    """Read the x axis as dates in ``zone``: local tick labels, and a label naming the zone."""
    local = to_zone(zone)
    locator = AutoDateLocator(tz=local)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=local))  # type: ignore[no-untyped-call]
    axes.set_xlabel(f"time ({zone})")


def _lines(
    figure: Figure,
    times: Sequence[datetime],
    series: dict[str, list[float | None]],
    zone: str,
    unit: str,
    marker: str = "",
) -> Axes:
    """Draw one line per series over time, with the time axis read in ``zone``."""
    axes = figure.add_subplot()
    x = _dates(times)
    for label, values in series.items():
        axes.plot(x, [_nan(v) for v in values], marker=marker, linewidth=1.0, label=label)
    _time_axis(axes, zone)
    axes.set_ylabel(unit)
    axes.legend(loc="best", fontsize="small")
    return axes


def power_figure(series: PowerSeries, zone: str, width_px: int, height_px: int, title: str) -> Figure:
    """Draw a power series over its whole range: the average line and min-max band with their gaps.

    Lone buckets are a marker on a min-max whisker. The legend sits above the plot, so it never
    hides data or a gap.
    """
    drawing = power_drawing(series)
    figure = _figure(width_px, height_px, title)
    axes = figure.add_subplot()
    x = _dates_ms(drawing.times_ms)
    axes.fill_between(
        x, drawing.min_w, drawing.max_w, color=LINE_COLOUR, alpha=BAND_ALPHA, linewidth=0, label="min-max"
    )
    axes.plot(x, drawing.avg_w, color=LINE_COLOUR, linewidth=1.5, label="average")
    lone_x = _dates_ms(drawing.lone_times_ms)
    axes.vlines(lone_x, drawing.lone_min_w, drawing.lone_max_w, color=LINE_COLOUR, alpha=0.5, linewidth=1.0)
    axes.plot(lone_x, drawing.lone_avg_w, color=LINE_COLOUR, linestyle="none", marker="o", markersize=3)
    axes.set_xlim(*_dates([series.start, series.end]))
    _time_axis(axes, zone)
    axes.set_ylabel("W")
    figure.legend(loc="outside upper right", ncols=2, fontsize="small")
    return figure


def _bars(
    figure: Figure,
    starts: Sequence[datetime],
    series: dict[str, tuple[list[float], float]],
    unit: str,
    zone: str,
) -> None:
    """Draw stacked bars: each series with its values and the sign it is drawn with."""
    axes = figure.add_subplot()
    positions = range(len(starts))
    bottom_up = [0.0] * len(starts)
    bottom_down = [0.0] * len(starts)
    for label, (values, sign) in series.items():
        base = bottom_up if sign > 0 else bottom_down
        heights = [sign * v for v in values]
        axes.bar(positions, heights, bottom=list(base), label=label)
        for i, h in enumerate(heights):
            base[i] += h
    step = max(1, len(starts) // 12)
    axes.set_xticks(list(positions)[::step], [_tick(s, unit) for s in starts][::step], rotation=30)
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set_xlabel(f"time ({zone})")
    axes.set_ylabel("kWh")
    axes.legend(loc="best", fontsize="small")


def _tick(ts: datetime, unit: str) -> str:
    return ts.strftime(
        {"hour": "%d %H:%M", "day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}.get(unit, "%H:%M")
    )


def _pie(figure: Figure, parts: dict[str, float]) -> None:
    axes = figure.add_subplot()
    shown = {label: value for label, value in parts.items() if value > 0}
    if not shown:
        axes.text(0.5, 0.5, "no energy in this range", ha="center", va="center")
        axes.set_axis_off()
        return
    axes.pie(list(shown.values()), labels=[f"{k}\n{v:.2f} kWh" for k, v in shown.items()], autopct="%1.0f%%")


@router.get(
    "/meters/{meter_id}/chart.png", response_class=Response, responses=_PNG, summary="Chart of a meter"
)
def meter_chart(
    meter_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    kind: ChartQuery = "line",
    start: StartQuery = None,
    end: EndQuery = None,
    width: WidthQuery = 800,
    height: HeightQuery = 400,
    tz: TzQuery = None,
    points: PointsQuery = None,
    bucket: BucketQuery = None,
) -> Response:
    """Draw a meter's power (line), energy per period (bar) or import against export (pie) as PNG.

    The line's buckets are ``points`` across the range or ``bucket`` wide (not both).
    """
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    line_points, line_bucket = bucket_choice(points, bucket, width)
    zone = zone_name(tz) if tz is not None else meter.tz
    start_ts, end_ts = time_range(start, end, zone, DEFAULT_SPAN)
    local = to_zone(zone)
    if kind == "line":
        series = power_series(
            store, meter_id, start_ts, end_ts, points=line_points, bucket=line_bucket, tz=zone
        )
        with _DRAWING:
            return _png(power_figure(series, zone, width, height, f"{meter.name or meter_id}: power (W)"))
    unit = period_for(start_ts, end_ts)
    energy = meter_energy(store, meter_id, start_ts, end_ts, unit, zone)
    with _DRAWING:
        if kind == "bar":
            figure = _figure(width, height, f"{meter.name or meter_id}: energy per {unit} ({zone})")
            starts = [b.start.astimezone(local) for b in energy]
            imports = [b.energy_import_kwh for b in energy]
            exports = [b.energy_export_kwh for b in energy]
            _bars(figure, starts, {"import": (imports, 1.0), "export": (exports, -1.0)}, unit, zone)
        else:
            figure = _figure(width, height, f"{meter.name or meter_id}: import and export")
            _pie(
                figure,
                {
                    "import": sum(b.energy_import_kwh for b in energy),
                    "export": sum(b.energy_export_kwh for b in energy),
                },
            )
        return _png(figure)


@router.get(
    "/places/{place_id}/chart.png", response_class=Response, responses=_PNG, summary="Chart of a place"
)
def place_chart(
    place_id: str,
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    kind: ChartQuery = "bar",
    start: StartQuery = None,
    end: EndQuery = None,
    width: WidthQuery = 800,
    height: HeightQuery = 400,
    tz: TzQuery = None,
) -> Response:
    """Draw a place's energy per period (line or bar) or the sources of its consumption (pie) as PNG."""
    place = visible_place(store, principal.can_see_place, place_id)
    zone = zone_name(tz) if tz is not None else place.tz
    start_ts, end_ts = time_range(start, end, zone, DEFAULT_SPAN)
    unit = period_for(start_ts, end_ts)
    periods = place_energy(store, place, start_ts, end_ts, unit, zone)
    local = to_zone(zone)
    starts = [p.start.astimezone(local) for p in periods]
    title = place.name or place_id
    with _DRAWING:
        figure = _figure(width, height, f"{title}: energy per {unit} ({zone})")
        if kind == "line":
            series: dict[str, list[float | None]] = {
                "consumption": [p.consumption_kwh for p in periods],
                "yield": [p.yield_kwh for p in periods],
                "from grid": [p.from_grid_kwh for p in periods],
            }
            _lines(figure, [p.start for p in periods], series, zone, "kWh", marker=".")
        elif kind == "bar":
            _bars(
                figure,
                starts,
                {
                    "self use": ([p.self_use_kwh for p in periods], 1.0),
                    "from grid": ([p.from_grid_kwh for p in periods], 1.0),
                    "to grid": ([p.to_grid_kwh for p in periods], -1.0),
                },
                unit,
                zone,
            )
        else:
            self_use = sum(p.self_use_kwh for p in periods)
            from_grid = sum(p.from_grid_kwh for p in periods)
            other = sum(p.consumption_kwh for p in periods) - self_use - from_grid
            _pie(figure, {"self use": self_use, "from grid": from_grid, "other meters": other})
        return _png(figure)
