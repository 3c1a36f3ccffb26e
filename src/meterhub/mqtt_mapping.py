"""Map the AMS reader's MQTT payloads to readings and device extras (pure).

The reader's payload formats, as its MQTT "payload format" setting names them:

- JSON classic: one document on ``<prefix>`` (``<prefix>/list1``..``list4`` in the multi-topic
  variant): ``{"id", "name", "up", "t", "vcc", "rssi", "temp", "data": {...}, "realtime": {...}}``
  with ``data`` growing with the HAN list type (1: ``P``; 2: ``PO``, ``Q``, ``I1``, ``U1``...;
  3: ``tPI``, ``tPO``... registers; 4: per-phase ``P1``, ``PO1``, ``PF1``, ``tPI1``...).
- JSON flat: the same numbers at the top level, the realtime ones prefixed ``rt_``.
- Home Assistant: ``<prefix>/power`` (HAN list 1, 2/3 or 4 fields, power factors in percent),
  ``<prefix>/energy`` (list-3 registers with ``rtc``), ``<prefix>/realtime`` (energy accounting),
  each with an ISO time ``t`` (``null`` when unknown); the discovery documents live elsewhere.
- Domoticz: ``{"command": "udevice", "idx", "nvalue": 0, "svalue"}`` on ``domoticz/in``; the
  reader's settings name an idx for electricity (``"P;Wh"``), each phase's voltage and the three
  currents (``"I1;I2;I3"``). No time, no device id: stamped on receipt.
- raw: one value per topic under ``<prefix>/``, e.g. ``meter/import/active``,
  ``meter/l1/voltage``, ``meter/import/accumulated`` (``.../active/accumulated`` in firmware 2.x).
  A round starts with ``meter/dlms/timestamp``; list-3 and list-4 meters send ``meter/id`` and
  ``meter/type`` twice in one round.

Times: ``t`` (JSON) and ``meter/dlms/timestamp`` (raw) are the reader's clock, ``rtc`` and
``meter/clock`` the meter's. A clock before :data:`CLOCK_FLOOR` is unset (a reader without NTP
counts seconds since boot): the meter's clock stands in, else the time of receipt.

Power in W and energy in kWh, as the reader sends them; ``power_w`` is import minus export.
A phase voltage of 0 while that phase carries current (an IT-grid Kaifa meter's L2) is not a
measurement and is left out, as in ``data.json``.
The same topics also carry system, price and temperature documents: the system one gives
extras, the others nothing. Field tables reuse the engine of :mod:`meterhub.vendors.amsreader.mapping`.
:class:`MqttSource` says which meter a topic's messages belong to.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from meterhub.errors import ConfigError, PayloadError
from meterhub.model import PHASE_TOTAL, Extra, Reading
from meterhub.vendors.amsreader.mapping import (
    ExtraSpec,
    FieldSpec,
    extras_from,
    readings_from,
    require_object,
    without_unmeasured_voltages,
)
from meterhub.vendors.base import Fetched

__all__ = [
    "ARRIVAL_WINDOW_S",
    "CLASSIC_EXTRAS",
    "CLASSIC_FIELDS",
    "CLOCK_FLOOR",
    "DEFAULT_GROUP",
    "DOMOTICZ_IDX",
    "FLAT_EXTRAS",
    "FLAT_FIELDS",
    "HA_STATE_SUFFIXES",
    "RAW_EXTRAS",
    "RAW_FIELDS",
    "RAW_ROUND_START",
    "RAW_TEXTS",
    "ROUND_FORMATS",
    "MqttSource",
    "PayloadFormat",
    "arrival_identity",
    "decode_json",
    "domoticz_values",
    "home_assistant_device_time",
    "json_device_keys",
    "json_device_time",
    "json_topic_wanted",
    "map_home_assistant",
    "map_json",
    "map_raw",
    "merge_instants",
    "parse_raw_number",
    "raw_device_time",
    "raw_suffix",
    "reader_clock",
    "reader_iso_clock",
]

_NO_SENSOR_C = -85.0
_MAX_PEAKS = 5
_MAX_PORT = 65_535
CLOCK_FLOOR = datetime(2020, 1, 1, tzinfo=UTC)
"""A reader clock before this is unset: without NTP it counts seconds since boot."""
_CLOCK_CEILING = datetime(2100, 1, 1, tzinfo=UTC)


class PayloadFormat(StrEnum):
    """The reader's MQTT payload formats meterhub ingests."""

    JSON = "json"
    """JSON classic, single or multi-topic."""
    FLAT = "flat"
    """JSON flat."""
    RAW = "raw"
    """One value per topic."""
    HOME_ASSISTANT = "homeassistant"
    """Home Assistant state documents under ``<prefix>/power``, ``/energy``, ``/realtime``."""
    DOMOTICZ = "domoticz"
    """Domoticz ``udevice`` commands on ``domoticz/in``, told apart by their idx numbers."""


def _list_fields(root: tuple[str, ...]) -> tuple[FieldSpec, ...]:
    def at(key: str) -> tuple[str, ...]:
        """Return the path of ``key`` under ``root``."""
        return (*root, key)

    total = (
        FieldSpec(at("P"), PHASE_TOTAL, "power_w"),
        FieldSpec(at("PO"), PHASE_TOTAL, "power_w", sign=-1.0),
        FieldSpec(at("Q"), PHASE_TOTAL, "reactive_power_var"),
        FieldSpec(at("QO"), PHASE_TOTAL, "reactive_power_var", sign=-1.0),
        FieldSpec(at("PF"), PHASE_TOTAL, "power_factor"),
        FieldSpec(at("tPI"), PHASE_TOTAL, "energy_import_kwh"),
        FieldSpec(at("tPO"), PHASE_TOTAL, "energy_export_kwh"),
        FieldSpec(at("tQI"), PHASE_TOTAL, "reactive_import_kvarh"),
        FieldSpec(at("tQO"), PHASE_TOTAL, "reactive_export_kvarh"),
    )
    phases = tuple(
        spec
        for n in (1, 2, 3)
        for spec in (
            FieldSpec(at(f"U{n}"), n, "voltage_v"),
            FieldSpec(at(f"I{n}"), n, "current_a"),
            FieldSpec(at(f"P{n}"), n, "power_w"),
            FieldSpec(at(f"PO{n}"), n, "power_w", sign=-1.0),
            FieldSpec(at(f"PF{n}"), n, "power_factor"),
            FieldSpec(at(f"tPI{n}"), n, "energy_import_kwh"),
            FieldSpec(at(f"tPO{n}"), n, "energy_export_kwh"),
        )
    )
    return total + phases


def _envelope_extras(realtime: Callable[[str], tuple[str, ...]]) -> tuple[ExtraSpec, ...]:
    return (
        ExtraSpec(("temp",), "temperature_c", above=_NO_SENSOR_C),
        ExtraSpec(("rssi",), "rssi_dbm"),
        ExtraSpec(("vcc",), "vcc_v"),
        ExtraSpec(("up",), "uptime_s"),
        ExtraSpec(realtime("h"), "hour_import_kwh"),
        ExtraSpec(realtime("d"), "day_import_kwh"),
        ExtraSpec(realtime("m"), "month_import_kwh"),
        ExtraSpec(realtime("he"), "hour_export_kwh"),
        ExtraSpec(realtime("de"), "day_export_kwh"),
        ExtraSpec(realtime("me"), "month_export_kwh"),
        ExtraSpec(realtime("t"), "capacity_threshold_kwh"),
        ExtraSpec(realtime("x"), "capacity_month_max_kwh"),
    )


CLASSIC_FIELDS = _list_fields(("data",))
"""JSON classic ``data`` numbers and the readings they feed."""
FLAT_FIELDS = _list_fields(())
"""JSON flat numbers and the readings they feed."""
CLASSIC_EXTRAS = _envelope_extras(lambda key: ("realtime", key))
FLAT_EXTRAS = _envelope_extras(lambda key: (f"rt_{key}",))
_FLAT_READING_KEYS = frozenset(spec.path[0] for spec in FLAT_FIELDS)
_MULTI_TOPIC_SUFFIXES = frozenset({"", "list1", "list2", "list3", "list4", "system"})


# --- sources ----------------------------------------------------------------------------------
ROUND_FORMATS = frozenset({PayloadFormat.RAW, PayloadFormat.DOMOTICZ, PayloadFormat.HOME_ASSISTANT})
"""Formats whose reading is assembled from several messages of one device: a shared
subscription would hand those messages to different workers, so these formats are consumed
with plain subscriptions, each worker assembling every round, and stored once by identity."""
DEFAULT_GROUP = "meterhub"
"""The shared-subscription group of a single-document source that names none."""
ARRIVAL_WINDOW_S: Mapping[PayloadFormat, float] = {
    PayloadFormat.JSON: 600.0,
    PayloadFormat.FLAT: 600.0,
    PayloadFormat.RAW: 5.0,
    PayloadFormat.DOMOTICZ: 5.0,
    PayloadFormat.HOME_ASSISTANT: 5.0,
}
"""Default ``dedupe_window_s`` per format. A JSON document carries the reader's uptime, so two
equal ones are one message delivered twice, however far apart. Raw rounds, Domoticz commands and
Home Assistant documents carry no uptime: every worker assembles each of them (their
subscriptions are not shared), and the window must cover how far apart the workers see one
round; a device that repeats an identical round within it (flat power between list-1 frames)
is stored once, which costs a point of a flat series and never any energy."""
_SHARE_NAME_FORBIDDEN = frozenset("/+#")

DOMOTICZ_IDX = ("elidx", "vl1idx", "vl2idx", "vl3idx", "cl1idx")
"""The reader's names of the Domoticz idx numbers it publishes, in the order it sends them."""


def _check_domoticz_idx(table: Mapping[str, int]) -> None:
    """Raise ValueError unless ``table`` gives the reader's Domoticz idx numbers."""
    if not table:
        raise ValueError("the domoticz format needs the reader's idx numbers (domoticz = {elidx = ...})")
    unknown = sorted(set(table) - set(DOMOTICZ_IDX))
    if unknown:
        raise ValueError(f"unknown Domoticz idx names {unknown}; known: {', '.join(DOMOTICZ_IDX)}")
    for name, idx in table.items():
        if isinstance(idx, bool) or not isinstance(idx, int) or idx <= 0:
            raise ValueError(f"Domoticz {name} is {idx!r}, not a positive idx number")


@dataclass(frozen=True, slots=True)
class MqttSource:
    """One topic prefix on one broker, its payload format and the meter its messages feed.

    ``topic`` is the reader's publish topic; it may hold ``+`` levels, and then each matching
    prefix is one device. Its meter is ``devices[prefix]``, else ``devices[meterId or id]`` from
    the payload, else ``meter_id``. Credentials are references (``env:NAME``), resolved at
    each connect.
    """

    host: str
    port: int
    topic: str
    meter_id: str | None
    format: PayloadFormat = PayloadFormat.JSON
    username_ref: str | None = None
    password_ref: str | None = None
    devices: Mapping[str, str] = field(default_factory=dict, hash=False)
    domoticz: Mapping[str, int] = field(default_factory=dict, hash=False)
    """The Domoticz format's idx numbers by the reader's names for them (``elidx``, ``vl1idx``,
    ``vl2idx``, ``vl3idx``, ``cl1idx``); required by that format."""
    group: str | None = None
    """The MQTT v5 shared-subscription group: every worker subscribing with the same group gets
    a share of the messages, each message going to one of them. None picks the default:
    :data:`DEFAULT_GROUP` for the single-document formats (json, flat), a plain subscription for
    the formats in :data:`ROUND_FORMATS`. ``""`` asks for a plain subscription."""
    dedupe_window_s: float | None = None
    """How long a message without a device time keeps its identity: the same payload on the same
    topic again within this window is a re-delivery, stored once at the first arrival's time.
    None picks :data:`ARRIVAL_WINDOW_S` of the format."""

    def __post_init__(self) -> None:
        levels = self.topic.split("/")
        if not self.topic or "#" in self.topic or "" in levels:
            raise ConfigError(f"MQTT topic prefix {self.topic!r} must be non-empty, without # or //")
        if not 0 < self.port <= _MAX_PORT:
            raise ConfigError(f"MQTT port {self.port} is not 1..65535")
        if self.meter_id is None and not self.devices:
            raise ConfigError(f"MQTT topic {self.topic!r} needs a meter_id or a devices mapping")
        object.__setattr__(self, "format", PayloadFormat(self.format))
        if self.format is PayloadFormat.DOMOTICZ:
            _check_domoticz_idx(self.domoticz)
        self._resolve_group()
        window_s = self.dedupe_window_s
        if window_s is None:
            window_s = ARRIVAL_WINDOW_S[self.format]
        if isinstance(window_s, bool) or not isinstance(window_s, int | float) or not 0 < window_s <= 86_400:
            raise ConfigError(f"MQTT dedupe_window_s {window_s!r} is not a number of seconds in (0, 86400]")
        object.__setattr__(self, "dedupe_window_s", float(window_s))

    def _resolve_group(self) -> None:
        group = self.group
        if group is None:
            group = "" if self.format in ROUND_FORMATS else DEFAULT_GROUP
        if not isinstance(group, str) or _SHARE_NAME_FORBIDDEN & set(group):
            raise ConfigError(f"MQTT group {group!r} must be text without / + or #")
        if group and self.format in ROUND_FORMATS:
            raise ConfigError(
                f"MQTT topic {self.topic!r}: the {self.format} format joins several messages into "
                "one reading, which a shared subscription would split between workers; leave group "
                "unset (each worker subscribes and the reading is stored once)"
            )
        object.__setattr__(self, "group", group)

    @property
    def window_s(self) -> float:
        """Return the resolved ``dedupe_window_s``."""
        return float(self.dedupe_window_s or ARRIVAL_WINDOW_S[self.format])

    @property
    def topic_filter(self) -> str:
        """Return the topic filter: the prefix and everything below it."""
        return f"{self.topic}/#"

    @property
    def subscription(self) -> str:
        """Return what to subscribe to: the topic filter, shared as ``$share/<group>/...``."""
        return f"$share/{self.group}/{self.topic_filter}" if self.group else self.topic_filter

    def split(self, topic: str) -> tuple[str, str] | None:
        """Return (device prefix, suffix) of a topic under this source, or None."""
        pattern, levels = self.topic.split("/"), topic.split("/")
        if len(levels) < len(pattern):
            return None
        head = levels[: len(pattern)]
        if any(want not in ("+", got) for want, got in zip(pattern, head, strict=True)):
            return None
        return "/".join(head), "/".join(levels[len(pattern) :])

    def meter_for(self, prefix: str, keys: Sequence[str]) -> str | None:
        """Return the meter a device's message belongs to, or None when none is configured."""
        for key in (prefix, *keys):
            if key in self.devices:
                return self.devices[key]
        return self.meter_id


# --- clocks -----------------------------------------------------------------------------------
def reader_clock(raw: object, what: str) -> datetime | None:
    """Read a reader or meter clock in epoch seconds; None when it is missing or unset.

    The reader treats a clock before its own build date as unset; meterhub, which does not
    know that date, uses :data:`CLOCK_FLOOR`. A clock that is not a number, negative or beyond
    2100 raises PayloadError.
    """
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PayloadError(f"AMS reader {what} is {raw!r}, not a number")
    try:
        seconds = float(raw)
    except OverflowError as exc:
        raise PayloadError(f"AMS reader {what} is out of range") from exc
    if not math.isfinite(seconds) or seconds < 0:
        raise PayloadError(f"AMS reader {what} is {seconds}, not a time")
    if seconds < CLOCK_FLOOR.timestamp():
        return None
    if seconds >= _CLOCK_CEILING.timestamp():
        raise PayloadError(f"AMS reader {what} {seconds:.0f} is not a plausible time")
    return datetime.fromtimestamp(seconds, UTC)


# --- JSON -------------------------------------------------------------------------------------
def decode_json(payload: bytes) -> Mapping[str, object]:
    """Return the JSON object in ``payload`` or raise PayloadError."""
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"AMS reader MQTT payload is not JSON ({len(payload)} bytes)") from exc
    return require_object(document, "AMS reader MQTT payload")


def json_topic_wanted(suffix: str) -> bool:
    """Say whether a JSON document under ``<prefix>/<suffix>`` can carry readings or extras."""
    return suffix in _MULTI_TOPIC_SUFFIXES


def json_device_keys(document: Mapping[str, object], fmt: PayloadFormat) -> tuple[str, ...]:
    """Return what names the device in a JSON document: the meter's id, then the reader's MAC."""
    data = document.get("data") if fmt is PayloadFormat.JSON else document
    meter_id = data.get("meterId") if isinstance(data, dict) else None
    keys = (meter_id, document.get("id"))
    return tuple(key for key in keys if isinstance(key, str) and key)


def json_device_time(document: Mapping[str, object], fmt: PayloadFormat) -> datetime | None:
    """Return a JSON document's time by the reader's clock, else the meter's; None when unset."""
    data = document if fmt is PayloadFormat.FLAT else document.get("data")
    rtc = data.get("rtc") if isinstance(data, dict) else None
    return reader_clock(document.get("t"), "time t") or reader_clock(rtc, "meter clock rtc")


def arrival_identity(where: str, topic: str, content: bytes) -> str:
    """Return the identity of a message without a device time: its broker, topic and content."""
    digest = hashlib.sha256()
    for part in (where.encode(), topic.encode("utf-8", "surrogatepass"), content):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _peak_extras(raw: object, meter_id: str, ts: datetime) -> list[Extra]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > _MAX_PEAKS:
        raise PayloadError(f"AMS reader peaks is {raw!r}, not a list of up to 5 numbers")
    extras: list[Extra] = []
    for rank, value in enumerate(raw, start=1):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise PayloadError(f"AMS reader peak {rank} is {value!r}, not a number")
        extras.append(Extra(meter_id, ts, f"capacity_peak_{rank}_kwh", float(value)))
    return extras


def map_json(
    document: Mapping[str, object], fmt: PayloadFormat, meter_id: str, received_at: datetime
) -> Fetched:
    """Map a JSON classic or flat document; one without reader fields maps to nothing."""
    flat = fmt is PayloadFormat.FLAT
    if flat:
        if not _FLAT_READING_KEYS & document.keys() and "version" not in document:
            return Fetched()
    else:
        raw_data = document.get("data")
        if raw_data is None and "version" not in document:
            return Fetched()  # a price or temperature document
        require_object(raw_data if raw_data is not None else {}, "AMS reader data")
    ts = json_device_time(document, fmt) or received_at
    realtime = document if flat else document.get("realtime")
    peaks = realtime.get("peaks") if isinstance(realtime, dict) else None
    specs = FLAT_FIELDS if flat else CLASSIC_FIELDS
    return Fetched(
        readings=readings_from(without_unmeasured_voltages(document, specs), specs, meter_id, ts),
        extras=[
            *extras_from(document, FLAT_EXTRAS if flat else CLASSIC_EXTRAS, meter_id, ts),
            *_peak_extras(peaks, meter_id, ts),
        ],
    )


# --- raw --------------------------------------------------------------------------------------
RAW_ALIASES: Mapping[str, str] = {
    "meter/import/active/accumulated": "meter/import/accumulated",
    "meter/export/active/accumulated": "meter/export/accumulated",
}
"""Firmware 2.x topic names and the names meterhub files their values under."""


def _raw_phase(n: int) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec((f"meter/l{n}/voltage",), n, "voltage_v"),
        FieldSpec((f"meter/l{n}/current",), n, "current_a"),
        FieldSpec((f"meter/import/l{n}",), n, "power_w"),
        FieldSpec((f"meter/export/l{n}",), n, "power_w", sign=-1.0),
        FieldSpec((f"meter/l{n}/powerfactor",), n, "power_factor"),
        FieldSpec((f"meter/import/l{n}/accumulated",), n, "energy_import_kwh"),
        FieldSpec((f"meter/export/l{n}/accumulated",), n, "energy_export_kwh"),
    )


RAW_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(("meter/import/active",), PHASE_TOTAL, "power_w"),
    FieldSpec(("meter/export/active",), PHASE_TOTAL, "power_w", sign=-1.0),
    FieldSpec(("meter/import/reactive",), PHASE_TOTAL, "reactive_power_var"),
    FieldSpec(("meter/export/reactive",), PHASE_TOTAL, "reactive_power_var", sign=-1.0),
    FieldSpec(("meter/powerfactor",), PHASE_TOTAL, "power_factor"),
    FieldSpec(("meter/import/accumulated",), PHASE_TOTAL, "energy_import_kwh"),
    FieldSpec(("meter/export/accumulated",), PHASE_TOTAL, "energy_export_kwh"),
    FieldSpec(("meter/import/reactive/accumulated",), PHASE_TOTAL, "reactive_import_kvarh"),
    FieldSpec(("meter/export/reactive/accumulated",), PHASE_TOTAL, "reactive_export_kvarh"),
    *_raw_phase(1),
    *_raw_phase(2),
    *_raw_phase(3),
)
"""Raw topic suffixes and the readings they feed."""

RAW_EXTRAS: tuple[ExtraSpec, ...] = (
    ExtraSpec(("temperature",), "temperature_c", above=_NO_SENSOR_C),
    ExtraSpec(("rssi",), "rssi_dbm"),
    ExtraSpec(("vcc",), "vcc_v"),
    ExtraSpec(("uptime",), "uptime_s"),
    ExtraSpec(("realtime/import/hour",), "hour_import_kwh"),
    ExtraSpec(("realtime/import/day",), "day_import_kwh"),
    ExtraSpec(("realtime/import/month",), "month_import_kwh"),
    ExtraSpec(("realtime/export/hour",), "hour_export_kwh"),
    ExtraSpec(("realtime/export/day",), "day_export_kwh"),
    ExtraSpec(("realtime/export/month",), "month_export_kwh"),
    ExtraSpec(("realtime/import/threshold",), "capacity_threshold_kwh"),
    ExtraSpec(("realtime/import/monthmax",), "capacity_month_max_kwh"),
    *(
        ExtraSpec((f"realtime/import/peak/{rank}",), f"capacity_peak_{rank}_kwh")
        for rank in range(1, _MAX_PEAKS + 1)
    ),
)
"""Raw topic suffixes kept as device extras."""

RAW_ROUND_START = "meter/dlms/timestamp"
"""The raw suffix the reader sends first in every round."""
RAW_TIMES = (RAW_ROUND_START, "meter/clock")
"""Raw suffixes carrying the reading's time (epoch seconds), best first."""
RAW_TEXTS = frozenset({"meter/id", "meter/type", "id"})
"""Raw suffixes carrying text that names the device."""
_RAW_NUMBERS = frozenset(
    [spec.path[0] for spec in RAW_FIELDS] + [spec.path[0] for spec in RAW_EXTRAS] + list(RAW_TIMES)
)


def raw_suffix(suffix: str) -> str | None:
    """Return the name a raw value is filed under, or None for a topic meterhub ignores."""
    suffix = RAW_ALIASES.get(suffix, suffix)
    return suffix if suffix in _RAW_NUMBERS or suffix in RAW_TEXTS else None


def parse_raw_number(suffix: str, payload: bytes) -> float:
    """Read a raw topic's number; raise PayloadError when it is not a finite number."""
    try:
        value = float(payload.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"AMS reader raw {suffix} is {payload[:40]!r}, not a number") from exc
    if not math.isfinite(value):
        raise PayloadError(f"AMS reader raw {suffix} is {value}, not finite")
    return value


def raw_device_time(numbers: Mapping[str, float]) -> datetime | None:
    """Return a raw round's time by the reader's or the meter's clock; None when it has none."""
    stamps = (reader_clock(numbers.get(suffix), suffix) for suffix in RAW_TIMES)
    return next((stamp for stamp in stamps if stamp is not None), None)


def map_raw(numbers: Mapping[str, float], meter_id: str, received_at: datetime) -> Fetched:
    """Map the raw values one device sent in one round to readings and extras."""
    ts = raw_device_time(numbers) or received_at
    return Fetched(
        readings=readings_from(without_unmeasured_voltages(numbers, RAW_FIELDS), RAW_FIELDS, meter_id, ts),
        extras=extras_from(numbers, RAW_EXTRAS, meter_id, ts),
    )


# --- Home Assistant ---------------------------------------------------------------------------
HA_STATE_SUFFIXES = frozenset({"power", "energy", "realtime"})
"""The Home Assistant state topics under the prefix that carry readings or extras."""
_HA_PERCENT = 0.01
_HA_POWER_FACTORS = ("PF", "PF1", "PF2", "PF3")
_HA_UNREPORTED_PF = 100
"""The reader sends every power factor as 100 % when the meter reports none."""


def _ha_power_fields() -> tuple[FieldSpec, ...]:
    def percent(key: str, phase: int) -> FieldSpec:
        return FieldSpec((key,), phase, "power_factor", sign=_HA_PERCENT)

    phases = tuple(
        spec
        for n in (1, 2, 3)
        for spec in (
            FieldSpec((f"U{n}",), n, "voltage_v"),
            FieldSpec((f"I{n}",), n, "current_a"),
            FieldSpec((f"P{n}",), n, "power_w"),
            FieldSpec((f"PO{n}",), n, "power_w", sign=-1.0),
            percent(f"PF{n}", n),
            FieldSpec((f"tPI{n}",), n, "energy_import_kwh"),
            FieldSpec((f"tPO{n}",), n, "energy_export_kwh"),
        )
    )
    return (
        FieldSpec(("P",), PHASE_TOTAL, "power_w"),
        FieldSpec(("PO",), PHASE_TOTAL, "power_w", sign=-1.0),
        FieldSpec(("Q",), PHASE_TOTAL, "reactive_power_var"),
        FieldSpec(("QO",), PHASE_TOTAL, "reactive_power_var", sign=-1.0),
        percent("PF", PHASE_TOTAL),
        *phases,
    )


HA_POWER_FIELDS = _ha_power_fields()
"""``<prefix>/power`` numbers (the reader's ha1, ha3 and ha4 documents) and their readings."""
HA_ENERGY_FIELDS = (
    FieldSpec(("tPI",), PHASE_TOTAL, "energy_import_kwh"),
    FieldSpec(("tPO",), PHASE_TOTAL, "energy_export_kwh"),
    FieldSpec(("tQI",), PHASE_TOTAL, "reactive_import_kvarh"),
    FieldSpec(("tQO",), PHASE_TOTAL, "reactive_export_kvarh"),
)
"""``<prefix>/energy`` numbers (the reader's ha2 document) and their readings."""
HA_REALTIME_EXTRAS = (
    ExtraSpec(("max",), "capacity_month_max_kwh"),
    ExtraSpec(("threshold",), "capacity_threshold_kwh"),
    ExtraSpec(("hour", "use"), "hour_import_kwh"),
    ExtraSpec(("day", "use"), "day_import_kwh"),
    ExtraSpec(("month", "use"), "month_import_kwh"),
    ExtraSpec(("hour", "produced"), "hour_export_kwh"),
    ExtraSpec(("day", "produced"), "day_export_kwh"),
    ExtraSpec(("month", "produced"), "month_export_kwh"),
)
"""``<prefix>/realtime`` numbers kept as device extras."""


def reader_iso_clock(raw: object, what: str) -> datetime | None:
    """Read an ISO time (``2026-02-10T07:15:00Z``); None when null or unset (see reader_clock)."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise PayloadError(f"AMS reader {what} is {raw!r}, not an ISO time")
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise PayloadError(f"AMS reader {what} is {raw[:40]!r}, not an ISO time") from exc
    if ts.tzinfo is None:
        raise PayloadError(f"AMS reader {what} {raw!r} has no time zone")
    return reader_clock(ts.timestamp(), what)


def _without_unreported_power_factors(document: Mapping[str, object]) -> Mapping[str, object]:
    factors = [document.get(key) for key in _HA_POWER_FACTORS]
    if all(value == _HA_UNREPORTED_PF and not isinstance(value, bool) for value in factors):
        return {key: value for key, value in document.items() if key not in _HA_POWER_FACTORS}
    return document


def home_assistant_device_time(suffix: str, document: Mapping[str, object]) -> datetime | None:
    """Return a state document's time (``t``, for ``energy`` else ``rtc``); None when unset."""
    ts = reader_iso_clock(document.get("t"), "time t")
    if ts is None and suffix == "energy":
        ts = reader_iso_clock(document.get("rtc"), "meter clock rtc")
    return ts


def map_home_assistant(
    suffix: str, document: Mapping[str, object], meter_id: str, received_at: datetime
) -> Fetched:
    """Map one Home Assistant state document under ``<prefix>/<suffix>``."""
    ts = reader_iso_clock(document.get("t"), "time t")
    if suffix == "power":
        numbers = without_unmeasured_voltages(_without_unreported_power_factors(document), HA_POWER_FIELDS)
        return Fetched(readings=readings_from(numbers, HA_POWER_FIELDS, meter_id, ts or received_at))
    if suffix == "energy":
        ts = ts or reader_iso_clock(document.get("rtc"), "meter clock rtc")
        return Fetched(readings=readings_from(document, HA_ENERGY_FIELDS, meter_id, ts or received_at))
    if suffix == "realtime":
        ts = ts or received_at
        return Fetched(
            extras=[
                *extras_from(document, HA_REALTIME_EXTRAS, meter_id, ts),
                *_peak_extras(document.get("peaks"), meter_id, ts),
            ]
        )
    return Fetched()


def merge_instants(first: Fetched, then: Fetched) -> Fetched:
    """Join two messages' readings of the same meter, instant and phase into one reading.

    The reader sends one meter frame as several documents (Home Assistant ``energy`` and
    ``power`` carry the same ``t``); where both give a value, ``then``'s wins.
    """
    merged: dict[tuple[str, datetime, int], Reading] = {}
    for reading in (*first.readings, *then.readings):
        key = (reading.meter, reading.ts, reading.phase)
        earlier = merged.get(key)
        if earlier is None:
            merged[key] = reading
            continue
        values = [
            new if new is not None else old
            for old, new in zip(earlier.values(), reading.values(), strict=True)
        ]
        merged[key] = Reading(reading.meter, reading.ts, reading.phase, *values)
    return Fetched(readings=list(merged.values()), extras=[*first.extras, *then.extras])


# --- Domoticz ---------------------------------------------------------------------------------
_DOMOTICZ_NAMES: Mapping[str, tuple[str, ...]] = {
    "elidx": ("meter/import/active", "meter/import/accumulated"),
    "vl1idx": ("meter/l1/voltage",),
    "vl2idx": ("meter/l2/voltage",),
    "vl3idx": ("meter/l3/voltage",),
    "cl1idx": ("meter/l1/current", "meter/l2/current", "meter/l3/current"),
}
"""What each Domoticz value means, as the raw topic that carries the same value."""


def domoticz_values(document: Mapping[str, object], idx_table: Mapping[str, int]) -> dict[str, float] | None:
    """Return a ``udevice`` command's values under raw topic names, or None when not the reader's.

    Electricity is ``"<import W>;<import register Wh>"``: the import power is the reading's power
    only when above 0 (the format has no export power, so 0 W may be export).
    """
    idx = document.get("idx")
    names = [name for name, number in idx_table.items() if number == idx and not isinstance(idx, bool)]
    if not names or document.get("command") != "udevice":
        return None
    name = names[0]
    svalue = document.get("svalue")
    if not isinstance(svalue, str):
        raise PayloadError(f"Domoticz idx {idx} svalue is {svalue!r}, not text")
    parts = svalue.split(";")
    targets = _DOMOTICZ_NAMES[name]
    if len(parts) != len(targets):
        raise PayloadError(
            f"Domoticz idx {idx} ({name}) svalue {svalue[:40]!r} has not {len(targets)} values"
        )
    values = {
        target: parse_raw_number(target, part.encode()) for target, part in zip(targets, parts, strict=True)
    }
    if name == "elidx":
        values["meter/import/accumulated"] /= 1000.0  # Wh
        if values["meter/import/active"] <= 0:
            del values["meter/import/active"]
    return values
