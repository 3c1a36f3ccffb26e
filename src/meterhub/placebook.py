"""Places, their meters by role, and their tariffs: the changes the CLI, the API and the dashboard share.

Every way of changing a place goes through these functions, so the same input gets the same
answer everywhere. A wrong setting raises :class:`FieldError`, an ``InputError`` that names
the setting (``tz``, ``import_per_kwh``, ...) so a form can show the message next to its field;
the API answers it as a 422 with the same message.

Tariff rules on top of :class:`~meterhub.analytics.tariffs.Tariff`'s own: fixed prices and fees
are not negative (a price series and an adder may be), every amount lies within a million, the
currency is a three-letter code, and price series are named as ids.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from meterhub.analytics.tariffs import Tariff
from meterhub.errors import FieldError, InputError, UnknownMeterError
from meterhub.ids import ID_MAX_CHARS, id_problem
from meterhub.model import Place, Role
from meterhub.store.base import Store
from meterhub.timeutil import get_zone

__all__ = [
    "AMOUNT_LIMIT",
    "TARIFF_LABELS",
    "FieldError",
    "add_place",
    "attach_meter",
    "change_place",
    "check_tariff",
    "check_zone",
    "detach_meter",
    "members",
    "remove_place",
    "set_tariff",
    "tariff_from_text",
]

AMOUNT_LIMIT = 1e6
"""No price, adder or fee may lie beyond this, either way."""

TARIFF_LABELS: dict[str, str] = {
    "currency": "the currency",
    "import_per_kwh": "the flat import price",
    "peak_per_kwh": "the peak price",
    "offpeak_per_kwh": "the off-peak price",
    "peak_start_hour": "the hour the peak starts",
    "peak_end_hour": "the hour the peak ends",
    "peak_weekdays_only": "peak on weekdays only",
    "import_series": "the import price series",
    "import_adder_per_kwh": "the import adder",
    "export_per_kwh": "the flat export price",
    "export_series": "the export price series",
    "export_adder_per_kwh": "the export adder",
    "fee_per_day": "the fee per day",
    "fee_per_month": "the fee per month",
    "capacity_thresholds_kwh": "the capacity thresholds",
    "capacity_peak_days": "the number of peak days",
}
"""Each tariff setting in words, as messages name it."""

_NOT_NEGATIVE = frozenset(
    {"import_per_kwh", "peak_per_kwh", "offpeak_per_kwh", "export_per_kwh", "fee_per_day", "fee_per_month"}
)
_EITHER_WAY = frozenset({"import_adder_per_kwh", "export_adder_per_kwh"})
_HOURS = {"peak_start_hour": (0, 23), "peak_end_hour": (1, 24)}
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_MAX_THRESHOLDS = 50




# --- places -------------------------------------------------------------------------------
def check_zone(tz: str) -> str:
    """Return ``tz`` if it names an IANA time zone; raise FieldError on ``tz`` otherwise."""
    try:
        get_zone(tz)
    except InputError as exc:
        raise FieldError("tz", str(exc)) from exc
    return tz


def _check_place_id(place_id: str) -> str:
    problem = id_problem(place_id, "place id")
    if problem is not None:
        raise FieldError("id", f"{problem} (at most {ID_MAX_CHARS} letters, digits and _ . : -)")
    return place_id


def _check_name(name: str) -> str:
    if len(name) > 200:
        raise FieldError("name", "a place's name may have at most 200 characters")
    return name


def members(pairs: Iterable[tuple[str, Role]]) -> tuple[tuple[str, Role], ...]:
    """Return (meter, role) pairs ordered by meter; raise FieldError if a meter is listed twice."""
    listed = [(meter, Role(role)) for meter, role in pairs]
    ids = [meter for meter, _ in listed]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise FieldError(
            "meters", f"meter(s) listed twice: {', '.join(twice)}; a meter has one role in a place"
        )
    return tuple(sorted(listed))


def _written(place: Place, write: Any) -> Place:
    try:
        write(place)
    except UnknownMeterError as exc:
        raise FieldError(
            "meters", f"meter {exc.meter_id!r} does not exist; add it before putting it in a place"
        ) from exc
    return place


def add_place(
    store: Store,
    place_id: str,
    tz: str,
    name: str = "",
    meters: Iterable[tuple[str, Role]] = (),
    tariff: Mapping[str, Any] | None = None,
) -> Place:
    """Add a place with its meters and tariff; ConflictError if the id is taken."""
    place = Place(
        _check_place_id(place_id),
        check_zone(tz),
        _check_name(name),
        members(meters),
        check_tariff(tariff or {}),
    )
    return _written(place, store.add_place)


_KEEP: Any = object()


def change_place(
    store: Store,
    place_id: str,
    *,
    tz: str | None = None,
    name: str | None = None,
    meters: Iterable[tuple[str, Role]] | None = None,
    tariff: Mapping[str, Any] | None = _KEEP,
) -> Place:
    """Change what is given of a place (meters and tariff whole; a tariff of None clears it)."""
    place = store.get_place(place_id)
    updated = Place(
        place.id,
        check_zone(tz) if tz is not None else place.tz,
        _check_name(name) if name is not None else place.name,
        members(meters) if meters is not None else place.meters,
        place.tariff if tariff is _KEEP else check_tariff(tariff or {}),
    )
    return _written(updated, store.update_place)


def remove_place(store: Store, place_id: str) -> None:
    """Remove a place; its meters and their data stay."""
    store.remove_place(place_id)


def attach_meter(store: Store, place_id: str, meter_id: str, role: Role) -> Place:
    """Put a meter in a place with a role (replacing its role there); return the place."""
    store.attach_meter(place_id, meter_id, Role(role))
    return store.get_place(place_id)


def detach_meter(store: Store, place_id: str, meter_id: str) -> Place:
    """Take a meter out of a place; return the place."""
    store.detach_meter(place_id, meter_id)
    return store.get_place(place_id)


# --- tariffs ------------------------------------------------------------------------------
def _amount(name: str, value: float) -> None:
    label = f"{TARIFF_LABELS[name]} ({name})"
    if not math.isfinite(value):
        raise FieldError(name, f"{label} must be a number")
    if name in _NOT_NEGATIVE and value < 0:
        raise FieldError(name, f"{label} cannot be negative, got {value:g}")
    if abs(value) > AMOUNT_LIMIT:
        raise FieldError(name, f"{label} must lie within {AMOUNT_LIMIT:,.0f} either way, got {value:g}")


def _check_setting(name: str, value: Any) -> None:
    label = f"{TARIFF_LABELS[name]} ({name})"
    if name in _NOT_NEGATIVE or name in _EITHER_WAY:
        _amount(name, float(value))
    elif name in _HOURS:
        low, high = _HOURS[name]
        if not low <= int(value) <= high:
            raise FieldError(name, f"{label} must be a whole hour from {low} to {high}, got {value}")
    elif name == "currency" and value and not _CURRENCY.fullmatch(str(value)):
        raise FieldError(name, f"{label} must be a three-letter code such as EUR or NOK, got {value!r}")
    elif name in {"import_series", "export_series"}:
        problem = id_problem(str(value), "price series")
        if problem is not None:
            raise FieldError(name, f"{label}: {problem}")
    elif name == "capacity_peak_days" and not 1 <= int(value) <= 31:
        raise FieldError(name, f"{label} must be from 1 to 31, got {value}")
    elif name == "capacity_thresholds_kwh":
        steps = list(value)
        if len(steps) > _MAX_THRESHOLDS:
            raise FieldError(name, f"{label}: at most {_MAX_THRESHOLDS} steps")
        if not all(math.isfinite(s) and 0 < s <= AMOUNT_LIMIT for s in steps) or any(
            b <= a for a, b in itertools.pairwise(steps)
        ):
            raise FieldError(name, "capacity thresholds must be positive and increasing, like 5,10,15")


def check_tariff(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return tariff settings as the plain data a place keeps; raise FieldError naming a wrong one."""
    given = {name: value for name, value in settings.items() if value is not None}
    unknown = sorted(set(given) - set(TARIFF_LABELS))
    if unknown:
        raise FieldError(unknown[0], f"unknown tariff setting(s) {', '.join(unknown)}")
    for name, value in given.items():
        with contextlib.suppress(TypeError, ValueError):  # malformed: Tariff.from_data names it
            _check_setting(name, value)
    try:
        tariff = Tariff.from_data(given)
    except InputError as exc:
        raise FieldError(_blamed(given, str(exc)), str(exc)) from exc
    return tariff.to_data()


def _blamed(given: Mapping[str, Any], message: str) -> str:
    """Return the setting a message of Tariff's own rules is about (as a form shows it)."""
    for name in TARIFF_LABELS:
        if f"setting {name} " in message:
            return name
    rules = (
        ("import one way", ("import_series", "peak_per_kwh", "import_per_kwh")),
        ("time-of-use prices need", ("peak_per_kwh", "offpeak_per_kwh")),
        ("peak hours", ("peak_start_hour",)),
        ("export is compensated", ("export_series",)),
        ("needs a currency", ("currency",)),
        ("capacity peaks", ("capacity_peak_days",)),
        ("capacity thresholds", ("capacity_thresholds_kwh",)),
    )
    for words, names in rules:
        if words in message:
            missing = [n for n in names if n not in given]
            return (missing or list(names))[0] if words == "time-of-use prices need" else names[0]
    return "tariff"


def set_tariff(store: Store, place_id: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Replace a place's tariff (empty settings clear it); return it as kept."""
    data = check_tariff(settings)
    place = store.get_place(place_id)
    store.update_place(Place(place.id, place.tz, place.name, place.meters, data))
    return data


def tariff_from_text(fields: Mapping[str, str]) -> dict[str, Any]:
    """Return tariff settings from text as typed in a form; blank fields are left out."""
    settings: dict[str, Any] = {}
    for name, raw in fields.items():
        text = raw.strip()
        if name not in TARIFF_LABELS or not text:
            continue
        label = f"{TARIFF_LABELS[name]} ({name})"
        try:
            if name in _NOT_NEGATIVE or name in _EITHER_WAY:
                settings[name] = float(text)
            elif name in _HOURS or name == "capacity_peak_days":
                settings[name] = int(text)
            elif name == "peak_weekdays_only":
                settings[name] = text.lower() in {"1", "true", "yes", "on", "weekdays"}
            elif name == "capacity_thresholds_kwh":
                settings[name] = [float(part) for part in text.split(",") if part.strip()]
            else:
                settings[name] = text
        except ValueError:
            wanted = "numbers like 5,10,15" if name == "capacity_thresholds_kwh" else "a number"
            if name in _HOURS or name == "capacity_peak_days":
                wanted = "a whole number"
            raise FieldError(name, f"{label} must be {wanted}, got {text!r}") from None
    return settings
