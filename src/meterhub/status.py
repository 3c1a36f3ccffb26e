"""How collecting goes: each meter's cadence, health, data age, quota left and backfill; each price feed's.

:func:`meter_status` reads only the store and the connector classes of the vendor registry, so
any process can answer it (the API without a poller, the CLI). Quota counts are read from the
persisted ledger under the scope keys each connector class tells (``quota_scope_keys``), the
very keys its calls take slots under; the keys themselves may name accounts and are never shown.
All times are aware UTC.

:func:`price_feed_status` reads the state the fetching worker of each ``[[prices]]`` feed keeps
in the store (:mod:`meterhub.pricefeeds.state`) and the newest stored slot of its series, so it
too answers from any process, whichever worker fetches.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

import httpx

from meterhub.errors import ConfigError, InputError, StoreError
from meterhub.model import Meter, MeterHealth, utc_now
from meterhub.poller.backfill import BACKFILL_SCOPE, BackfillJob
from meterhub.poller.connectors import ConnectorClass, ConnectorFactory
from meterhub.poller.recovery import recovery_key
from meterhub.redact import redact_text
from meterhub.store.base import Store
from meterhub.timeutil import get_zone
from meterhub.vendors.base import Connector, quota_ledger_key

__all__ = [
    "BackfillStatus",
    "FeedStoredStatus",
    "MeterStatus",
    "PriceFeedStatus",
    "QuotaStatus",
    "meter_status",
    "price_feed_status",
]

BACKFILL = "backfill"
"""The kind of a backfill asked for with ``meterhub backfill`` (ledger key: the meter's id)."""
RECOVERY = "recovery"
"""The kind of the backfill the poller starts for a window a meter missed."""


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """One documented vendor limit of a meter and how much of its current window is used.

    ``used_calls`` and ``left_calls`` are None when this process cannot tell the rule's scope
    key (a secret reference it cannot resolve); ``scope`` says what the limit counts by, so an
    ``account`` rule's calls include those of the account's other meters.
    """

    rule: str
    scope: str
    limit_calls: int
    window_s: int
    used_calls: int | None
    left_calls: int | None


@dataclass(frozen=True, slots=True)
class BackfillStatus:
    """An unfinished history backfill of a meter: [start, end), stored up to ``done_until``."""

    kind: str
    """``backfill`` (asked for) or ``recovery`` (a window the poller missed)."""
    start: datetime
    end: datetime
    done_until: datetime
    percent_done: float


@dataclass(frozen=True, slots=True)
class MeterStatus:
    """How collecting one meter goes, as of ``checked_at``.

    ``poll_interval_s`` is the effective interval the poller polls at (None: the meter is not
    polled, as a file meter or one with ``poll = "no"``). ``online`` is None until the first
    poll. ``config_error`` says why the meter's options cannot be used, if they cannot.
    """

    meter_id: str
    name: str
    vendor: str
    tz: str
    checked_at: datetime
    poll_interval_s: int | None
    online: bool | None
    consecutive_failures: int
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    newest_reading_at: datetime | None
    newest_reading_age_s: float | None
    quotas: tuple[QuotaStatus, ...]
    backfill: BackfillStatus | None
    config_error: str | None


def meter_status(
    store: Store, meter_ids: Sequence[str] | None = None, now: datetime | None = None
) -> list[MeterStatus]:
    """Return the collection status of the meters named (all, by id, when None), in that order.

    Raise UnknownMeterError for an id no meter has.
    """
    now = now or utc_now()
    meters = store.list_meters() if meter_ids is None else [store.get_meter(m) for m in meter_ids]
    if not meters:
        return []
    ids = [meter.id for meter in meters]
    health = store.health(ids)
    newest = _newest_readings(store, ids)
    factory = ConnectorFactory(store, _idle_client())
    return [
        _status(store, factory, meter, health.get(meter.id), newest.get(meter.id), now) for meter in meters
    ]


@functools.cache
def _idle_client() -> httpx.AsyncClient:
    """Return the HTTP client of the connectors built here: never opened, so it needs no closing.

    Connectors are built, never used, to learn a meter's own minimum interval (a smart-MAC
    device's rate class); their constructors read options only.
    """
    return httpx.AsyncClient()


def _status(
    store: Store,
    factory: ConnectorFactory,
    meter: Meter,
    health: MeterHealth | None,
    newest: datetime | None,
    now: datetime,
) -> MeterStatus:
    interval_s, quotas, problem = _collection(store, factory, meter, now)
    return MeterStatus(
        meter_id=meter.id,
        name=meter.name,
        vendor=meter.vendor,
        tz=meter.tz,
        checked_at=now,
        poll_interval_s=interval_s,
        online=None if health is None else health.online,
        consecutive_failures=0 if health is None else health.consecutive_failures,
        last_success=None if health is None else health.last_success,
        last_error=None if health is None or health.last_error is None else redact_text(health.last_error),
        last_error_at=None if health is None else health.last_error_at,
        newest_reading_at=newest,
        newest_reading_age_s=None if newest is None else max(0.0, (now - newest).total_seconds()),
        quotas=quotas,
        backfill=_open_backfill(store, meter.id),
        config_error=problem,
    )


def _collection(
    store: Store, factory: ConnectorFactory, meter: Meter, now: datetime
) -> tuple[int | None, tuple[QuotaStatus, ...], str | None]:
    """Return the poll interval, the quotas and the options' problem of a meter's vendor."""
    if not factory.has_connector(meter.vendor):
        return None, (), None
    connector_class = factory.connector_class(meter.vendor)
    problem: str | None = None
    connector: Connector | None = None
    try:
        connector = factory.build(meter)
    except (ConfigError, InputError) as exc:
        problem = str(exc)
    keys: dict[str, str] = {}
    try:
        keys = connector_class.quota_scope_keys(meter)
    except ConfigError as exc:
        problem = problem or str(exc)
    interval_s = factory.poll_interval_s(meter, connector) if factory.is_pollable(meter) else None
    return interval_s, _quotas(store, connector_class, keys, now), problem


def _quotas(
    store: Store, connector_class: ConnectorClass, keys: dict[str, str], now: datetime
) -> tuple[QuotaStatus, ...]:
    """Return each rule the meter takes (every rule when its keys are unknown) with its use."""
    rules = [rule for rule in connector_class.quotas if rule.name in keys] if keys else connector_class.quotas
    found: list[QuotaStatus] = []
    for rule in rules:
        key = keys.get(rule.name)
        used = None
        if key is not None:
            used = min(
                rule.limit,
                store.quota_used(quota_ledger_key(connector_class.vendor, rule, key), rule.window_s, now),
            )
        left = None if used is None else rule.limit - used
        found.append(QuotaStatus(rule.name, rule.scope, rule.limit, rule.window_s, used, left))
    return tuple(found)


def _newest_readings(store: Store, meter_ids: list[str]) -> dict[str, datetime]:
    """Return the time of each meter's newest reading, of any phase."""
    newest: dict[str, datetime] = {}
    for reading in store.latest(meter_ids, phase=None):
        if reading.meter not in newest or reading.ts > newest[reading.meter]:
            newest[reading.meter] = reading.ts
    return newest


def _open_backfill(store: Store, meter_id: str) -> BackfillStatus | None:
    """Return the meter's unfinished backfill: the one asked for first, else the recovery."""
    for kind, key in ((BACKFILL, meter_id), (RECOVERY, recovery_key(meter_id))):
        found = store.token_get(BACKFILL_SCOPE, key)
        if found is None:
            continue
        try:
            job = BackfillJob.from_json(found[0])
        except StoreError:
            continue
        if not job.finished:
            percent = 100.0 * job.done_s / job.total_s if job.total_s > 0 else 100.0
            return BackfillStatus(kind, job.start, job.end, job.done_until, round(percent, 1))
    return None


OVERDUE_GRACE_S = 120.0
"""How long past its next try a feed may be before it is called overdue (no worker fetching it)."""


@dataclass(frozen=True, slots=True)
class FeedStoredStatus:
    """What a feed's last successful fetch stored: the days asked for and the slots."""

    days: str
    slots: int
    stored: int
    """Slots new or changed."""
    unchanged: int
    first_start: datetime
    last_end: datetime


@dataclass(frozen=True, slots=True)
class PriceFeedStatus:
    """How one ``[[prices]]`` feed goes, as of ``checked_at``.

    ``state`` says it in a word: ``ok`` (the last look went well), ``waiting`` (a due day is not
    published yet, or the request quota is full), ``failing`` (the last fetch failed),
    ``overdue`` (its next try passed and no worker has looked: no hub runs it) or ``stopped``
    (the worker that fetched it stopped cleanly and none took over).
    """

    series: str
    direction: str
    source: str
    zone: str
    tz: str
    checked_at: datetime
    state: str
    fetched_by: str | None
    fetches: int
    consecutive_failures: int
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_stored: FeedStoredStatus | None
    last_error: str | None
    last_error_at: datetime | None
    note: str | None
    next_try_at: datetime | None
    newest_slot_end: datetime | None
    """The end of the series' newest stored slot (any source), None when nothing is stored."""
    tomorrow: date
    """Tomorrow in the zone's local time, as of ``checked_at``."""
    tomorrow_stored: bool
    """Whether the stored slots reach the end of tomorrow."""


def price_feed_status(store: Store, now: datetime | None = None) -> list[PriceFeedStatus]:
    """Return the status of every price feed a hub has run on this store, by series."""
    from meterhub.pricefeeds.state import load_states
    from meterhub.pricefeeds.zones import day_bounds

    now = now or utc_now()
    states = load_states(store)
    if not states:
        return []
    newest = {(name, direction): last for name, direction, _, _, _, last in store.price_series()}
    found: list[PriceFeedStatus] = []
    for state in states:
        newest_end = newest.get((state.series, state.direction))
        tomorrow = now.astimezone(_zone_or_utc(state.tz)).date() + timedelta(days=1)
        tomorrow_end = day_bounds(tomorrow, state.tz)[1] if _zone_known(state.tz) else None
        span = state.last_stored
        found.append(
            PriceFeedStatus(
                series=state.series,
                direction=state.direction,
                source=state.source,
                zone=state.zone,
                tz=state.tz,
                checked_at=now,
                state=_feed_state(state.holder, state.failures, state.note, state.next_try_at, now),
                fetched_by=state.holder,
                fetches=state.fetches,
                consecutive_failures=state.failures,
                last_attempt_at=state.last_attempt_at,
                last_success_at=state.last_success_at,
                last_stored=None
                if span is None
                else FeedStoredStatus(
                    span.days, span.slots, span.stored, span.unchanged, span.first_start, span.last_end
                ),
                last_error=None if state.last_error is None else redact_text(state.last_error),
                last_error_at=state.last_error_at,
                note=state.note,
                next_try_at=state.next_try_at,
                newest_slot_end=newest_end,
                tomorrow=tomorrow,
                tomorrow_stored=_reaches(newest_end, tomorrow_end),
            )
        )
    return found


def _feed_state(
    holder: str | None, failures: int, note: str | None, next_try_at: datetime | None, now: datetime
) -> str:
    if holder is None:
        return "stopped"
    if next_try_at is not None and (now - next_try_at).total_seconds() > OVERDUE_GRACE_S:
        return "overdue"
    if failures > 0:
        return "failing"
    return "waiting" if note is not None else "ok"


def _reaches(newest_end: datetime | None, day_end: datetime | None) -> bool:
    return newest_end is not None and day_end is not None and newest_end >= day_end


def _zone_known(tz: str) -> bool:
    try:
        get_zone(tz)
    except InputError:
        return False
    return True


def _zone_or_utc(tz: str) -> tzinfo:
    try:
        return get_zone(tz)
    except InputError:
        return get_zone("UTC")
