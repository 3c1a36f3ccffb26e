"""An AMS reader (a HAN-port reader on the local network) as a meterhub meter.

Meter options (secrets only as ``env:NAME`` references, resolved at each call, never kept):

    host       the reader's host name or IP address; the API is then ``http://<host>``
    base_url   the full API address instead of ``host`` (e.g. ``http://10.0.0.206:8080``)
    username   the web UI user (literal, or a reference); default ``admin``
    password   reference to the web UI password; without it no Basic auth is sent
    timeout_s  seconds to wait for an answer; default 10
    price_series    the hub price series the reader's day-ahead import prices are kept in;
                    without it no prices are read (``discover`` sets ``<meter id>-import``)
    capacity_peaks  ``true`` to keep the reader's own capacity peaks (``tariff.json``) as
                    ``capacity_peak_kwh`` extras (``discover`` sets it)
    temperature_sensors  ``true`` to read the reader's 1-Wire sensors (``temperature.json``)
                    as one extra per sensor, ``temperature_<address>_c`` (``discover`` sets it
                    when the reader lists a sensor)

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

Prices, peaks and sensor temperatures are read in the same poll as ``data.json`` when due (see
:mod:`.upkeep`), one of them per poll and never in a poll that read ``sysinfo.json``; the call
waits for the reader's slot. A failed read of any is logged and leaves the poll's readings
untouched.

``discover`` puts the reader's meter in a place of its own as the ``grid`` meter, priced by the
reader's price series and ``priceconfig.json``'s always-applying rows, with the capacity
thresholds of ``tariff.json`` and the peak count of ``configuration.json``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterhub.config import is_secret_reference, resolve_secret
from meterhub.errors import ConfigError, InputError, QuotaExceeded, VendorError
from meterhub.model import Extra, IntervalEnergy, Meter, PricePoint
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

from . import mapping, upkeep
from .client import DEFAULT_TIMEOUT_S, AmsReaderClient
from .pricefile import EnergyPriceError, prices_from_energyprice
from .tariff import TariffJsonError, capacity_from_tariff_json

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
_CONNECTION_OPTIONS = ("host", "base_url", "username", "password", "timeout_s")
_TRUE = ("true", "1", "yes", "on")
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
        self._records: dict[str, upkeep.UpkeepRecord | None] = {}

    def __repr__(self) -> str:
        return f"AmsReaderConnector(meter={self.meter.id!r}, base_url={self._client.base_url!r})"

    tells_zone: ClassVar[bool] = True
    """Discovery names the zone of the meters it finds (:mod:`meterhub.vendorzone`)."""

    @classmethod
    def missing_options(cls, options: Mapping[str, str]) -> str | None:
        """Say what a meter lacks: the reader's address."""
        return missing_options_text(cls.vendor, [("host",), ("base_url",)], options)

    @classmethod
    def quota_scope_keys(cls, meter: Meter) -> dict[str, str]:
        """Return the scope key of the reader's one rule: its API address."""
        return {"http": _base_url(meter).rstrip("/")}

    def _auth(self) -> tuple[str, str] | None:
        password_ref = self.meter.options.get("password")
        if password_ref is None:
            return None
        username = meter_option(self.meter, "username", _DEFAULT_USERNAME)
        if is_secret_reference(username):
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
        fetched = mapping.map_data_json(document, self.meter.id, received_at, self._version)
        return await self._keep_up(fetched)

    async def _keep_up(self, fetched: Fetched) -> Fetched:
        """Add the prices, peaks or temperatures to a poll's data when due (one of them per poll)."""
        now = self._context.now()
        series = self.meter.options.get("price_series", "").strip()
        if series and upkeep.prices_due(await self._record("prices"), now):
            points = await self._upkeep("prices", lambda: self._read_prices(series))
            return replace(fetched, prices=points) if points else fetched
        wants_peaks = self.meter.options.get("capacity_peaks", "").strip().lower() in _TRUE
        if wants_peaks and upkeep.peaks_due(await self._record("peaks"), now):
            extras = await self._upkeep("peaks", self._read_peaks)
            return replace(fetched, extras=[*fetched.extras, *extras]) if extras else fetched
        wants_sensors = self.meter.options.get("temperature_sensors", "").strip().lower() in _TRUE
        if wants_sensors and upkeep.temperatures_due(await self._record("temperatures"), now):
            extras = await self._upkeep("temperatures", self._read_temperatures)
            return replace(fetched, extras=[*fetched.extras, *extras]) if extras else fetched
        return fetched

    async def _record(self, kind: str) -> upkeep.UpkeepRecord | None:
        if kind not in self._records:
            key = upkeep.upkeep_key(kind, self._client.base_url)
            self._records[kind] = upkeep.read_record(await self._context.tokens.get(key))
        return self._records[kind]

    async def _upkeep(self, kind: str, read: Callable[[], Awaitable[list[Any]]]) -> list[Any]:
        """Run one slow read; log a failure instead of failing the poll; keep when it ran."""
        try:
            found = await read()
            ok = True
        except (VendorError, EnergyPriceError, TariffJsonError) as exc:
            log.warning("meter %s: reading the AMS reader's %s failed: %s", self.meter.id, kind, exc)
            found, ok = [], False
        at = self._context.now()
        self._records[kind] = (at, ok)
        key = upkeep.upkeep_key(kind, self._client.base_url)
        await self._context.tokens.put(key, upkeep.upkeep_record(at, ok), None)
        return found

    async def _read_prices(self, series: str) -> list[PricePoint]:
        document = await self._get(upkeep.price_route(self._version))
        read_at = self._context.now()
        if not isinstance(document, dict):
            raise EnergyPriceError(f"the price answer is {type(document).__name__}, not a JSON object")
        return prices_from_energyprice(document, series, upkeep.READER_PRICE_ZONE, read_at)

    async def _read_peaks(self) -> list[Extra]:
        document = await self._get("tariff.json")
        now = self._context.now()
        if not isinstance(document, dict):
            raise TariffJsonError(f"tariff.json is {type(document).__name__}, not a JSON object")
        peaks = capacity_from_tariff_json(document)[1]
        return upkeep.peak_extras(peaks, self.meter.id, now, self._zone)

    async def _read_temperatures(self) -> list[Extra]:
        document = await self._get("temperature.json")
        return mapping.temperature_extras(document, self.meter.id, self._context.now())

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
        suggested_id = f"amsreader-{_slug(label) or 'reader'}"
        series = upkeep.series_name(suggested_id)
        options = {key: self.meter.options[key] for key in _CONNECTION_OPTIONS if key in self.meter.options}
        options.update(price_series=series, capacity_peaks="true")
        if await self._has_sensors():
            options["temperature_sensors"] = "true"
        tariff = await self._place_tariff(series, configuration)
        return [
            Discovered(
                suggested_id=suggested_id,
                vendor=self.vendor,
                phases=phases,
                name=f"{label} ({_text(sysinfo, 'meter', 'model')})" if meter_serial else label,
                options=options,
                tz=zone,
                place=DiscoveredPlace(suggested_id, "grid", label, zone, tariff),
            )
        ]

    async def _has_sensors(self) -> bool:
        """Say whether the reader's ``temperature.json`` lists a sensor (False if unreadable)."""
        try:
            document = await self._get("temperature.json")
        except VendorError as exc:
            log.warning("meter %s: the AMS reader's temperature.json is not readable: %s", self.meter.id, exc)
            return False
        return mapping.sensor_count(document) > 0

    async def _place_tariff(self, series: str, configuration: object) -> dict[str, Any] | None:
        """Return the reader's place tariff from its price and capacity settings, or None if unreadable."""
        currency = _text(configuration, "p", "c") or "NOK"
        documents: dict[str, Mapping[str, Any] | None] = {}
        for route in ("priceconfig.json", "tariff.json"):
            try:
                document = await self._get(route)
            except VendorError as exc:
                log.warning("meter %s: the AMS reader's %s is not readable: %s", self.meter.id, route, exc)
                document = None
            documents[route] = document if isinstance(document, dict) else None
        try:
            fields, notes = upkeep.place_tariff(
                series,
                currency,
                documents["priceconfig.json"],
                documents["tariff.json"],
                _peak_days(configuration),
            )
        except (EnergyPriceError, TariffJsonError) as exc:
            log.warning("meter %s: the AMS reader's price settings are not usable: %s", self.meter.id, exc)
            return None
        for note in notes:
            log.info("meter %s: price setting left out of the tariff: %s", self.meter.id, note)
        return fields

    async def set_relay(self, on: bool) -> bool:
        """Refuse: the AMS reader only reads the meter; it has no relay."""
        raise InputError(f"meter {self.meter.id!r}: the AMS reader has no relay to switch")


def _peak_days(configuration: object) -> int | None:
    """Return ``configuration.json``'s ``t.h`` (peaks averaged), or None if it has none."""
    node = configuration.get("t") if isinstance(configuration, dict) else None
    days = node.get("h") if isinstance(node, dict) else None
    return days if isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= 31 else None


def _within(records: list[IntervalEnergy], start: datetime, end: datetime) -> list[IntervalEnergy]:
    return [record for record in records if start <= record.start < end]
