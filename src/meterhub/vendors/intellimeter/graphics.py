"""Draw the PNG charts of Intellimeter ``/graphics`` with matplotlib's Agg backend."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["PIXELS_PER_UNIT", "ChartKind", "draw_chart"]

PIXELS_PER_UNIT = 100
"""One unit of ``width``/``height`` is 100 pixels (the default 16 x 9 gives 1600 x 900 px);
it is also the dpi, so the figure size in inches equals the units asked for."""


class ChartKind(StrEnum):
    """The chart types ``/graphics`` accepts in ``type``."""

    PIE = "pie"
    BAR = "bar"
    LINE = "line"


def _figure(width_px: int, height_px: int) -> Figure:
    size_in = (width_px / PIXELS_PER_UNIT, height_px / PIXELS_PER_UNIT)
    figure = Figure(figsize=size_in, dpi=PIXELS_PER_UNIT)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PIXELS_PER_UNIT)
    return buffer.getvalue()


def draw_chart(
    kind: ChartKind,
    series: Mapping[str, Sequence[tuple[datetime, float]]],
    width_px: int,
    height_px: int,
    title: str,
) -> bytes:
    """Return a PNG of ``series`` (meter name -> (local time, kWh) points) as ``kind``.

    Pie and bar charts show each meter's total over the series; a line chart shows the points.
    """
    figure = _figure(width_px, height_px)
    axes = figure.add_subplot()
    totals_kwh = {name: sum(value for _, value in points) for name, points in series.items()}
    if kind is ChartKind.PIE:
        shown = {name: total for name, total in totals_kwh.items() if total > 0}
        if shown:
            axes.pie(list(shown.values()), labels=list(shown), autopct="%1.1f%%")
        axes.set_aspect("equal")
    elif kind is ChartKind.BAR:
        axes.bar(list(totals_kwh), list(totals_kwh.values()))
        axes.set_ylabel("kWh")
    else:
        for name, points in series.items():
            times = np.array([ts for ts, _ in points], dtype="datetime64[s]")
            axes.plot(times, np.array([value for _, value in points]), label=name)
        axes.set_ylabel("kWh per interval")
        if series:
            axes.legend()
        figure.autofmt_xdate()
    axes.set_title(title)
    return _png(figure)
