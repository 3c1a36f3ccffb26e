"""Cost per period: each price applied to exactly the energy of the interval it covers.

The periods are cut at every edge where a price changes (a 15-minute or hourly price slot, a
time-of-use window), the energy of every piece comes from the rollups (15-minute rollups
wherever an edge is off the hour), and each piece is priced by the one slot that covers it.
Fees accrue per local day and per local month in proportion to the time a period covers.

Beside the hub's figure, ``vendor_cost`` is what the vendor itself priced the same periods at,
where it says: the sum of the meters' extras named ``vendor_cost_<currency>`` (such as UMeter's
``vendor_cost_eur``, one per interval at its start) in the tariff's currency; None where the
vendor priced nothing in the period. It never changes the hub's own figures.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

from meterhub.analytics.calendar import CalendarUnit, local_boundaries, to_zone
from meterhub.analytics.energy import EnergyBucket, calendar_edges, energy_between, total
from meterhub.analytics.places import grid_energy
from meterhub.analytics.tariffs import PriceSlot, Tariff
from meterhub.errors import InputError
from meterhub.model import Direction, Place, PricePoint, Role
from meterhub.store.base import Store

__all__ = [
    "CostBucket",
    "EnergyFn",
    "bucket_costs",
    "fees_per_period",
    "meter_cost",
    "place_cost",
    "place_of_meter",
    "vendor_cost_extra",
    "with_vendor_costs",
]

EnergyFn = Callable[[Sequence[datetime]], list[EnergyBucket]]
"""Energy between consecutive UTC boundaries (a meter's or a place's grid)."""


@dataclass(frozen=True, slots=True)
class CostBucket:
    """What the energy of [start, end) costs, in ``currency``; credit for export is subtracted.

    ``unpriced_*_kwh`` is energy that fell where the tariff has no price (a hole in a series).
    """

    start: datetime
    end: datetime
    energy_import_kwh: float
    energy_export_kwh: float
    import_cost: float
    export_credit: float
    fees: float
    total_cost: float
    currency: str
    unpriced_import_kwh: float
    unpriced_export_kwh: float
    source: str
    estimated: bool
    vendor_cost: float | None = None
    """What the vendor priced the period at in ``currency``, where it says (None elsewhere)."""


def vendor_cost_extra(currency: str) -> str:
    """Return the name of the extra that holds a vendor's cost of one interval in ``currency``."""
    return f"vendor_cost_{currency.strip().lower()}"


def with_vendor_costs(store: Store, meter_ids: Sequence[str], costs: list[CostBucket]) -> list[CostBucket]:
    """Return the buckets with the vendor's own cost of each period added where the meters have it."""
    if not costs or not meter_ids:
        return costs
    name = vendor_cost_extra(costs[0].currency)
    found = [e for m in meter_ids for e in store.extras(m, name, costs[0].start, costs[-1].end)]
    if not found:
        return costs
    found.sort(key=lambda e: e.ts)
    times = [e.ts for e in found]
    filled = []
    for bucket in costs:
        lo, hi = bisect_left(times, bucket.start), bisect_left(times, bucket.end)
        inside = found[lo:hi]
        filled.append(replace(bucket, vendor_cost=sum(e.value for e in inside)) if inside else bucket)
    return filled


@dataclass(slots=True)
class _Tally:
    import_cost: float = 0.0
    export_credit: float = 0.0
    unpriced_import_kwh: float = 0.0
    unpriced_export_kwh: float = 0.0

    def add(self, piece: EnergyBucket, import_price: float | None, export_price: float | None) -> None:
        if import_price is None:
            self.unpriced_import_kwh += piece.energy_import_kwh
        else:
            self.import_cost += piece.energy_import_kwh * import_price
        if export_price is None:
            self.unpriced_export_kwh += piece.energy_export_kwh
        else:
            self.export_credit += piece.energy_export_kwh * export_price


def bucket_costs(
    tariff: Tariff,
    tz: str | tzinfo,
    boundaries: Sequence[datetime],
    energy: EnergyFn,
    import_points: Sequence[PricePoint] = (),
    export_points: Sequence[PricePoint] = (),
) -> list[CostBucket]:
    """Return the cost of each period between consecutive boundaries under ``tariff``.

    ``tz`` is the tariff's zone (the place's): where its time-of-use windows and fee days lie.
    """
    if len(boundaries) < 2:
        return []
    lo, hi = boundaries[0], boundaries[-1]
    import_slots = tariff.slots(Direction.IMPORT, lo, hi, tz, import_points)
    export_slots = tariff.slots(Direction.EXPORT, lo, hi, tz, export_points)
    cuts = {edge for slot in (*import_slots, *export_slots) for edge in (slot.start, slot.end)}
    pieces = energy(sorted({*boundaries, *cuts}))
    fees = fees_per_period(tariff, tz, boundaries)
    result: list[CostBucket] = []
    index = 0
    for i, fee in enumerate(fees):
        tally = _Tally()
        mine: list[EnergyBucket] = []
        while index < len(pieces) and pieces[index].start < boundaries[i + 1]:
            piece = pieces[index]
            tally.add(piece, _price_at(import_slots, piece), _price_at(export_slots, piece))
            mine.append(piece)
            index += 1
        result.append(_cost_bucket(mine, tally, fee, tariff.currency))
    return result


def _price_at(slots: Sequence[PriceSlot], piece: EnergyBucket) -> float | None:
    """Return the price of the slot holding ``piece`` (pieces never straddle a slot edge)."""
    lo, hi = 0, len(slots)
    while lo < hi:
        mid = (lo + hi) // 2
        if slots[mid].end <= piece.start:
            lo = mid + 1
        else:
            hi = mid
    return slots[lo].price_per_kwh if lo < len(slots) else None


def _cost_bucket(pieces: list[EnergyBucket], tally: _Tally, fee: float, currency: str) -> CostBucket:
    whole = total(pieces)
    return CostBucket(
        whole.start,
        whole.end,
        whole.energy_import_kwh,
        whole.energy_export_kwh,
        tally.import_cost,
        tally.export_credit,
        fee,
        tally.import_cost + fee - tally.export_credit,
        currency,
        tally.unpriced_import_kwh,
        tally.unpriced_export_kwh,
        whole.source,
        whole.estimated,
    )


def fees_per_period(tariff: Tariff, tz: str | tzinfo, boundaries: Sequence[datetime]) -> list[float]:
    """Return the fixed fees each period accrues: per local day and month, pro rata by time."""
    fees = [0.0] * (len(boundaries) - 1)
    zone = to_zone(tz)
    unit: CalendarUnit
    for unit, amount in (("day", tariff.fee_per_day), ("month", tariff.fee_per_month)):
        if not amount or not fees:
            continue
        periods = local_boundaries(boundaries[0], boundaries[-1], zone, unit)
        j = 0
        for i in range(len(fees)):
            lo, hi = boundaries[i], boundaries[i + 1]
            while periods[j + 1] <= lo:
                j += 1
            k = j
            while k + 1 < len(periods) and periods[k] < hi:
                overlap_s = (min(hi, periods[k + 1]) - max(lo, periods[k])).total_seconds()
                length_s = (periods[k + 1] - periods[k]).total_seconds()
                fees[i] += amount * max(0.0, overlap_s) / length_s
                k += 1
    return fees


def place_of_meter(store: Store, meter_id: str) -> Place:
    """Return the place whose tariff prices a meter: where it is a grid meter, else any (read-only)."""
    store.get_meter(meter_id)
    holding = [p for p in store.list_places() if any(m == meter_id for m, _ in p.meters)]
    for place in holding:
        if (meter_id, Role.GRID) in place.meters:
            return place
    if holding:
        return holding[0]
    raise InputError(
        f"meter {meter_id!r} is in no place, so no tariff prices it; "
        "attach it with 'meterhub places attach PLACE METER --role grid'"
    )


def _tariff(place: Place) -> Tariff:
    tariff = Tariff.from_data(place.tariff)
    if not tariff.prices_anything:
        raise InputError(
            f"place {place.id!r} has no tariff; set one with 'meterhub places tariff {place.id}'"
        )
    return tariff


def _points(
    store: Store, tariff: Tariff, direction: Direction, lo: datetime, hi: datetime
) -> list[PricePoint]:
    series = tariff.series_for(direction)
    if series is None:
        return []
    known = {(name, way) for name, way, *_ in store.price_series()}
    if (series, direction.value) not in known:
        raise InputError(
            f"no {direction.value} price series {series!r}; import one with 'meterhub prices import FILE'"
        )
    return store.prices(lo, hi, direction.value, series)


def meter_cost(
    store: Store,
    meter_id: str,
    start: datetime,
    end: datetime,
    groupby: CalendarUnit,
    tz: str | tzinfo | None = None,
) -> list[CostBucket]:
    """Return a meter's cost per local period under the tariff of its place (read-only)."""
    place = place_of_meter(store, meter_id)
    tariff = _tariff(place)
    edges = calendar_edges(start, end, tz if tz is not None else place.tz, groupby)
    costs = bucket_costs(
        tariff,
        place.tz,
        edges,
        lambda cuts: energy_between(store, meter_id, cuts),
        _points(store, tariff, Direction.IMPORT, edges[0], edges[-1]),
        _points(store, tariff, Direction.EXPORT, edges[0], edges[-1]),
    )
    return with_vendor_costs(store, [meter_id], costs)


def place_cost(
    store: Store,
    place: Place,
    start: datetime,
    end: datetime,
    groupby: CalendarUnit,
    tz: str | tzinfo | None = None,
) -> list[CostBucket]:
    """Return the cost of a place's grid import and export per local period (read-only)."""
    tariff = _tariff(place)
    edges = calendar_edges(start, end, tz if tz is not None else place.tz, groupby)
    costs = bucket_costs(
        tariff,
        place.tz,
        edges,
        lambda cuts: grid_energy(store, place, cuts),
        _points(store, tariff, Direction.IMPORT, edges[0], edges[-1]),
        _points(store, tariff, Direction.EXPORT, edges[0], edges[-1]),
    )
    grid_ids = [meter_id for meter_id, role in place.meters if role is Role.GRID]
    return with_vendor_costs(store, grid_ids, costs)
