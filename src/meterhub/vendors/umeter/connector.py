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
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import ClassVar, TypeVar
from urllib.parse import urlsplit

from meterhub.config import resolve_secret
from meterhub.errors import ConfigError, InputError, VendorAuthError
from meterhub.model import Meter
from meterhub.vendors.base import (
    ConnectorContext,
    Discovered,
    Fetched,
    QuotaRule,
    meter_option,
    rule_scope_key,
)
from meterhub.vendors.umeter import mapping
from meterhub.vendors.umeter.client import DEFAULT_HOSTS, Hosts, UmeterClient

__all__ = ["QUOTAS", "REFRESH_MARGIN_S", "UmeterConnector"]

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

    @classmethod
    def quota_scope_keys(cls, meter: Meter) -> dict[str, str]:
        """Return each rule's scope key: the account, ``<token host>:<user name>`` (also the token key).

        The user name is resolved when it is a reference, so the key may hold an account name.
        """
        auth_url = _hosts(meter).auth.rstrip("/")
        user_name = meter_option(meter, "username")
        if user_name.startswith("env:"):
            user_name = resolve_secret(user_name)
        account = f"{urlsplit(auth_url).hostname or auth_url}:{user_name}"
        return {rule.name: account for rule in QUOTAS}

    async def latest(self) -> Fetched:
        """Return today's quarter hours so far (yesterday's while today has none yet)."""
        today = self._context.now().astimezone(mapping.ZONE).date()
        measured = await self._day(today)
        if not measured.intervals:
            measured = await self._day(today - timedelta(days=1))
        return Fetched(measured.readings, measured.intervals, measured.extras)

    async def history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
        """Yield [start, end) one local day (one call) at a time, up to now."""
        for ts in (start, end):
            if ts.tzinfo is None or ts.utcoffset() is None:
                raise InputError(f"{ts.isoformat()} has no time zone; meterhub works in aware UTC times")
        end = min(end, self._context.now())
        if start >= end:
            return
        day = start.astimezone(mapping.ZONE).date()
        last_day = (end - timedelta(microseconds=1)).astimezone(mapping.ZONE).date()
        while day <= last_day:
            measured = await self._day(day)
            yield Fetched(
                readings=[r for r in measured.readings if start <= r.ts < end],
                intervals=[i for i in measured.intervals if start <= i.start and i.end <= end],
                extras=[e for e in measured.extras if start <= e.ts < end],
            )
            day += timedelta(days=1)

    async def discover(self) -> list[Discovered]:
        """Return a meter for every address of the account that has an electricity EAN."""
        addresses = mapping.map_customer(await self._call(self._client.customer))
        shared = {name: self.meter.options[name]
                  for name in ("base_url", "username", "password") if name in self.meter.options}
        return [
            Discovered(
                suggested_id=f"umeter-{address.ean}",
                vendor=self.vendor,
                phases=1,
                name=address.title or f"UMeter {address.ean}",
                options={**shared, "ean": address.ean},
                tz=mapping.ZONE.key,
            )
            for address in addresses
        ]

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

    def _account(self) -> str:
        """Return the account's key: its quota scope (every rule's) and its token key."""
        return rule_scope_key(self.quota_scope_keys(self.meter), self.meter, "api")

    def _user_name(self) -> str:
        user_name = meter_option(self.meter, "username")
        return resolve_secret(user_name) if user_name.startswith("env:") else user_name
