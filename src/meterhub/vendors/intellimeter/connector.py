"""One metering point of an Intellimeter API account as a meterhub meter.

Meter options (secrets only as ``env:NAME`` references, resolved at each login, never kept):

    base_url   the API address; default ``https://api.intellimeter.ca``
    key        reference to the account's API key: the vendor's recommended login
    stored_key ``store:intellimeter-key/NAME``: a key the hub rotated and keeps (wins over ``key``)
    username   the API account's user name (literal, or a reference); used with ``password``
    password   reference to the account's password; used when no key is given
    point      the metering point's name (``MeterParam``)
    point_id   the metering point's id, which stays when the point is renamed (from ``discover``)
    timeout_s  seconds to wait for an answer; default 20

Every call but ``discover`` needs ``point`` or ``point_id``. The point is followed by its id
(:mod:`.points`): a renamed point keeps being collected under its new name, and an answer
without a row of the point is a failure that says why, never a quiet success.

The meter's ``tz`` must be the site's zone: the vendor stamps rows in local wall-clock time.

The session cookie is kept in the token cache, reused across restarts, and re-established once
when the vendor answers 401. The key is read from its reference at every login (:mod:`.keys`),
so a rotated key takes effect as soon as the reference holds it.

Intellimeter documents no rate limit. The limits in :data:`QUOTAS` are our own, polite ones:
``/data`` and ``/interval`` change every 5 minutes, so 12 calls an hour per metering point (one
per 5 minutes, with room for a retry after a re-login); ``/file`` exports 7 days per call.

``/interval`` answers only the latest 5 minutes, and ``/file`` only registers. History therefore
gives each 5 minutes' energy as the difference of the two registers that bound it (the vendor's
own ``/interval`` value, read to 0.001 kWh at both ends); across a register reset it gives none.
A history window spans 6 local days, so the one ``/file`` call of 7 days that serves it also holds
the register at the window's end, which the window's last 5 minutes need.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterhub.config import is_secret_reference, resolve_secret
from meterhub.errors import ConfigError, InputError, PayloadError, QuotaExceeded, VendorAuthError
from meterhub.model import IntervalEnergy, Meter, Reading
from meterhub.vendors.base import (
    ConnectorContext,
    Discovered,
    Fetched,
    QuotaRule,
    TokenCache,
    meter_option,
    missing_options_text,
    rule_scope_key,
)

from . import keys, mapping
from .client import DEFAULT_TIMEOUT_S, IntellimeterClient, is_not_found
from .points import PointRef, PointTracker

__all__ = [
    "FILE_CHUNK_DAYS",
    "HISTORY_WINDOW_DAYS",
    "QUOTAS",
    "IntellimeterConnector",
    "session_token_key",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

QUOTAS: tuple[QuotaRule, ...] = (
    QuotaRule("session", limit=10, window_s=3600, scope="account"),
    QuotaRule("data", limit=12, window_s=3600, scope="meter"),
    QuotaRule("interval", limit=12, window_s=3600, scope="meter"),
    QuotaRule("file", limit=60, window_s=3600, scope="meter"),
    QuotaRule("point", limit=60, window_s=3600, scope="account"),
    QuotaRule("key", limit=5, window_s=86_400, scope="account"),
)
"""Our polite limits (the vendor documents none); see the module docstring."""
_ACCOUNT_RULES = ("session", "point", "key")
_POINT_RULES = ("data", "interval", "file")
FILE_CHUNK_DAYS = 7
"""Local days asked of ``/file`` per call during a backfill."""
HISTORY_WINDOW_DAYS = FILE_CHUNK_DAYS - 1
"""Local days of one history window: with the day its end falls on, one ``/file`` call."""
_ENERGY_DIGITS = 3
"""Registers come to 0.001 kWh, so their difference does too (no float residue)."""
_CREDENTIAL_OPTIONS = ("base_url", "key", "stored_key", "username", "password", "timeout_s")


@dataclass(frozen=True, slots=True)
class _Login:
    """How a meter logs in: option values, which name secrets and never hold them."""

    key_ref: str | None
    username: str | None
    password_ref: str | None

    @classmethod
    def from_meter(cls, meter: Meter) -> _Login:
        """Read the login options of ``meter``; raise ConfigError when none is complete."""
        options = meter.options
        login = cls(keys.key_reference(meter), options.get("username"), options.get("password"))
        if login.key_ref is None and (login.username is None or login.password_ref is None):
            raise ConfigError(
                f"meter {meter.id!r} (intellimeter) needs the option 'key', "
                "or 'username' and 'password' (secrets as env:NAME)"
            )
        return login

    @property
    def account(self) -> str:
        """Return a secret-free name of the account, for quota and token keys."""
        return f"key={self.key_ref}" if self.key_ref else f"user={self.username}"

    def describe(self) -> str:
        """Say which credentials were used, naming references but never values."""
        if self.key_ref:
            return f"the API key in {self.key_ref} (a rotated key replaces the old one)"
        return f"user {self.username!r} and the password in {self.password_ref}"

    async def form(self, base_url: str, tokens: TokenCache) -> dict[str, str]:
        """Return the login form with the secrets resolved now."""
        if self.key_ref:
            return {"key": await keys.resolve_key(self.key_ref, base_url, tokens)}
        if self.username is None or self.password_ref is None:
            raise ConfigError("an Intellimeter login needs a key, or a username and a password")
        username = self.username
        if is_secret_reference(username):
            username = resolve_secret(username)
        return {"username": username, "password": resolve_secret(self.password_ref)}


def _base_url(meter: Meter) -> str:
    return meter_option(meter, "base_url", IntellimeterConnector.default_base_url).rstrip("/")


def _account_scope(meter: Meter) -> str:
    """Return the account's quota and session key: the API address and a secret-free login name."""
    return f"{_base_url(meter)}|{_Login.from_meter(meter).account}"


def session_token_key(meter: Meter) -> str:
    """Return the token-cache key of the session ``meter`` logs in to (secret-free)."""
    return f"session|{_account_scope(meter)}"


def _zone(meter: Meter) -> ZoneInfo:
    try:
        return ZoneInfo(meter.tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"meter {meter.id!r} has an unknown time zone {meter.tz!r}") from exc


def _timeout_s(meter: Meter, default_s: float) -> float:
    text = meter_option(meter, "timeout_s", str(default_s))
    try:
        timeout_s = float(text)
    except ValueError:
        timeout_s = -1.0
    if not 0 < timeout_s < float("inf"):
        raise ConfigError(f"meter {meter.id!r} option timeout_s={text!r} is not a positive number")
    return timeout_s


def _register_intervals(registers: Sequence[Reading]) -> list[IntervalEnergy]:
    """Return the energy of each 5 minutes bounded by two registers (none across a reset)."""
    records: list[IntervalEnergy] = []
    for before, after in itertools.pairwise(registers):
        if after.ts - before.ts != mapping.INTERVAL:
            continue
        if before.energy_import_kwh is None or after.energy_import_kwh is None:
            continue
        import_kwh = round(after.energy_import_kwh - before.energy_import_kwh, _ENERGY_DIGITS)
        if import_kwh >= 0:
            records.append(
                IntervalEnergy(after.meter, before.ts, after.ts, import_kwh, None, mapping.SOURCE_INTERVAL)
            )
    return records


def _suggested_id(point: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", point.lower()).strip("-")
    return f"intellimeter-{slug or 'point'}"


class IntellimeterConnector:
    """Latest readings, 5-minute energies and history of one Intellimeter metering point."""

    vendor: ClassVar[str] = "intellimeter"
    quotas: ClassVar[tuple[QuotaRule, ...]] = QUOTAS
    min_interval_s: ClassVar[int] = 300
    default_base_url: ClassVar[str] = "https://api.intellimeter.ca"
    history_chunk_s: ClassVar[int] = HISTORY_WINDOW_DAYS * 86_400
    """One ``history`` call of this span (6 local days) makes one ``/file`` call of 7 days."""
    history_quota: ClassVar[str] = "file"

    def __init__(self, meter: Meter, context: ConnectorContext) -> None:
        self.meter = meter
        self._context = context
        timeout_s = _timeout_s(meter, DEFAULT_TIMEOUT_S)
        self._client = IntellimeterClient(context.client, _base_url(meter), timeout_s)
        self._login = _Login.from_meter(meter)
        self._zone = _zone(meter)
        self._scope_keys = self.quota_scope_keys(meter)
        self._token_key = session_token_key(meter)
        self._cookie: str | None = None
        self._tracker: PointTracker | None = None

    def __repr__(self) -> str:
        return f"IntellimeterConnector(meter={self.meter.id!r}, base_url={self._client.base_url!r})"

    @classmethod
    def missing_options(cls, options: Mapping[str, str]) -> str | None:
        """Say what a meter lacks: its point (name or id) and a key or a user name and password."""
        point = missing_options_text(cls.vendor, [("point",), ("point_id",)], options)
        logins = [("key",), ("stored_key",), ("username", "password")]
        return point or missing_options_text(cls.vendor, logins, options)

    @classmethod
    def quota_scope_keys(cls, meter: Meter) -> dict[str, str]:
        """Return each rule's scope key: the meter's id per point, ``base_url|key=...`` per account.

        The account key names the login's reference or user name, never a secret's value.
        """
        account = _account_scope(meter)
        return {**dict.fromkeys(_ACCOUNT_RULES, account), **dict.fromkeys(_POINT_RULES, meter.id)}

    def _scope_key(self, rule: str) -> str:
        return rule_scope_key(self._scope_keys, self.meter, rule)

    # --- session --------------------------------------------------------------------------
    async def _session(self) -> tuple[str, bool]:
        """Return the session cookie and whether it was opened just now."""
        if self._cookie is None:
            self._cookie = await self._context.tokens.get(self._token_key, margin_s=0.0)
        if self._cookie is not None:
            return self._cookie, False
        await self._context.quotas.acquire("session", self._scope_key("session"))
        try:
            form = await self._login.form(self._client.base_url, self._context.tokens)
            cookie = await self._client.open_session(form)
        except VendorAuthError as exc:
            raise VendorAuthError(f"{exc}; check {self._login.describe()}") from exc
        await self._context.tokens.put(self._token_key, cookie, None)
        self._cookie = cookie
        return cookie, True

    async def _forget_session(self) -> None:
        self._cookie = None
        await self._context.tokens.forget(self._token_key)

    async def _call(self, rule: str, fetch: Callable[[str], Awaitable[T]]) -> T:
        """Take a quota slot and call ``fetch(cookie)``; on 401 log in again once and retry."""
        cookie, fresh = await self._session()
        await self._context.quotas.acquire(rule, self._scope_key(rule))
        try:
            return await fetch(cookie)
        except VendorAuthError:
            if fresh:
                raise
            log.info("Intellimeter session of meter %s was refused; logging in again", self.meter.id)
            await self._forget_session()
        cookie, _ = await self._session()
        await self._context.quotas.acquire(rule, self._scope_key(rule))
        return await fetch(cookie)

    # --- the metering point ---------------------------------------------------------------
    def _points(self) -> PointTracker:
        if self._tracker is None:
            self._tracker = PointTracker(self.meter, self._context.tokens)
        return self._tracker

    async def _lookup(self, point_id: int | None, name: str | None) -> mapping.Document | None:
        fetch = functools.partial(self._client.point_by, point_id=point_id, name=name)
        return await self._call("point", fetch)

    async def _point(self) -> PointRef:
        return await self._points().current(self._lookup)

    async def _follow(self, ref: PointRef) -> PointRef:
        return await self._points().follow(ref, self._lookup)

    # --- the Connector protocol -----------------------------------------------------------
    async def latest(self) -> Fetched:
        """Return the point's newest register reading and its latest 5-minute energy.

        ``/data`` lists every point's most recent reading, the same row again until the next
        5 minutes are recorded. So an answer without a row of the point means it was renamed
        (it is then found by its id and collected under its new name), removed, or has never
        reported: the last two raise PayloadError saying so.
        """
        ref, now = await self._point(), self._context.now()
        document = await self._call("data", self._client.data)
        rows = mapping.point_rows(document, self._zone, now)
        readings = mapping.register_readings(rows, self.meter.id, ref.name)
        if not readings:
            ref = await self._follow(ref)
            readings = mapping.register_readings(rows, self.meter.id, ref.name)
        if not readings:
            raise PayloadError(
                f"Intellimeter /data lists no reading of {ref.text()} of meter {self.meter.id!r}, "
                "though it lists every point's latest one: the point has recorded nothing yet, "
                "or nothing in a long time"
            )
        return Fetched(readings=readings, intervals=await self._latest_intervals(ref.name, now))

    async def _latest_intervals(self, point: str, now: datetime) -> list[IntervalEnergy]:
        try:
            document = await self._call("interval", self._client.interval)
        except QuotaExceeded as exc:
            log.debug("skipping Intellimeter /interval for meter %s: %s", self.meter.id, exc)
            return []
        rows = mapping.point_rows(document, self._zone, now)
        return mapping.interval_records(rows, self.meter.id, point)

    async def history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
        """Yield the point's registers and 5-minute energies in [start, end), 7 local days per ``/file``."""
        if start.tzinfo is None or end.tzinfo is None:
            raise InputError("history needs timezone-aware start and end")
        end = min(end, self._context.now())
        if end <= start:
            return
        ref = await self._point()
        day = start.astimezone(self._zone).date()
        last_day = end.astimezone(self._zone).date()  # it holds the register at ``end``
        previous: Reading | None = None  # the register before a call's first, from the call before
        while day <= last_day:
            chunk_last = min(day + timedelta(days=FILE_CHUNK_DAYS - 1), last_day)
            ref, document = await self._export_following(ref, day, chunk_last)
            rows = mapping.point_rows(document, self._zone)
            registers = mapping.register_readings(rows, self.meter.id, ref.name)
            intervals = _register_intervals([previous, *registers] if previous else registers)
            previous = registers[-1] if registers else None
            fetched = Fetched(
                readings=[reading for reading in registers if start <= reading.ts < end],
                intervals=[i for i in intervals if start <= i.start and i.end <= end],
            )
            if fetched.readings or fetched.intervals:
                yield fetched
            day = chunk_last + timedelta(days=1)

    async def _export_following(self, ref: PointRef, day: date, last: date) -> tuple[PointRef, object]:
        """Export the point's days; when the vendor no longer knows its name, follow its id once."""
        fetch = functools.partial(self._export, day=day, last=last, point=ref.name)
        try:
            return ref, await self._call("file", fetch)
        except PayloadError as exc:
            if not is_not_found(exc):
                raise
            followed = await self._follow(ref)
            if followed.name == ref.name:
                raise
        fetch = functools.partial(self._export, day=day, last=last, point=followed.name)
        return followed, await self._call("file", fetch)

    async def _export(self, cookie: str, *, day: date, last: date, point: str) -> object:
        return await self._client.file(cookie, day, last, point)

    async def discover(self) -> list[Discovered]:
        """Return every metering point ``/data`` lists, with its phases from ``/point``."""
        document = await self._call("data", self._client.data)
        rows = mapping.point_rows(document, self._zone, self._context.now())
        shared = {key: self.meter.options[key] for key in _CREDENTIAL_OPTIONS if key in self.meter.options}
        found: list[Discovered] = []
        for name in mapping.point_names(rows):
            fetch = functools.partial(self._client.point, name=name)
            info = await self._call("point", fetch)
            point_id, _ = mapping.point_identity(info)
            found.append(
                Discovered(
                    suggested_id=_suggested_id(name),
                    vendor=self.vendor,
                    phases=mapping.point_phases(info),
                    name=name,
                    options={**shared, "point": name, "point_id": str(point_id)},
                    tz=self.meter.tz,
                )
            )
        return found

    async def set_relay(self, on: bool) -> bool:
        """Refuse: Intellimeter offers no relay."""
        raise InputError(f"meter {self.meter.id!r}: the Intellimeter API offers no relay to switch")

    async def rotate_key(self) -> str:
        """Generate a new API key and return it; the old key stops working at once.

        Keep the new key where the meter's key reference points before the next login
        (:mod:`meterhub.vendorkeys` does, for every meter of the account).
        """
        return await self._call("key", self._client.rotate_key)
