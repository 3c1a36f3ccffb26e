"""``/api/v1/meters/{id}/chart.png`` and ``/api/v1/places/{id}/chart.png``: PNG charts, no display needed.

Charts are drawn with matplotlib's Agg canvas on a figure per request (pyplot and its global
state are never touched) at exactly ``width`` x ``height`` pixels, within bounds:

- meter ``line``: average power per bucket with the min-max band; ``bar``: import (up) and export
  (down) energy per local period; ``pie``: import against export over the range.
- place ``line``: consumption, yield and fromGrid per period; ``bar``: consumption stacked as
  selfUse and fromGrid, toGrid downwards; ``pie``: where consumption came from.

Periods are hours up to two days, days up to two months, months up to three years, else years.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from matplotlib.axes import Axes
from matplotlib.dates import date2num
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
from meterhub.history import downsample

__all__ = ["MAX_HEIGHT_PX", "MAX_WIDTH_PX", "period_for", "router"]

router = APIRouter(prefix="/api/v1", tags=["charts"], responses=PROBLEM_RESPONSES)

MIN_WIDTH_PX, MAX_WIDTH_PX = 200, 3000
MIN_HEIGHT_PX, MAX_HEIGHT_PX = 150, 2000
DPI = 100
DEFAULT_SPAN = timedelta(days=1)
_DRAWING = threading.Lock()
"""matplotlib's font and text caches are shared; one figure is drawn at a time."""
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}, "description": "PNG"}
}

ChartQuery = Annotated[Literal["line", "bar", "pie"], Query(alias="type", description="Kind of chart.")]
WidthQuery = Annotated[int, Query(ge=MIN_WIDTH_PX, le=MAX_WIDTH_PX, description="Width in pixels.")]
HeightQuery = Annotated[int, Query(ge=MIN_HEIGHT_PX, le=MAX_HEIGHT_PX, description="Height in pixels.")]


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


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _lines(
    figure: Figure,
    times: Sequence[datetime],
    series: dict[str, list[float | None]],
    zone: tzinfo,
    unit: str,
    marker: str = "",
) -> Axes:
    """Draw one line per series over time, with the time axis read in ``zone``."""
    axes = figure.add_subplot()
    x = _dates(times)
    for label, values in series.items():
        axes.plot(x, [_nan(v) for v in values], marker=marker, linewidth=1.0, label=label)
    axes.xaxis_date(zone)
    axes.set_ylabel(unit)
    axes.legend(loc="best", fontsize="small")
    figure.autofmt_xdate()
    return axes


def _bars(
    figure: Figure, starts: Sequence[datetime], series: dict[str, tuple[list[float], float]], unit: str
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
) -> Response:
    """Draw a meter's power (line), energy per period (bar) or import against export (pie) as PNG."""
    meter = visible_meter(store, principal.can_see_meter, meter_id)
    zone = zone_name(tz) if tz is not None else meter.tz
    start_ts, end_ts = time_range(start, end, zone, DEFAULT_SPAN)
    local = to_zone(zone)
    if kind == "line":
        buckets = downsample(store, meter_id, start_ts, end_ts, points=min(width, 2000), tz=zone)
        with _DRAWING:
            figure = _figure(width, height, f"{meter.name or meter_id}: power (W)")
            axes = _lines(
                figure, [b.start for b in buckets], {"average": [b.power_avg_w for b in buckets]}, local, "W"
            )
            axes.fill_between(
                _dates([b.start for b in buckets]),
                [_nan(b.power_min_w) for b in buckets],
                [_nan(b.power_max_w) for b in buckets],
                alpha=0.25,
                label="min-max",
            )
            axes.legend(loc="best", fontsize="small")
            return _png(figure)
    unit = period_for(start_ts, end_ts)
    energy = meter_energy(store, meter_id, start_ts, end_ts, unit, zone)
    with _DRAWING:
        if kind == "bar":
            figure = _figure(width, height, f"{meter.name or meter_id}: energy per {unit} ({zone})")
            starts = [b.start.astimezone(local) for b in energy]
            imports = [b.energy_import_kwh for b in energy]
            exports = [b.energy_export_kwh for b in energy]
            _bars(figure, starts, {"import": (imports, 1.0), "export": (exports, -1.0)}, unit)
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
                "fromGrid": [p.from_grid_kwh for p in periods],
            }
            _lines(figure, [p.start for p in periods], series, local, "kWh", marker=".")
        elif kind == "bar":
            _bars(
                figure,
                starts,
                {
                    "selfUse": ([p.self_use_kwh for p in periods], 1.0),
                    "fromGrid": ([p.from_grid_kwh for p in periods], 1.0),
                    "toGrid": ([p.to_grid_kwh for p in periods], -1.0),
                },
                unit,
            )
        else:
            self_use = sum(p.self_use_kwh for p in periods)
            from_grid = sum(p.from_grid_kwh for p in periods)
            other = sum(p.consumption_kwh for p in periods) - self_use - from_grid
            _pie(figure, {"selfUse": self_use, "fromGrid": from_grid, "other meters": other})
        return _png(figure)
