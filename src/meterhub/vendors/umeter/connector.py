"""The UMeter connector: quarter-hour energy, day by day, and the account's metering points.

Meter options (secrets only as references such as ``env:UMETER_PASSWORD``, resolved at use):

    base_url   one address for the whole API; default the vendor's three hosts (the seed's)
    username   the account's e-mail address, plain or a reference
    password   a reference to the account's password
    ean        the metering point (EAN) of the meter

Authentication is the OAuth password grant; the access token and the refresh token are kept in
``context.tokens`` (a restart reuses them) and the access token is refreshed
:data:`REFRESH_MARGIN_S` before it expires, falling back to the password grant when the refresh
token is refused. UMeter documents no rate limits, so meterhub declares polite ones
(:data:`QUOTAS`) and takes a slot before every call.

Grid-operator data arrives late and can change after it first appears, so ``latest`` reads
today and then re-reads recent days until they settle (:mod:`meterhub.vendors.umeter.recent`,
at most :data:`MAX_REREADS_PER_POLL` a poll, none when the quota is spent). Discovery puts each
address's meter in a place of its own as the grid meter, with the address's tariff
(``Tariff.from_umeter``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from typing import ClassVar, TypeVar
from urllib.parse import urlsplit

from meterhub.analytics.tariffs import Tariff
from meterhub.config import is_secret_reference, resolve_secret
from meterhub.errors import ConfigError, InputError, QuotaExceeded, VendorAuthError
from meterhub.model import Meter
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
from meterhub.vendors.umeter import mapping
from meterhub.vendors.umeter.client import DEFAULT_HOSTS, Hosts, UmeterClient
from meterhub.vendors.umeter.recent import LOOKBACK_DAYS, RecentDays

__all__ = ["MAX_REREADS_PER_POLL", "QUOTAS", "REFRESH_MARGIN_S", "UmeterConnector"]

log = logging.getLogger(__name__)
T = TypeVar("T")

QUOTAS: tuple[QuotaRule, ...] = (
    QuotaRule("token", 10, 3600, "account"),
    QuotaRule("api", 240, 3600, "account"),
)
"""Not the vendor's (it documents none) but meterhub's own politeness: at most 10 token
requests and 240 API calls an hour per account (a year's backfill by day takes two hours)."""
REFRESH_MARGIN_S = 300.0
"""Refresh the access token when it has less than this left."""
QUARTER_SOURCE = "umeter:15min"
"""The interval-energy source of quarter-hour measurements."""
MAX_REREADS_PER_POLL = 3
"""At most this many recent days are read again in one poll (beside today)."""


def _hosts(meter: Meter) -> Hosts:
    base_url = meter.options.get("base_url")
    return Hosts.single(base_url) if base_url else DEFAULT_HOSTS


class UmeterConnector:
    """One metering point (EAN) of a UMeter account."""

    vendor: ClassVar[str] = "umeter"
    quotas: ClassVar[tuple[QuotaRule, ...]] = QUOTAS
    min_interval_s: ClassVar[int] = 900
    """Measurements come in quarter hours."""
    default_base_url: ClassVar[str] = DEFAULT_HOSTS.app
    history_chunk_s: ClassVar[int] = 86_400
    """One local day per window: one measurements call."""
    history_quota: ClassVar[str] = "api"

    def __init__(self, meter: Meter, context: ConnectorContext) -> None:
        self.meter = meter
        self._context = context
        self._client = UmeterClient(context.client, _hosts(meter))

    def __repr__(self) -> str:
        return f"UmeterConnector(meter={self.meter.id!r})"

    tells_zone: ClassVar[bool] = True
    """Discovery names the zone of the meters it finds (:mod:`meterhub.vendorzone`)."""

    @classmethod
    def missing_options(cls, options: Mapping[str, str]) -> str | None:
        """Say what a meter lacks: its metering point (EAN) and the account's user name and password."""
        return missing_options_text(cls.vendor, [("ean", "username", "password")], options)

    @classmethod
    def quota_scope_keys(cls, meter: Meter) -> dict[str, str]:
        """Return each rule's scope key: the account, ``<token host>:<user name>`` (also the token key).

        The user name is resolved when it is a reference, so the key may hold an account name.
        """
        auth_url = _hosts(meter).auth.rstrip("/")
        user_name = meter_option(meter, "username")
        if is_secret_reference(user_name):
            user_name = resolve_secret(user_name)
        account = f"{urlsplit(auth_url).hostname or auth_url}:{user_name}"
        return {rule.name: account for rule in QUOTAS}

    async def latest(self) -> Fetched:
        """Return today's quarter hours so far and those of recent days read again until they settle.

        A day read as today is followed once it has passed; while today has nothing yet (just
        after midnight, or grid-operator data not in yet) yesterday is followed too. A re-read
        the quota does not allow waits for a later poll.
        """
        now = self._context.now()
        today = now.astimezone(mapping.ZONE).date()
        ledger = await self._ledger()
        ledger.keep_within(today)
        measured = await self._day(today)
        ledger.record(today, measured, now, today=True)
        if not measured.intervals:
            ledger.watch(today - timedelta(days=1))
        read = [measured]
        for day in ledger.due(today, now)[:MAX_REREADS_PER_POLL]:
            try:
                again = await self._day(day)
            except QuotaExceeded as exc:
                log.info("UMeter meter %s reads %s again later: %s", self.meter.id, day, exc)
                break
            ledger.record(day, again, now)
            read.insert(0, again)
        await self._keep(ledger)
        return Fetched(
            [r for m in read for r in m.readings],
            [i for m in read for i in m.intervals],
            [e for m in read for e in m.extras],
        )

    async def history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
        """Yield [start, end) one local day (one call) at a time, up to now.

        Recent days read here are noted, so ``latest`` reads them again until they settle.
        """
        for ts in (start, end):
            if ts.tzinfo is None or ts.utcoffset() is None:
                raise InputError(f"{ts.isoformat()} has no time zone; meterhub works in aware UTC times")
        now = self._context.now()
        end = min(end, now)
        if start >= end:
            return
        day = start.astimezone(mapping.ZONE).date()
        last_day = (end - timedelta(microseconds=1)).astimezone(mapping.ZONE).date()
        today = now.astimezone(mapping.ZONE).date()
        while day <= last_day:
            measured = await self._day(day)
            if today - timedelta(days=LOOKBACK_DAYS) <= day < today:
                ledger = await self._ledger()
                ledger.keep_within(today)
                ledger.record(day, measured, self._context.now())
                await self._keep(ledger)
            yield Fetched(
                readings=[r for r in measured.readings if start <= r.ts < end],
                intervals=[i for i in measured.intervals if start <= i.start and i.end <= end],
                extras=[e for e in measured.extras if start <= e.ts < end],
            )
            day += timedelta(days=1)

    async def discover(self) -> list[Discovered]:
        """Return a meter for every address of the account that has an electricity EAN.

        Each goes into a place of its own (``umeter-<EAN>``) as its grid meter; the place takes
        the address's tariff when UMeter gives its prices.
        """
        addresses = mapping.map_customer(await self._call(self._client.customer))
        shared = {name: self.meter.options[name]
                  for name in ("base_url", "username", "password") if name in self.meter.options}
        found = []
        for address in addresses:
            name = address.title or f"UMeter {address.ean}"
            found.append(Discovered(
                suggested_id=f"umeter-{address.ean}",
                vendor=self.vendor,
                phases=1,
                name=name,
                options={**shared, "ean": address.ean},
                tz=mapping.ZONE.key,
                place=DiscoveredPlace(f"umeter-{address.ean}", "grid", name, mapping.ZONE.key,
                                      _tariff(address)),
            ))
        return found

    async def set_relay(self, on: bool) -> bool:
        """Refuse: UMeter reads meters through the grid operator and switches nothing."""
        raise ConfigError(f"meter {self.meter.id!r}: UMeter offers no relay control")

    async def _day(self, day: date) -> mapping.Measurements:
        ean = meter_option(self.meter, "ean")

        async def fetch(token: str) -> object:
            return await self._client.measurements(token, ean, "date", day.strftime("%Y%m%d"))

        return mapping.map_measurements(await self._call(fetch), self.meter.id, QUARTER_SOURCE)

    async def _call(self, call: Callable[[str], Awaitable[T]]) -> T:
        """Take an API slot, then call with the access token; on rejection renew it once."""
        await self._context.quotas.acquire("api", self._account())
        token, fresh = await self._access_token()
        try:
            return await call(token)
        except VendorAuthError:
            if fresh:
                raise
            log.info("UMeter rejected the stored token of meter %s; renewing it", self.meter.id)
            await self._context.tokens.forget(self._account())
            token = await self._new_token()
            await self._context.quotas.acquire("api", self._account())
            return await call(token)

    async def _access_token(self) -> tuple[str, bool]:
        """Return the stored access token (False) or a new one (True)."""
        stored = await self._context.tokens.get(self._account(), margin_s=REFRESH_MARGIN_S)
        if stored is not None:
            return stored, False
        return await self._new_token(), True

    async def _new_token(self) -> str:
        """Renew the access token with the refresh token, else log in with the password."""
        account = self._account()
        refresh = await self._context.tokens.get(f"{account}:refresh", margin_s=0)
        token: mapping.Token | None = None
        if refresh is not None:
            await self._context.quotas.acquire("token", account)
            try:
                token = await self._client.refresh_grant(refresh)
            except VendorAuthError:
                log.info("UMeter refused the refresh token of meter %s; logging in", self.meter.id)
                await self._context.tokens.forget(f"{account}:refresh")
        if token is None:
            await self._context.quotas.acquire("token", account)
            password = resolve_secret(meter_option(self.meter, "password"))
            token = await self._client.password_grant(self._user_name(), password)
        now = self._context.now()
        expires = None if token.expires_in_s is None else now + timedelta(seconds=token.expires_in_s)
        await self._context.tokens.put(account, token.access_token, expires)
        if token.refresh_token is not None:
            await self._context.tokens.put(f"{account}:refresh", token.refresh_token, None)
        return token.access_token

    def _ledger_key(self) -> str:
        return f"recent-days:{self.meter.id}"

    async def _ledger(self) -> RecentDays:
        return RecentDays.from_text(await self._context.tokens.get(self._ledger_key(), margin_s=0))

    async def _keep(self, ledger: RecentDays) -> None:
        await self._context.tokens.put(self._ledger_key(), ledger.to_text(), None)

    def _account(self) -> str:
        """Return the account's key: its quota scope (every rule's) and its token key."""
        return rule_scope_key(self.quota_scope_keys(self.meter), self.meter, "api")

    def _user_name(self) -> str:
        user_name = meter_option(self.meter, "username")
        return resolve_secret(user_name) if is_secret_reference(user_name) else user_name


def _tariff(address: mapping.Address) -> dict[str, object] | None:
    """Return the place tariff settings of an address, None when UMeter gives no usable prices."""
    if address.price_peak is None or address.price_off_peak is None:
        return None
    try:
        return Tariff.from_umeter(address.tariff_facts).to_data()
    except InputError as exc:
        log.warning("UMeter address %s has tariff facts meterhub cannot use: %s", address.ean, exc)
        return None
