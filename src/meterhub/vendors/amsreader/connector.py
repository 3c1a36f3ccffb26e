"""An AMS reader (a HAN-port reader on the local network) as a meterhub meter.

Meter options (secrets only as ``env:NAME`` references, resolved at each call, never kept):

    host       the reader's host name or IP address; the API is then ``http://<host>``
    base_url   the full API address instead of ``host`` (e.g. ``http://10.0.0.206:8080``)
    username   the web UI user (literal, or a reference); default ``admin``
    password   reference to the web UI password; without it no Basic auth is sent
    timeout_s  seconds to wait for an answer; default 10

The meter's ``tz`` should be the reader's zone (``configuration.json`` ``g.t``, which
``discover`` reports): ``monthplot.json`` days are its local days.

The reader is a small device, not a service: it documents no limit, but it updates every 2 to
10 s and serves one request at a time, so :data:`QUOTAS` allows one call per 2 s. A call that
finds the slot taken waits for it (at most :data:`MAX_QUOTA_WAIT_S`) instead of failing.
History is only what the reader keeps: the last 24 closed hours (``dayplot.json``) and about a
month of days (``monthplot.json``).

What ``data.json``'s per-phase ``q`` means depends on the firmware version. The connector reads
it from ``sysinfo.json`` and keeps it in the store's token table under the reader's API address,
with the instant the reader booted (``data.json``'s uptime ``u`` subtracted from our clock), so
the next connector for the same reader reuses it without a call. ``sysinfo.json`` is read again
only when nothing is stored yet or the reader restarted, as a firmware update does: its uptime
went back, or it booted more than :data:`BOOT_SLACK_S` after the stored boot instant.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterhub.config import resolve_secret
from meterhub.errors import ConfigError, InputError, QuotaExceeded
from meterhub.model import IntervalEnergy, Meter
from meterhub.vendors.base import (
    ConnectorContext,
    Discovered,
    Fetched,
    QuotaRule,
    meter_option,
    rule_scope_key,
)

from . import mapping
from .client import DEFAULT_TIMEOUT_S, AmsReaderClient

__all__ = [
    "BOOT_SLACK_S",
    "MAX_QUOTA_WAIT_S",
    "QUOTAS",
    "AmsReaderConnector",
    "firmware_key",
    "firmware_record",
]

log = logging.getLogger(__name__)

QUOTAS: tuple[QuotaRule, ...] = (QuotaRule("http", limit=1, window_s=2, scope="meter"),)
"""One call per 2 s per reader (our own limit; see the module docstring)."""
MAX_QUOTA_WAIT_S = 2.5
_QUOTA_ATTEMPTS = 3
_DEFAULT_USERNAME = "admin"
_REFERENCE_PREFIX = "env:"
_CONNECTION_OPTIONS = ("host", "base_url", "username", "password", "timeout_s")
_MONTHPLOT_REACH = timedelta(days=32)
_FIRMWARE_KEY_PREFIX = "firmware:"
BOOT_SLACK_S = 60.0
"""How much later than the stored boot instant a boot may look before it counts as a restart:
the request's latency, the uptime's whole seconds and the reader's clock drift move it a little."""


def _base_url(meter: Meter) -> str:
    if "base_url" in meter.options:
        return meter.options["base_url"].rstrip("/")
    if "host" in meter.options:
        return f"http://{meter.options['host'].strip('/')}"
    raise ConfigError(f"meter {meter.id!r} (amsreader) needs the option 'host' or 'base_url'")


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


def _text(document: object, *path: str) -> str:
    node = document
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, str) else ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def firmware_key(base_url: str) -> str:
    """Return the key under which a reader's firmware version is kept (vendor token scope)."""
    return _FIRMWARE_KEY_PREFIX + base_url.rstrip("/")


def firmware_record(version: tuple[int, int, int] | None, booted: float | None) -> str:
    """Return the kept record of a reader's firmware version and boot instant (epoch seconds)."""
    return json.dumps({"version": None if version is None else list(version), "booted": booted})


class AmsReaderConnector:
    """Latest readings, the reader's day and month plots, and discovery of one AMS reader."""

    vendor: ClassVar[str] = "amsreader"
    quotas: ClassVar[tuple[QuotaRule, ...]] = QUOTAS
    min_interval_s: ClassVar[int] = 2
    default_base_url: ClassVar[str] = "http://{host}"
    history_chunk_s: ClassVar[int] = int(_MONTHPLOT_REACH.total_seconds())
    """One ``history`` call covers all the reader keeps, with at most two calls."""
    history_quota: ClassVar[str] = "http"

    def __init__(self, meter: Meter, context: ConnectorContext) -> None:
        self.meter = meter
        self._context = context
        self._client = AmsReaderClient(context.client, _base_url(meter), _timeout_s(meter, DEFAULT_TIMEOUT_S))
        self._zone = _zone(meter)
        self._version: tuple[int, int, int] | None = None
        self._version_read = False
        self._stored_looked_up = False
        self._uptime_s = -1.0

    def __repr__(self) -> str:
        return f"AmsReaderConnector(meter={self.meter.id!r}, base_url={self._client.base_url!r})"

    @classmethod
    def quota_scope_keys(cls, meter: Meter) -> dict[str, str]:
        """Return the scope key of the reader's one rule: its API address."""
        return {"http": _base_url(meter).rstrip("/")}

    def _auth(self) -> tuple[str, str] | None:
        password_ref = self.meter.options.get("password")
        if password_ref is None:
            return None
        username = meter_option(self.meter, "username", _DEFAULT_USERNAME)
        if username.startswith(_REFERENCE_PREFIX):
            username = resolve_secret(username)
        return username, resolve_secret(password_ref)

    async def _acquire(self) -> None:
        """Take the reader's call slot, waiting briefly when the previous call just took it."""
        for attempt in range(1, _QUOTA_ATTEMPTS + 1):
            try:
                keys = self.quota_scope_keys(self.meter)
                await self._context.quotas.acquire("http", rule_scope_key(keys, self.meter, "http"))
                return
            except QuotaExceeded as exc:
                wait_s = exc.retry_after_s
                if wait_s is None or wait_s > MAX_QUOTA_WAIT_S or attempt == _QUOTA_ATTEMPTS:
                    raise
                await self._context.sleep(wait_s + 0.01)

    async def _get(self, route: str) -> object:
        await self._acquire()
        return await self._client.get(route, self._auth())

    def _firmware_key(self) -> str:
        return firmware_key(self._client.base_url)

    async def _stored_version(self) -> tuple[tuple[int, int, int] | None, float | None] | None:
        """Return the stored version and boot instant (epoch seconds), or None if none is usable."""
        value = await self._context.tokens.get(self._firmware_key())
        try:
            stored = json.loads(value) if value is not None else None
        except ValueError:
            stored = None
        if not isinstance(stored, dict):
            return None
        version, booted = stored.get("version"), stored.get("booted")
        if version is not None and not (
            isinstance(version, list)
            and len(version) == 3
            and all(isinstance(part, int) and not isinstance(part, bool) for part in version)
        ):
            return None
        if not isinstance(booted, int | float) or isinstance(booted, bool):
            booted = None
        return (None if version is None else (version[0], version[1], version[2])), booted

    async def _store_version(self, booted: float | None) -> None:
        await self._context.tokens.put(self._firmware_key(), firmware_record(self._version, booted), None)

    def _keep_version(self, sysinfo: object) -> None:
        self._version = mapping.firmware_version(sysinfo)
        self._version_read = True
        if self._version is None:
            log.warning(
                "meter %s: the AMS reader's firmware version %r is not a release number; its "
                "per-phase power is left out",
                self.meter.id,
                _text(sysinfo, "version"),
            )

    async def latest(self) -> Fetched:
        """Return the reader's latest payload: phase 0 and per-phase readings, and extras."""
        document = await self._get("data.json")
        received_at = self._context.now()
        booted = self._booted(document, received_at)
        if not self._version_read and not self._stored_looked_up:
            self._stored_looked_up = True
            stored = await self._stored_version()
            if stored is not None:
                version, stored_booted = stored
                if booted is None or stored_booted is None or booted <= stored_booted + BOOT_SLACK_S:
                    self._version, self._version_read = version, True
        if not self._version_read:
            self._keep_version(await self._get("sysinfo.json"))
            await self._store_version(booted)
        return mapping.map_data_json(document, self.meter.id, received_at, self._version)

    def _booted(self, document: object, received_at: datetime) -> float | None:
        """Return when the reader booted (epoch seconds) from ``u``; note a restart seen since."""
        uptime = document.get("u") if isinstance(document, dict) else None
        if not isinstance(uptime, int | float) or isinstance(uptime, bool):
            return None
        if uptime < self._uptime_s:
            self._version_read = False
        self._uptime_s = float(uptime)
        return received_at.timestamp() - float(uptime)

    async def history(self, start: datetime, end: datetime) -> AsyncIterator[Fetched]:
        """Yield the hours (``dayplot.json``) and days (``monthplot.json``) the reader holds."""
        if start.tzinfo is None or end.tzinfo is None:
            raise InputError("history needs timezone-aware start and end")
        now = self._context.now()
        current_hour = now.replace(minute=0, second=0, microsecond=0)
        if start < current_hour and end > current_hour - timedelta(days=1):
            document = await self._get("dayplot.json")
            hours = mapping.dayplot_intervals(document, self.meter.id, now)
            if within := _within(hours, start, end):
                yield Fetched(intervals=within)
        today = datetime.combine(now.astimezone(self._zone).date(), time(), self._zone)
        if start < today and end > today - _MONTHPLOT_REACH:
            document = await self._get("monthplot.json")
            days = mapping.monthplot_intervals(document, self.meter.id, now, self._zone)
            if within := _within(days, start, end):
                yield Fetched(intervals=within)

    async def discover(self) -> list[Discovered]:
        """Return the reader itself: its host name, meter, phases and time zone."""
        sysinfo = await self._get("sysinfo.json")
        data = await self._get("data.json")
        booted = self._booted(data, self._context.now())
        self._keep_version(sysinfo)
        await self._store_version(booted)
        phases = mapping.phases_in(data)
        configuration = await self._get("configuration.json")
        hostname = _text(sysinfo, "hostname")
        meter_serial = _text(sysinfo, "meter", "id")
        label = hostname or meter_serial or self.meter.id
        zone = _text(configuration, "g", "t") or self.meter.tz
        options = {key: self.meter.options[key] for key in _CONNECTION_OPTIONS if key in self.meter.options}
        return [
            Discovered(
                suggested_id=f"amsreader-{_slug(label) or 'reader'}",
                vendor=self.vendor,
                phases=phases,
                name=f"{label} ({_text(sysinfo, 'meter', 'model')})" if meter_serial else label,
                options=options,
                tz=zone,
            )
        ]

    async def set_relay(self, on: bool) -> bool:
        """Refuse: the AMS reader only reads the meter; it has no relay."""
        raise InputError(f"meter {self.meter.id!r}: the AMS reader has no relay to switch")


def _within(records: list[IntervalEnergy], start: datetime, end: datetime) -> list[IntervalEnergy]:
    return [record for record in records if start <= record.start < end]
