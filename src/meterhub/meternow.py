"""Each meter as it is now: its newest values per phase, how old they are, and whether it is online.

What ``/metrics`` and the Home Assistant publisher both show, read from the store alone, so any
process (a second API replica, the CLI) answers the same. :class:`MeterNowCache` reads the store
with three queries (meters, newest readings, health) and keeps them until the store's change
counter moves; ages and online status are worked out at the time asked, from what it keeps.

A meter is online when its last poll succeeded (meters the poller polls have a health record), or,
for a meter without one (fed by MQTT or imports), when its newest reading is at most
:func:`stale_after_s` old.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from meterhub.model import PHASE_TOTAL, Meter, MeterHealth, Place, Reading
from meterhub.store.base import Store

__all__ = [
    "MIN_STALE_AFTER_S",
    "MeterNow",
    "MeterNowCache",
    "MeterSnapshot",
    "meter_now",
    "phase_label",
    "stale_after_s",
]

MIN_STALE_AFTER_S = 300
"""The shortest time without a reading after which a meter without poll health is offline."""


def stale_after_s(meter: Meter) -> int:
    """Return how old a meter's newest reading may be while it still counts as online.

    Three of its intervals, and never less than :data:`MIN_STALE_AFTER_S`: a meter reporting
    every 10 s is not offline after one missed message.
    """
    return max(3 * meter.interval_s, MIN_STALE_AFTER_S)


def phase_label(phase: int) -> str:
    """Return how a phase is named outside: ``total`` for the whole meter, ``L1``..``L3``."""
    return "total" if phase == PHASE_TOTAL else f"L{phase}"


@dataclass(frozen=True, slots=True)
class MeterNow:
    """One meter's newest values per phase and its status at ``checked_at``."""

    meter: Meter
    phases: Mapping[int, Reading]
    """The newest reading of each phase the meter has reported (phase 0: the whole meter)."""
    health: MeterHealth | None
    places: tuple[tuple[str, str], ...]
    """(place id, role) of every place the meter belongs to."""
    newest_at: datetime | None
    age_s: float | None
    online: bool
    checked_at: datetime


def meter_now(
    meter: Meter,
    readings: Sequence[Reading],
    health: MeterHealth | None,
    places: tuple[tuple[str, str], ...],
    now: datetime,
) -> MeterNow:
    """Combine one meter's newest readings and health into its status at ``now``."""
    phases = {reading.phase: reading for reading in sorted(readings, key=lambda r: r.phase)}
    newest = max((reading.ts for reading in readings), default=None)
    age_s = None if newest is None else max(0.0, (now - newest).total_seconds())
    fresh = age_s is not None and age_s <= stale_after_s(meter)
    online = health.online if health is not None else fresh
    return MeterNow(meter, phases, health, places, newest, age_s, online, now)


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    """What the store held at one change count: meters, newest readings, health and places."""

    change_count: int
    meters: tuple[Meter, ...]
    readings: Mapping[str, tuple[Reading, ...]]
    health: Mapping[str, MeterHealth]
    places: Mapping[str, tuple[tuple[str, str], ...]]

    def at(self, now: datetime, meter_ids: Sequence[str] | None = None) -> list[MeterNow]:
        """Return every meter (or those named, when they exist) as of ``now``, ordered by id."""
        wanted = None if meter_ids is None else set(meter_ids)
        return [
            meter_now(
                meter,
                self.readings.get(meter.id, ()),
                self.health.get(meter.id),
                self.places.get(meter.id, ()),
                now,
            )
            for meter in self.meters
            if wanted is None or meter.id in wanted
        ]


def read_snapshot(store: Store) -> MeterSnapshot:
    """Read meters, the newest reading of every meter and phase, health and places: five queries."""
    change_count = store.change_count()  # first: a write after it shows as a change next time
    meters = tuple(sorted(store.list_meters(), key=lambda m: m.id))
    readings: dict[str, list[Reading]] = {}
    for reading in store.latest(None, phase=None):
        readings.setdefault(reading.meter, []).append(reading)
    return MeterSnapshot(
        change_count,
        meters,
        {meter_id: tuple(found) for meter_id, found in readings.items()},
        store.health(),
        _places_of_meters(store.list_places()),
    )


def _places_of_meters(places: Sequence[Place]) -> dict[str, tuple[tuple[str, str], ...]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for place in places:
        for meter_id, role in place.meters:
            found.setdefault(meter_id, []).append((place.id, str(role)))
    return {meter_id: tuple(pairs) for meter_id, pairs in found.items()}


class MeterNowCache:
    """The store's meters as of its latest change, read again only when its change count moves.

    Safe to share between threads: one reader reads the store at a time, the others wait and
    take what it read.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._snapshot: MeterSnapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> MeterSnapshot:
        """Return what the store holds now, reading it only when it changed since the last call."""
        with self._lock:
            current = self._snapshot
            if current is None or self.store.change_count() != current.change_count:
                current = read_snapshot(self.store)
                self._snapshot = current
            return current

    def meters_now(self, now: datetime, meter_ids: Sequence[str] | None = None) -> list[MeterNow]:
        """Return every meter (or those named) with its newest values and status at ``now``."""
        return self.snapshot().at(now, meter_ids)
