"""A price series over a local day and the next, as the prices page draws it; a place's cost beside it.

Slots come from the store as imported (15 or 60 minutes) and are laid out with
``analytics.tariffs.price_slots``, holes kept. Each local hour's price is the time-weighted
mean of its slots (the slot's price for an hourly series); the cheapest and dearest hours of
each day are named. Times travel as UTC instants in ms, drawn on a linear axis whose ticks are
labelled with the local time: a step line must run forward through the autumn night, where the
wall clock shows 02:00 to 03:00 twice, so a DST day shows its 23 or 25 hours (92 or 100 quarter
hours) in order, the repeated ones named by their zone. A place's cost per hour comes
from ``analytics.cost.place_cost`` as ``/api/v1/places/{id}/cost`` answers it.

Each day-ahead price feed (``[[prices]]``) a hub runs on the store is shown by its series with
its state (:func:`feed_cards`), as ``meterhub status --prices`` tells it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from meterhub.analytics.calendar import local_boundaries, local_midnight, to_zone
from meterhub.analytics.cost import place_cost
from meterhub.analytics.tariffs import PriceSlot, price_slots
from meterhub.errors import InputError
from meterhub.model import Place, PricePoint
from meterhub.status import PriceFeedStatus, price_feed_status
from meterhub.store.base import Store
from meterhub.timeutil import to_ms
from meterhub.web.formatting import duration, local, when

__all__ = [
    "DEFAULT_PRICE_ZONE",
    "FEED_PILLS",
    "LISTED_HOURS",
    "day_prices",
    "feed_cards",
    "hour_prices",
    "prices_view",
    "series_choices",
]

DEFAULT_PRICE_ZONE = "Europe/Oslo"
"""The zone a series' days are read in when no place is chosen (series carry no zone)."""
LISTED_HOURS = 3
"""How many of the cheapest and of the dearest hours of a day are named."""
_DAY = timedelta(days=1)
_DIGITS = 5


def series_choices(store: Store) -> list[dict[str, Any]]:
    """Return the stored series by name: directions, currency, slots and the span covered."""
    found: dict[str, dict[str, Any]] = {}
    for name, direction, currency, slots, first, last in store.price_series():
        entry = found.setdefault(
            name,
            {"series": name, "directions": [], "currency": currency, "slots": 0, "start": first, "end": last},
        )
        entry["directions"].append(direction)
        entry["slots"] += slots
        entry["start"], entry["end"] = min(entry["start"], first), max(entry["end"], last)
    return [
        {**entry, "start": entry["start"].isoformat(), "end": entry["end"].isoformat()}
        for _, entry in sorted(found.items())
    ]


FEED_PILLS = {
    "ok": "online",
    "failing": "offline",
    "overdue": "offline",
    "waiting": "unknown",
    "stopped": "unknown",
}
"""The status pill each feed state is drawn with (green, red, grey)."""


def feed_cards(store: Store, now: datetime) -> list[dict[str, Any]]:
    """Return each price feed's state as the page shows it: words and local times of its zone."""
    return [_feed_card(item, now) for item in price_feed_status(store, now)]


def _feed_card(item: PriceFeedStatus, now: datetime) -> dict[str, Any]:
    tz = item.tz
    stored = item.last_stored
    if item.next_try_at is None or item.fetched_by is None:
        next_try = "-"
    elif item.next_try_at >= now:
        next_try = f"{local(item.next_try_at, tz)} (in {duration((item.next_try_at - now).total_seconds())})"
    else:
        next_try = f"{local(item.next_try_at, tz)} (overdue)"
    return {
        "series": item.series,
        "direction": item.direction,
        "zone": item.zone,
        "source": item.source,
        "tz": tz,
        "state": item.state,
        "pill": FEED_PILLS.get(item.state, "unknown"),
        "fetched_by": item.fetched_by or "no worker",
        "failures": item.consecutive_failures,
        "last_success": when(item.last_success_at, tz, now),
        "stored": "-"
        if stored is None
        else f"{stored.slots} slots for {stored.days}, {stored.stored} new or changed",
        "newest": "none stored" if item.newest_slot_end is None else local(item.newest_slot_end, tz),
        "tomorrow": item.tomorrow.isoformat(),
        "tomorrow_stored": item.tomorrow_stored,
        "next_try": next_try,
        "last_error": item.last_error,
        "last_error_at": None if item.last_error_at is None else when(item.last_error_at, tz, now),
        "note": item.note,
    }


def _ms(instants: Sequence[datetime]) -> list[int]:
    return [to_ms(t) for t in instants]


def _ticks(edges: Sequence[datetime], zone: tzinfo, every_h: int = 3) -> dict[str, list[Any]]:
    """Return the chart's ticks: local hours divisible by ``every_h``, a day's midnight with its name."""
    t: list[int] = []
    label: list[str] = []
    for edge, text in zip(edges, _labels(edges, zone), strict=True):
        shown = edge.astimezone(zone)
        if shown.hour % every_h:
            continue
        t.append(to_ms(edge))
        label.append(f"{shown:%a %d} {text}" if shown.hour == 0 else text)
    return {"t": t, "label": label}


def _labels(starts: Sequence[datetime], zone: tzinfo) -> list[str]:
    """Return local ``HH:MM`` labels; a time the clock shows twice names its zone (02:00 CEST, 02:00 CET)."""
    shown = [s.astimezone(zone) for s in starts]
    counts = Counter((s.date(), f"{s:%H:%M}") for s in shown)
    return [f"{s:%H:%M} {s.tzname()}" if counts[s.date(), f"{s:%H:%M}"] > 1 else f"{s:%H:%M}" for s in shown]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, _DIGITS)


def hour_prices(slots: Sequence[PriceSlot], edges: Sequence[datetime]) -> list[float | None]:
    """Return each hour's time-weighted mean price between consecutive edges; None unless fully priced."""
    prices: list[float | None] = []
    index = 0
    for lo, hi in itertools.pairwise(edges):
        weighted = covered_s = 0.0
        holes = False
        while index < len(slots) and slots[index].end <= lo:
            index += 1
        k = index
        while k < len(slots) and slots[k].start < hi:
            slot = slots[k]
            overlap_s = (min(slot.end, hi) - max(slot.start, lo)).total_seconds()
            if slot.price_per_kwh is None:
                holes = True
            else:
                weighted += slot.price_per_kwh * overlap_s
                covered_s += overlap_s
            k += 1
        width_s = (hi - lo).total_seconds()
        prices.append(None if holes or covered_s < width_s else weighted / width_s)
    return prices


def _resolution_min(slots: Sequence[PriceSlot]) -> int | None:
    widths = Counter(
        round((s.end - s.start).total_seconds() / 60) for s in slots if s.price_per_kwh is not None
    )
    return widths.most_common(1)[0][0] if widths else None


def _listed(hours: list[dict[str, Any]], dearest: bool) -> list[dict[str, Any]]:
    priced = [h for h in hours if h["price"] is not None]
    priced.sort(key=lambda h: (-h["price"] if dearest else h["price"], h["start"]))
    return priced[:LISTED_HOURS]


def day_prices(points: Sequence[PricePoint], day: date, zone: tzinfo) -> dict[str, Any]:
    """Return one local day's slots and hours as columns, with its cheapest and dearest hours."""
    start, end = local_midnight(day, zone), local_midnight(day + _DAY, zone)
    slots = price_slots(points, start, end)
    edges = local_boundaries(start, end, zone, "hour")
    per_hour = hour_prices(slots, edges)
    hours = [
        {"label": label, "start": lo.astimezone(UTC).isoformat(), "price": _round(price)}
        for label, lo, price in zip(_labels(edges[:-1], zone), edges[:-1], per_hour, strict=True)
    ]
    priced = [s.price_per_kwh for s in slots if s.price_per_kwh is not None]
    return {
        "day": day.isoformat(),
        "title": f"{day:%A} {day.day} {day:%B %Y}",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "resolution_min": _resolution_min(slots),
        "slots": {
            "t": _ms([s.start for s in slots]),
            "start": [s.start.astimezone(UTC).isoformat() for s in slots],
            "label": _labels([s.start for s in slots], zone),
            "price": [_round(s.price_per_kwh) for s in slots],
        },
        "priced_slots": len(priced),
        "hours": {
            "t": _ms(edges[:-1]),
            "label": [h["label"] for h in hours],
            "start": [h["start"] for h in hours],
            "price": [h["price"] for h in hours],
        },
        "cheapest": _listed(hours, dearest=False),
        "dearest": _listed(hours, dearest=True),
        "min": _round(min(priced)) if priced else None,
        "max": _round(max(priced)) if priced else None,
    }


def _step_line(days: Sequence[dict[str, Any]], end_ms: int) -> dict[str, list[Any]]:
    """Return the step line of consecutive days: runs of priced slots closed at their end, holes as breaks."""
    t: list[int] = []
    price: list[float | None] = []
    label: list[str] = []
    starts = [ms for d in days for ms in d["slots"]["t"]] + [end_ms]
    labels = [f"{d['day']} {text}" for d in days for text in d["slots"]["label"]] + ["end"]
    values = [p for d in days for p in d["slots"]["price"]]
    for k, value in enumerate(values):
        if value is None:
            continue
        t.append(starts[k])
        price.append(value)
        label.append(labels[k])
        if k + 1 == len(values) or values[k + 1] is None:
            t.extend([starts[k + 1], starts[k + 1]])
            price.extend([value, None])
            label.extend([labels[k + 1], ""])
    return {"t": t, "price": price, "label": label}


def _cost_columns(store: Store, place: Place, start: datetime, end: datetime, zone: tzinfo) -> dict[str, Any]:
    costs = place_cost(store, place, start, end, "hour", zone)
    return {
        "place": place.id,
        "name": place.name or place.id,
        "currency": costs[0].currency if costs else "",
        "t": _ms([c.start for c in costs]),
        "label": _labels([c.start for c in costs], zone),
        "start": [c.start.astimezone(UTC).isoformat() for c in costs],
        "total_cost": [round(c.total_cost, _DIGITS) for c in costs],
        "energy_import_kwh": [round(c.energy_import_kwh, 4) for c in costs],
        "source": [c.source for c in costs],
        "total": round(sum(c.total_cost for c in costs), 4),
    }


def _default_day(store: Store, series: str, direction: str, zone: tzinfo, now: datetime) -> date:
    """Return today, or the series' last local day when it has no price today or tomorrow."""
    today = now.astimezone(zone).date()
    lo, hi = local_midnight(today, zone), local_midnight(today + 2 * _DAY, zone)
    if store.prices(lo, hi, direction, series):
        return today
    for name, way, _, _, first, last in store.price_series():
        if name == series and way == direction:
            return (last - timedelta(milliseconds=1) if last <= lo else first).astimezone(zone).date()
    return today


def prices_view(
    store: Store, series: str | None, day: date | None, place: Place | None, now: datetime
) -> dict[str, Any]:
    """Return a series' prices for a local day and the next, its hours named, and a place's cost.

    ``series`` defaults to the first stored; ``day`` to today (or the series' last day when
    nothing is priced today or tomorrow); the zone is the place's, else Europe/Oslo.
    """
    choices = series_choices(store)
    zone_name = place.tz if place is not None else DEFAULT_PRICE_ZONE
    zone = to_zone(zone_name)
    view: dict[str, Any] = {"series": choices, "tz": zone_name, "chosen": None, "days": [], "cost": None}
    if not choices:
        return view
    chosen = next((c for c in choices if c["series"] == (series or choices[0]["series"])), None)
    if chosen is None:
        raise InputError(f"no price series {series!r}; stored: {', '.join(c['series'] for c in choices)}")
    direction = "import" if "import" in chosen["directions"] else chosen["directions"][0]
    first = day or _default_day(store, chosen["series"], direction, zone, now)
    start, end = local_midnight(first, zone), local_midnight(first + 2 * _DAY, zone)
    points = store.prices(start, end, direction, chosen["series"])
    days = [day_prices(points, first + n * _DAY, zone) for n in range(2)]
    view.update(
        chosen=chosen["series"],
        direction=direction,
        currency=chosen["currency"],
        day=first.isoformat(),
        previous_day=(first - _DAY).isoformat(),
        next_day=(first + _DAY).isoformat(),
        x_start=to_ms(start),
        x_end=to_ms(end),
        ticks=_ticks(local_boundaries(start, end, zone, "hour"), zone),
        days=days,
        line=_step_line(days, to_ms(end)),
    )
    if place is not None:
        try:
            view["cost"] = _cost_columns(store, place, start, end, zone)
        except InputError as error:
            view["cost_note"] = str(error)
    return view
