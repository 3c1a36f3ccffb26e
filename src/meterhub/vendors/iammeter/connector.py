"""The IAMMETER cloud connector: latest readings, history, discovery, quotas and the token.

Meter options (secrets only as references such as ``env:IAMMETER_PASSWORD``, resolved at use):

    source     ``cloud`` (the default) or ``device``: the meter's local API, see
               :mod:`meterhub.vendors.iammeter.local` for that connection's options
    base_url   the API's address; default https://www.iammeter.com (the seed's)
    username   the account's user name, plain or a reference
    password   a reference to the account's password
    sn         the meter's serial number
    place_id   optional: the "My Places" id whose hourly energy ``history`` also fetches;
               in discovery, one id or several separated by commas
    place_role optional: the meter's role in that place, ``grid`` (the default: fromGrid and
               toGrid), ``solar`` (yield) or ``special`` (specialLoad)

The meter's ``tz`` must be the zone of the account (the vendor's local days and hours);
discovery finds it from the offsets between the account's local and GMT times
(:mod:`meterhub.vendors.iammeter.zone`) and which meters make up a place, and as what, from the
place's energy (:mod:`meterhub.vendors.iammeter.placeroles`).

The token is logged in for only when none is stored, kept in ``context.tokens`` (so a restart
reuses it), and on rejection forgotten and logged in for once. Every call takes its slot in the
persisted quota ledger first (:data:`QUOTAS`), so a refused call never reaches the vendor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import ClassVar, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from meterhub.config import is_secret_reference, resolve_secret
from meterhub.errors import ConfigError, InputError, PayloadError, VendorAuthError
from meterhub.model import Meter, Reading
from meterhub.readingblocks import ArrayRows
from meterhub.timeutil import get_zone
from meterhub.vendors.base import (
    ConnectorContext,
    Discovered,
    DiscoveredPlace,
    Fetched,
    QuotaRule,
    meter_option,
    missing_options_text,
    rule_scope_key,
)
from meterhub.vendors.iammeter import mapping, placeroles, zone
from meterhub.vendors.iammeter.client import DEFAULT_BASE_URL, IammeterClient
from meterhub.vendors.iammeter.local import DEVICE_MIN_INTERVAL_S, IammeterDevice

__all__ = [
    "ENERGYHISTORY_HOUR_DAYS",
    "HISTORY_DAYS",
    "MAX_LIST_ROWS",
    "QUOTAS",
    "SOURCES",
    "IammeterConnector",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

QUOTAS: tuple[QuotaRule, ...] = (
    QuotaRule("login_hourly", 5, 3600, "ip"),
    QuotaRule("login_daily", 30, 86_400, "ip"),
    QuotaRule("meterdata", 12, 3600, "meter"),
    QuotaRule("powerAnalysis", 5, 86_400, "meter"),
    QuotaRule("offlineAnalysis", 5, 86_400, "meter"),
    QuotaRule("metersdata", 1, 300, "account"),
)
"""The seed's limits: login per IP (5/hour and 30/day), meterdata (and meterdata2) 12/hour,
powerAnalysis and offlineAnalysis 5/day per SN, metersdata once per 5 minutes per account."""
_LOGIN_RULES = ("login_hourly", "login_daily")
_SN_RULES = ("meterdata", "powerAnalysis", "offlineAnalysis")

HISTORY_DAYS = 30
"""meterdatalist reaches back over the latest month only (the vendor allows 31 days)."""
MAX_LIST_ROWS = 2000
"""meterdatalist answers at most this many rows per call."""
UPLOAD_INTERVAL_S = 60
"""IAMMETER meters upload once a minute: the finest history interval."""
ENERGYHISTORY_HOUR_DAYS = 7
"""energyhistory grouped by hour covers at most 7 days per call (90 by day)."""
_LONGEST_DAY_S = 25 * 3600  # a local day that leaves daylight saving time
SOURCES = ("cloud", "device")
"""Where a meter is read: the IAMMETER cloud, or the meter's own local API."""
ZONE_SAMPLE_DAYS = 30
"""Discovery reads one upload a day over this many days for the account's UTC offsets."""
ROLE_SAMPLE_DAYS = 2
"""Discovery compares this many whole local days of a place's hours with each meter's."""


def _source(meter: Meter) -> str:
    source = meter_option(meter, "source", "cloud").strip().lower()
    if source not in SOURCES:
        raise ConfigError(f"meter {meter.id!r}: source {source!r} must be cloud or device")
    return source


class IammeterConnector:
    """One meter of an IAMMETER cloud account."""

    vendor: ClassVar[str] = "iammeter"
    quotas: ClassVar[tuple[QuotaRule, ...]] = QUOTAS
    min_interval_s: ClassVar[int] = 300
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    history_chunk_s: ClassVar[int] = 86_400
    """One local day per window: one meterdatalist2 call of at most 1500 rows (1 per minute)."""
    history_quota: ClassVar[str | None] = None
    """meterdatalist and energyhistory have no documented call quota (only their reach)."""

    def __init__(self, meter: Meter, context: ConnectorContext) -> None:
        self.meter = meter
        self._context = context
        self._device = IammeterDevice(meter, context) if _source(meter) == "device" else None
        if self._device is not None:
            self.min_poll_interval_s = DEVICE_MIN_INTERVAL_S
            """A meter on the local network is polled far more often than the cloud allows."""
        self._client = IammeterClient(context.client, meter_option(meter, "base_url", DEFAULT_BASE_URL))
        try:
            self._zone: ZoneInfo = get_zone(meter.tz)
        except InputError as exc:
            raise ConfigError(f"meter {meter.id!r}: {exc}") from exc
        self._limits = {rule.name: rule.limit for rule in QUOTAS}

    def __repr__(self) -> str:
        return f"IammeterConnector(meter={self.meter.id!r})"

    tells_zone: ClassVar[bool] = True
    """Discovery names the zone of the meters it finds (:mod:`meterhub.vendorzone`)."""

    @classmethod
    def missing_options(cls, options: Mapping[str, str]) -> str | None:
        """Say what a meter lacks: the cloud needs sn, username and password; a device base_url."""
        if options.get("source", "cloud") == "device":
            return missing_options_text(cls.vendor, [("base_url",)], options)
        return missing_options_text(cls.vendor, [("sn", "username", "password")], options)

    @classmethod
    def quota_scope_keys(cls, meter: Meter) -> dict[str, str]:
        """Return each rule's scope key: the API host for logins, the SN, the account's user name.

        The SN rules are left out for a meter without ``sn`` (one that only discovers); a meter
        read on the local network takes none (the local API documents no quota).
        """
        if _source(meter) == "device":
            return {}
        base_url = meter_option(meter, "base_url", DEFAULT_BASE_URL).rstrip("/")
        host = urlsplit(base_url).hostname or base_url
        keys = dict.fromkeys(_LOGIN_RULES, host)
        keys["metersdata"] = _plain_or_secret(meter_option(meter, "username"))
        if "sn" in meter.options:
            keys.update(dict.fromkeys(_SN_RULES, _sn_of(meter)))
        return keys

    async def latest(self) -> Fetched:
        """Return the meter's latest upload (meterdata2: with the power factor)."""
        if self._device is not None:
            return await self._device.latest()
        sn = self._sn()
        payload = await self._call("meterdata", lambda token: self._client.meterdata(token, sn))
        return Fetched(readings=mapping.meterdata_block(payload, self.meter.id))

    async def history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
        """Yield readings of [start, end) within the latest month, then the place's hourly energy."""
        _require_aware(start, end)
        if self._device is not None:
            return
        now = self._context.now()
        async for fetched in self._list_history(max(start, now - timedelta(days=HISTORY_DAYS)),
                                                min(end, now)):
            yield fetched
        place_id = self.meter.options.get("place_id")
        if place_id:
            async for fetched in self._place_history(place_id, start, min(end, now)):
                yield fetched

    async def discover(self) -> list[Discovered]:
        """Return every meter of the account (metersdata) in the account's zone, with its place.

        With ``place_id`` (one or several, comma-separated) each meter that the place's hourly
        energy shows is in it comes with that place and its role there.
        """
        if self._device is not None:
            return await self._device.discover()
        payload = await self._call("metersdata", self._client.metersdata)
        meters = mapping.metersdata_meters(payload)
        tz = await self._account_zone([meter.sn for meter in meters]) or self.meter.tz
        places = await self._places([meter.sn for meter in meters], ZoneInfo(tz))
        return [
            Discovered(
                suggested_id=f"iammeter-{meter.sn.lower()}",
                vendor=self.vendor,
                phases=meter.phases,
                name=f"IAMMETER {meter.sn}",
                options=self._options_for(meter.sn, places.get(meter.sn)),
                tz=tz,
                place=places.get(meter.sn),
            )
            for meter in meters
        ]

    async def _account_zone(self, serials: Sequence[str]) -> str | None:
        """Return the account's zone from one upload a day of its first meter that has some."""
        today = self._context.now().astimezone(self._zone).date()
        first_day = today - timedelta(days=ZONE_SAMPLE_DAYS - 1)
        for sn in serials:
            fetch = partial(self._client.meterdatalist, sn=sn, first_day=first_day, last_day=today,
                            interval_s=86_400)
            try:
                samples = zone.offset_samples(await self._call(None, fetch))
            except PayloadError as exc:
                log.info("IAMMETER meter %s gave no times to take the account's zone from: %s", sn, exc)
                continue
            if samples:
                found = zone.account_zone(samples, self.meter.tz)
                log.info("IAMMETER account zone: %s (offsets seen: %s)", found,
                         sorted({str(offset) for _, offset in samples}))
                return found
        return None

    async def _places(self, serials: Sequence[str], tz: ZoneInfo) -> dict[str, DiscoveredPlace]:
        """Return, per SN, the place (of the ``place_id`` option) whose hours its own repeat."""
        place_ids = [p.strip() for p in self.meter.options.get("place_id", "").split(",") if p.strip()]
        if not place_ids:
            return {}
        today = self._context.now().astimezone(tz).date()
        first_day = today - timedelta(days=ROLE_SAMPLE_DAYS)
        hours = {}
        for place_id in place_ids:
            fetch = partial(self._client.energyhistory, place_id=place_id, first_day=first_day,
                            end_day=today, group_by="hour")
            hours[place_id] = placeroles.place_hours(await self._call(None, fetch), tz)
        found: dict[str, tuple[str, placeroles.RoleMatch]] = {}
        for sn in serials:
            fetch = partial(self._client.meterdatalist, sn=sn, first_day=first_day, last_day=today,
                            interval_s=3600)
            try:
                own = placeroles.meter_hours(await self._call(None, fetch))
            except PayloadError as exc:
                log.info("IAMMETER meter %s has no hours to compare with places: %s", sn, exc)
                continue
            matches = [(place_id, m) for place_id in place_ids
                       if (m := placeroles.best_role(hours[place_id], own)) is not None]
            if matches:
                found[sn] = min(matches, key=lambda pair: pair[1].mismatch)
        return {
            sn: DiscoveredPlace(f"iammeter-{place_id}", match.role, f"IAMMETER place {place_id}", tz.key)
            for sn, (place_id, match) in found.items()
        }

    async def set_relay(self, on: bool) -> bool:
        """Refuse: IAMMETER meters have no relay that the cloud API switches."""
        raise ConfigError(f"meter {self.meter.id!r}: IAMMETER offers no relay control")

    async def _list_history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
        """Yield meterdatalist2 chunks of whole local days, each within MAX_LIST_ROWS rows."""
        if start >= end:
            return
        sn = self._sn()
        interval_s = max(UPLOAD_INTERVAL_S, self.meter.interval_s)
        days_per_call = max(1, MAX_LIST_ROWS // math.ceil(_LONGEST_DAY_S / interval_s))
        for first_day, last_day in _day_chunks(self._day(start), self._day(end, before=True),
                                               days_per_call):
            fetch = partial(self._client.meterdatalist, sn=sn, first_day=first_day,
                            last_day=last_day, interval_s=interval_s)
            payload = await self._call(None, fetch)
            readings = mapping.meterdatalist2_block(payload, self.meter.id)
            yield Fetched(readings=_within(readings, start, end))

    async def _place_history(self, place_id: str, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
        """Yield the place's complete hours of grid energy, 7 days per energyhistory call."""
        if start >= end:
            return
        last_day = self._day(end, before=True)
        for first_day, chunk_last in _day_chunks(self._day(start), last_day, ENERGYHISTORY_HOUR_DAYS):
            fetch = partial(self._client.energyhistory, place_id=place_id, first_day=first_day,
                            end_day=chunk_last + timedelta(days=1), group_by="hour")
            payload = await self._call(None, fetch)
            intervals = mapping.map_energyhistory(payload, self.meter.id, self._zone, "hour", self._role())
            yield Fetched(intervals=[i for i in intervals if start <= i.start and i.end <= end])

    async def _call(self, rule: str | None, call: Callable[[str], Awaitable[T]]) -> T:
        """Take the rule's quota slot, then call with the token; on rejection log in once more."""
        if rule is not None:
            await self._context.quotas.acquire(rule, self._scope_key(rule))
        token, fresh = await self._token()
        try:
            return await call(token)
        except VendorAuthError:
            if fresh:
                raise
            log.info("IAMMETER rejected the stored token of meter %s; logging in again", self.meter.id)
            await self._context.tokens.forget(self._token_key())
            token = await self._login()
            if rule is not None:
                await self._context.quotas.acquire(rule, self._scope_key(rule))
            return await call(token)

    async def _token(self) -> tuple[str, bool]:
        """Return the stored token (False) or a new one from a login (True)."""
        stored = await self._context.tokens.get(self._token_key())
        if stored is not None:
            return stored, False
        return await self._login(), True

    async def _login(self) -> str:
        """Log in within the per-IP login quotas and store the token."""
        quotas = self._context.quotas
        for name in _LOGIN_RULES:  # check both windows first, so a full one costs no slot
            if await quotas.used(name, self._scope_key(name)) >= self._limits[name]:
                await quotas.acquire(name, self._scope_key(name))  # raises QuotaExceeded with the wait
        for name in _LOGIN_RULES:
            await quotas.acquire(name, self._scope_key(name))
        password = resolve_secret(meter_option(self.meter, "password"))
        token = await self._client.login(self._user_name(), password)
        await self._context.tokens.put(self._token_key(), token, None)
        log.info("logged in to IAMMETER for meter %s", self.meter.id)
        return token

    def _scope_key(self, rule: str) -> str:
        return rule_scope_key(self.quota_scope_keys(self.meter), self.meter, rule)

    def _token_key(self) -> str:
        return f"{self._client.host}:{self._user_name()}"

    def _user_name(self) -> str:
        return _plain_or_secret(meter_option(self.meter, "username"))

    def _sn(self) -> str:
        return _sn_of(self.meter)

    def _day(self, ts: datetime, *, before: bool = False) -> date:
        """Return the local day of ``ts`` (of the instant just before it, with ``before``)."""
        return (ts - timedelta(microseconds=1) if before else ts).astimezone(self._zone).date()

    def _role(self) -> str:
        role = self.meter.options.get("place_role", "grid").strip().lower()
        if role not in mapping.ENERGYHISTORY_ROLE_FIELDS:
            raise ConfigError(f"meter {self.meter.id!r}: place_role {role!r} must be grid, solar or special")
        return role

    def _options_for(self, sn: str, place: DiscoveredPlace | None) -> dict[str, str]:
        options = {name: self.meter.options[name]
                   for name in ("base_url", "username", "password") if name in self.meter.options}
        options["sn"] = sn
        if place is not None:
            options["place_id"] = place.place_id.removeprefix("iammeter-")
            options["place_role"] = place.role
        return options


def _sn_of(meter: Meter) -> str:
    return meter_option(meter, "sn").strip().upper()


def _plain_or_secret(value: str) -> str:
    return resolve_secret(value) if is_secret_reference(value) else value


def _require_aware(*instants: datetime) -> None:
    for ts in instants:
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise InputError(f"{ts.isoformat()} has no time zone; meterhub works in aware UTC times")


def _day_chunks(first_day: date, last_day: date, days: int) -> list[tuple[date, date]]:
    """Return consecutive (first, last) day pairs of at most ``days`` days covering the range."""
    chunks = []
    while first_day <= last_day:
        chunk_last = min(last_day, first_day + timedelta(days=days - 1))
        chunks.append((first_day, chunk_last))
        first_day = chunk_last + timedelta(days=1)
    return chunks


def _within(readings: Sequence[Reading], start: datetime, end: datetime) -> Sequence[Reading]:
    if isinstance(readings, ArrayRows):
        return readings.within(start, end)
    return [reading for reading in readings if start <= reading.ts < end]
