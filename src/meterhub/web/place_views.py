"""What a place's page shows for a period: energy flow, stacked bars and cost, as columns.

Everything is read through the domain functions the API uses: ``analytics.places`` for energy
(``meters_energy`` and ``combine_roles``, which ``place_energy`` is made of) and
``analytics.cost.place_cost`` for cost, with the same edges, so the page's figures are the API's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from meterhub.analytics.calendar import CalendarUnit, local_midnight, to_zone
from meterhub.analytics.cost import CostBucket, place_cost
from meterhub.analytics.energy import SOURCE_NONE, EnergyBucket, calendar_edges
from meterhub.analytics.places import PlaceEnergy, combine_roles, meters_energy, place_energy_between
from meterhub.analytics.tariffs import Tariff
from meterhub.errors import InputError
from meterhub.model import PHASE_TOTAL, Place, Role
from meterhub.precision import round_value
from meterhub.store.base import Store
from meterhub.web.periods import Period, energy_unit

__all__ = [
    "FLOW_FIGURES",
    "bar_labels",
    "cost_columns",
    "cost_now",
    "cost_of",
    "figure_label",
    "flow_of",
    "place_view",
    "power_flow",
    "power_now",
    "tariff_note",
]

FLOW_FIGURES: dict[str, frozenset[Role] | None] = {
    "from_grid_kwh": frozenset({Role.GRID}),
    "to_grid_kwh": frozenset({Role.GRID}),
    "yield_kwh": frozenset({Role.SOLAR}),
    "self_use_kwh": frozenset({Role.SOLAR, Role.GRID}),
    "consumption_kwh": None,
    "special_load_kwh": frozenset({Role.SPECIAL}),
}
"""Each flow figure (a PlaceEnergy field) and the roles whose meters it is read from (None:
every role). Its source label merges the sources of just those meters."""


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def figure_label(source: str, estimated: bool) -> str:
    """Return how a figure was measured in words: 'measured · registers', 'estimated · ...'."""
    if source == SOURCE_NONE:
        return "no data"
    return f"{'estimated' if estimated else 'measured'} · {source}"


def bar_labels(starts: Sequence[datetime], zone: tzinfo, unit: str) -> list[str]:
    """Return local labels of periods; a repeated one (clocks going back) names its offset."""
    formats = {"15m": "%H:%M", "hour": "%H:%M", "day": "%a %d", "month": "%b %Y"}
    labels = [s.astimezone(zone).strftime(formats.get(unit, "%Y-%m-%d")) for s in starts]
    return [
        f"{label} {s.astimezone(zone).tzname()}" if labels.count(label) > 1 else label
        for label, s in zip(labels, starts, strict=True)
    ]


def _figure(
    by_role: Mapping[Role, Sequence[EnergyBucket]], roles: frozenset[Role] | None
) -> PlaceEnergy | None:
    chosen = {r: b for r, b in by_role.items() if roles is None or r in roles}
    if not any(chosen.values()):
        return None
    first = next(iter(b for buckets in chosen.values() for b in buckets))
    return combine_roles(first.start, first.end, chosen)


def flow_of(store: Store, place: Place, start: datetime, end: datetime) -> dict[str, Any]:
    """Return a place's energy flow over [start, end): each figure with its own source label.

    ``start`` and ``end`` are 15-minute aligned; the figures are ``place_energy``'s for one period.
    """
    by_role = {
        role: [series[0] for series in meters]
        for role, meters in meters_energy(store, place, [start, end]).items()
    }
    whole = combine_roles(start, end, by_role)
    figures: dict[str, Any] = {}
    for name, roles in FLOW_FIGURES.items():
        part = _figure(by_role, roles)
        measured = part is not None and part.source != SOURCE_NONE
        figures[name] = {
            "kwh": round_value(name, getattr(whole, name)) if measured else None,  # as the API rounds
            "source": SOURCE_NONE if part is None else part.source,
            "estimated": True if part is None else part.estimated,
            "label": "no meter" if part is None else figure_label(part.source, part.estimated),
        }
    ratio = whole.self_sufficiency_ratio
    figures["self_sufficiency_pct"] = {
        "pct": None if ratio is None else round(100 * ratio, 1),
        "source": whole.source,
        "estimated": whole.estimated,
        "label": figure_label(whole.source, whole.estimated),
    }
    figures["source"] = whole.source
    figures["estimated"] = whole.estimated
    return figures


def _bar_columns(periods: Sequence[PlaceEnergy], zone: tzinfo, unit: str) -> dict[str, Any]:
    def kwh(p: PlaceEnergy, value: float) -> float | None:
        return None if p.source == SOURCE_NONE else round_value("energy_kwh", value)  # as the API rounds

    return {
        "unit": unit,
        "label": bar_labels([p.start for p in periods], zone, unit),
        "start": [p.start.astimezone(UTC).isoformat() for p in periods],
        "self_use_kwh": [kwh(p, p.self_use_kwh) for p in periods],
        "from_grid_kwh": [kwh(p, p.from_grid_kwh) for p in periods],
        "other_kwh": [kwh(p, p.consumption_kwh - p.from_grid_kwh - p.self_use_kwh) for p in periods],
        "to_grid_kwh": [kwh(p, p.to_grid_kwh) for p in periods],
        "yield_kwh": [kwh(p, p.yield_kwh) for p in periods],
        "consumption_kwh": [kwh(p, p.consumption_kwh) for p in periods],
        "special_load_kwh": [kwh(p, p.special_load_kwh) for p in periods],
        "source": [p.source for p in periods],
        "estimated": [p.estimated for p in periods],
    }


def tariff_note(place: Place) -> str | None:
    """Return why a place's energy has no cost (no tariff), or None when a tariff prices it."""
    try:
        tariff = Tariff.from_data(place.tariff)
    except InputError as problem:
        return f"The tariff cannot be read: {problem}"
    return None if tariff.prices_anything else "This place has no tariff, so its energy has no cost yet."


def cost_columns(costs: Sequence[CostBucket], zone: tzinfo, unit: str) -> dict[str, Any]:
    """Return cost per period as columns (export credit as a positive number) and the totals."""
    return {
        "unit": unit,
        "label": bar_labels([c.start for c in costs], zone, unit),
        "start": [c.start.astimezone(UTC).isoformat() for c in costs],
        "import_cost": [round_value("import_cost", c.import_cost) for c in costs],
        "export_credit": [round_value("export_credit", c.export_credit) for c in costs],
        "fees": [round_value("fees", c.fees) for c in costs],
        "total_cost": [round_value("total_cost", c.total_cost) for c in costs],
        "estimated": [c.estimated for c in costs],
        "currency": costs[0].currency if costs else "",
        "totals": {
            "import_cost": round(sum(c.import_cost for c in costs), 2),
            "export_credit": round(sum(c.export_credit for c in costs), 2),
            "fees": round(sum(c.fees for c in costs), 2),
            "total_cost": round(sum(c.total_cost for c in costs), 2),
            "unpriced_import_kwh": round(sum(c.unpriced_import_kwh for c in costs), 3),
            "unpriced_export_kwh": round(sum(c.unpriced_export_kwh for c in costs), 3),
        },
    }


def cost_of(
    store: Store, place: Place, start: datetime, end: datetime, unit: CalendarUnit
) -> tuple[list[CostBucket] | None, str | None]:
    """Return ``place_cost`` per local period, or None and why there is no cost in words."""
    note = tariff_note(place)
    if note is not None:
        return None, note
    try:
        return place_cost(store, place, start, end, unit, place.tz), None
    except InputError as problem:
        return None, str(problem)


def _part(store: Store, place: Place, period: Period, unit: CalendarUnit) -> dict[str, Any]:
    """Return flow, bars and cost of one period (bars by ``unit``, the shown period's)."""
    zone = to_zone(place.tz)
    edges = calendar_edges(period.start, period.end, zone, unit)
    part: dict[str, Any] = {
        "title": period.title,
        "start": edges[0].isoformat(),
        "end": edges[-1].isoformat(),
    }
    if not place.meters:
        part.update(flow=None, bars=None, energy_note="This place has no meters yet.")
    else:
        part["flow"] = flow_of(store, place, edges[0], edges[-1])
        part["bars"] = _bar_columns(place_energy_between(store, place, edges), zone, unit)
        part["energy_note"] = None
    costs, note = cost_of(store, place, period.start, period.end, unit)
    part["cost"] = None if costs is None else cost_columns(costs, zone, unit)
    part["cost_note"] = note
    return part


def place_view(store: Store, place: Place, period: Period, previous: Period | None = None) -> dict[str, Any]:
    """Return a place page's data for one period and, when asked, the previous period's."""
    zone = to_zone(place.tz)
    unit = energy_unit(period)
    view: dict[str, Any] = {
        "place": place.id,
        "name": place.name or place.id,
        "tz": place.tz,
        "range": period.kind,
        "anchor": period.anchor,
        "previous_anchor": period.previous,
        "next_anchor": period.next,
        "unit": unit,
        "x_start": period.start.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        "x_end": period.end.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        **_part(store, place, period, unit),
    }
    if previous is not None:
        view["compare"] = _part(store, place, previous, unit)
    return view


def power_flow(powers: Sequence[tuple[Role, float | None]]) -> dict[str, float | None]:
    """Return the power flow now from each meter's newest power, by role (W; None: no meter).

    Measured: ``grid_w`` (import above zero), ``solar_w``, ``special_w``, ``other_w``
    (consumption meters). Derived as place energy is: ``import_w``/``export_w`` split the grid,
    ``self_use_w`` = solar - export (never below 0), ``home_w`` = import + self-use + other.
    ``static/place.js`` computes the same from live readings.
    """

    def total(role: Role, clip: bool = False) -> float | None:
        values = [p for r, p in powers if r is role and p is not None]
        if not values:
            return None
        return sum(max(0.0, p) if clip else p for p in values)

    grid_w = total(Role.GRID)
    solar_w = total(Role.SOLAR, clip=True)
    other_w = total(Role.CONSUMPTION, clip=True)
    import_w = None if grid_w is None else max(0.0, grid_w)
    export_w = None if grid_w is None else max(0.0, -grid_w)
    self_use_w = None if solar_w is None else max(0.0, solar_w - (export_w or 0.0))
    parts = [import_w, self_use_w, other_w]
    home_w = None if all(p is None for p in parts) else sum(p or 0.0 for p in parts)
    flow = {
        "grid_w": grid_w,
        "import_w": import_w,
        "export_w": export_w,
        "solar_w": solar_w,
        "self_use_w": self_use_w,
        "special_w": total(Role.SPECIAL),
        "other_w": other_w,
        "home_w": home_w,
    }
    return {name: _r(value, 1) for name, value in flow.items()}


def power_now(store: Store, place: Place) -> dict[str, Any]:
    """Return each meter's newest power by role and the power flow they make."""
    ids = [meter_id for meter_id, _ in place.meters]
    latest = {r.meter: r for r in store.latest(ids, phase=PHASE_TOTAL)} if ids else {}
    meters = []
    powers: list[tuple[Role, float | None]] = []
    for meter_id, role in place.meters:
        reading = latest.get(meter_id)
        powers.append((role, None if reading is None else reading.power_w))
        meters.append(
            {
                "meter": meter_id,
                "role": role.value,
                "power_w": None if reading is None else _r(reading.power_w, 1),
                "ts": None if reading is None else reading.ts.isoformat(),
            }
        )
    return {"meters": meters, "flow": power_flow(powers)}


def _so_far(costs: Sequence[CostBucket], zone: tzinfo) -> dict[str, Any]:
    columns = cost_columns(costs, zone, "hour")
    return {
        **columns["totals"],
        "currency": columns["currency"],
        "start": costs[0].start.isoformat() if costs else None,
        "end": costs[-1].end.isoformat() if costs else None,
        "until": costs[-1].end.astimezone(zone).strftime("%d %b %H:%M") if costs else None,
    }


def _same_point_last_month(local_now: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """Return last month's start and the same day and time in it (its end, if it is shorter)."""
    this_month = date(local_now.year, local_now.month, 1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    if local_now.day > (this_month - last_month).days:
        return local_midnight(last_month, zone), local_midnight(this_month, zone)
    same = datetime.combine(last_month.replace(day=local_now.day), local_now.time(), tzinfo=zone)
    return local_midnight(last_month, zone), same.astimezone(UTC)


def cost_now(store: Store, place: Place, now: datetime) -> dict[str, Any]:
    """Return cost today so far, this month so far, and last month over the same days.

    Each is ``place_cost`` by local hour up to the end of the current hour (fees included).
    """
    note = tariff_note(place)
    if note is not None:
        return {"note": note}
    zone = to_zone(place.tz)
    local_now = now.astimezone(zone)
    today = local_midnight(local_now.date(), zone)
    month = local_midnight(local_now.date().replace(day=1), zone)
    last_start, last_end = _same_point_last_month(local_now, zone)
    try:
        return {
            "note": None,
            "today": _so_far(place_cost(store, place, today, now, "hour", zone), zone),
            "month": _so_far(place_cost(store, place, month, now, "hour", zone), zone),
            "last_month": _so_far(place_cost(store, place, last_start, last_end, "hour", zone), zone),
        }
    except InputError as problem:
        return {"note": str(problem)}
